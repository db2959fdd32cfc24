"""grad Phi and grad F against float64 central finite differences of Phi and F themselves."""

import pytest
import torch

from ofmu.core.ofmu import gradient_cosine, grad_phi, penalty_grad

pytestmark = pytest.mark.usefixtures("float64")  # see tests/conftest.py


def _problem(seed: int):
    """A small smooth non-quadratic problem (tanh layer + softplus losses): all third derivatives nonzero."""
    g = torch.Generator().manual_seed(seed)
    x_f, x_r = torch.randn(7, 4, generator=g), torch.randn(9, 4, generator=g)
    y_f, y_r = torch.randn(7, generator=g), torch.randn(9, generator=g)
    params = [torch.randn(4, 3, generator=g, requires_grad=True), torch.randn(3, generator=g, requires_grad=True)]

    def predict(p, x):
        return torch.tanh(x @ p[0]) @ p[1]

    def forget_loss(p):
        return torch.nn.functional.softplus(predict(p, x_f) * y_f).mean()

    def retain_loss(p):
        return torch.nn.functional.softplus(-predict(p, x_r) * y_r).mean() + 0.1 * (p[0] ** 2).sum()

    return params, forget_loss, retain_loss


def _phi(p, forget_loss, retain_loss, beta):
    g_f = torch.autograd.grad(forget_loss(p), p, create_graph=True)
    g_r = torch.autograd.grad(retain_loss(p), p, create_graph=True)
    return forget_loss(p) - beta * gradient_cosine(g_f, g_r, 1e-12)


def _F(p, forget_loss, retain_loss, beta, rho):
    g_phi = torch.autograd.grad(_phi(p, forget_loss, retain_loss, beta), p, create_graph=True)
    return retain_loss(p) + rho * sum((g**2).sum() for g in g_phi)


def _central_fd(fn, params, h=1e-5):
    flat = []
    for i, p in enumerate(params):
        grad = torch.zeros_like(p)
        for j in range(p.numel()):
            def shifted(delta):
                q = [x.detach().clone().requires_grad_(True) for x in params]
                with torch.no_grad():
                    q[i].view(-1)[j] += delta
                return float(fn(q).detach())
            grad.view(-1)[j] = (shifted(h) - shifted(-h)) / (2 * h)
        flat.append(grad.view(-1))
    return torch.cat(flat)


def _rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("beta", [0.0, 0.7])
@pytest.mark.parametrize("seed", [0, 1])
def test_grad_phi_matches_finite_differences(beta, seed):
    params, lf, lr = _problem(seed)
    g_phi, _ = grad_phi(params, lf, lr, beta)
    fd = _central_fd(lambda p: _phi(p, lf, lr, beta), params)
    assert _rel_err(torch.cat([g.reshape(-1) for g in g_phi]), fd) <= 1e-6


@pytest.mark.parametrize("beta", [0.0, 0.7])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_grad_F_matches_finite_differences(beta, seed):
    params, lf, lr = _problem(seed)
    rho = 3.0
    grad_f, diag = penalty_grad(params, lf, lr, beta, rho, variant="exact")
    fd = _central_fd(lambda p: _F(p, lf, lr, beta, rho), params)
    assert _rel_err(torch.cat([g.reshape(-1) for g in grad_f]), fd) <= 1e-6
    assert diag["F"] == pytest.approx(float(_F(params, lf, lr, beta, rho).detach()), rel=1e-12)


def test_cheap_grad_F_equals_exact_when_beta_is_zero():
    params, lf, lr = _problem(3)
    exact, _ = penalty_grad(params, lf, lr, 0.0, 2.0, variant="exact")
    cheap, _ = penalty_grad(params, lf, lr, 0.0, 2.0, variant="cheap")
    for a, b in zip(exact, cheap):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_cheap_grad_F_differs_from_exact_when_beta_is_positive():
    # guards against the cheap path silently computing the exact one (or vice versa)
    params, lf, lr = _problem(4)
    exact, _ = penalty_grad(params, lf, lr, 0.7, 2.0, variant="exact")
    cheap, _ = penalty_grad(params, lf, lr, 0.7, 2.0, variant="cheap")
    diff = torch.cat([(a - b).reshape(-1) for a, b in zip(exact, cheap)]).norm()
    assert diff > 1e-6


def test_cheap_grad_F_matches_its_definition():
    # grad L_r + 2 rho Hess(L_f) grad Phi, with Hess(L_f) v by central differences of grad L_f
    params, lf, lr = _problem(5)
    beta, rho, h = 0.7, 2.0, 1e-5
    cheap, _ = penalty_grad(params, lf, lr, beta, rho, variant="cheap")
    g_phi, _ = grad_phi(params, lf, lr, beta)

    def grad_lf_at(shift):
        q = [(p.detach() + shift * v).requires_grad_(True) for p, v in zip(params, g_phi)]
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(lf(q), q)])

    hv = (grad_lf_at(h) - grad_lf_at(-h)) / (2 * h)
    g_r = torch.cat([g.reshape(-1) for g in torch.autograd.grad(lr(params), params)])
    expected = g_r + 2 * rho * hv
    assert _rel_err(torch.cat([g.reshape(-1) for g in cheap]), expected) <= 1e-6
