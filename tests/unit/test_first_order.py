"""The first-order OFMU (``derivatives: first_order``): gradient differences against autograd's exact
derivatives in float64, its gradient-evaluation count against the hand count, that it needs no higher
derivatives (fused LayerNorm, SDPA attention, an op without double backward), and its bad inputs."""

import math

import numpy as np

import pytest
import torch

from ofmu.core.ofmu import (NonFiniteError, OFMUConfig, grad_phi, grad_phi_first_order, ofmu_iteration,
                            penalty_grad, penalty_grad_first_order)

from test_derivatives import _problem  # the smooth non-quadratic float64 problem of the exact-derivative tests

pytestmark = pytest.mark.usefixtures("float64")  # see tests/conftest.py


def _rel(a, b) -> float:
    a, b = torch.cat([x.reshape(-1) for x in a]), torch.cat([x.reshape(-1) for x in b])
    return float((a - b).norm() / b.norm())


# Relative error at the default ("auto") step, float64. One difference: <= 1e-5 (measured 1e-8..1e-10).
# grad F with beta > 0 and forward differences is a difference of differences: its round-off is divided by
# both steps, so its floor is O(eps^(1/3)) ~ 1e-4 (measured 7.5e-6..1.2e-4 on these problems; README).
@pytest.mark.parametrize("scheme, beta, phi_tol, F_tol", [
    ("forward", 0.0, 1e-12, 1e-5), ("forward", 0.7, 1e-5, 3e-4),
    ("central", 0.0, 1e-12, 1e-5), ("central", 0.7, 1e-5, 1e-5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_order_matches_exact_at_the_default_step(scheme, beta, phi_tol, F_tol, seed):
    params, lf, lr = _problem(seed)
    exact_phi, _ = grad_phi(params, lf, lr, beta)
    approx_phi, _ = grad_phi_first_order(params, lf, lr, beta, fd_scheme=scheme)
    assert _rel(approx_phi, exact_phi) <= phi_tol
    for variant in ("exact", "cheap"):
        exact_F, d_exact = penalty_grad(params, lf, lr, beta, 0.8, variant)
        approx_F, d_approx = penalty_grad_first_order(params, lf, lr, beta, 0.8, variant, fd_scheme=scheme)
        assert _rel(approx_F, exact_F) <= F_tol
        assert d_approx["F"] == pytest.approx(d_exact["F"], rel=F_tol)
        assert d_approx["cos"] == pytest.approx(d_exact["cos"], rel=1e-9)


def test_the_error_is_first_order_in_the_step_for_forward_differences():
    """Truncation regime: 10x smaller step -> ~10x smaller error (forward), ~100x (central)."""
    params, lf, lr = _problem(0)
    exact, _ = grad_phi(params, lf, lr, 0.7)
    for scheme, factor in (("forward", 10.0), ("central", 100.0)):
        errs = [_rel(grad_phi_first_order(params, lf, lr, 0.7, fd_step=h, fd_scheme=scheme)[0], exact)
                for h in (1e-2, 1e-3)]
        assert errs[0] / errs[1] == pytest.approx(factor, rel=0.1)


def _counting(loss, counter):
    def counted(p):
        counter[0] += 1
        return loss(p)
    return counted


@pytest.mark.parametrize("scheme, beta, phi_evals, F_evals", [
    ("forward", 0.5, 4, 8), ("forward", 0.0, 1, 3), ("central", 0.5, 6, 18), ("central", 0.0, 1, 4)])
def test_gradient_evaluations_match_the_hand_count(scheme, beta, phi_evals, F_evals):
    """grad Phi = g_f, g_r + one (forward) or two (central) gradients per product H_f a, H_r b; grad F adds
    g_r (beta = 0) and grad Phi at one or two perturbed points (beta > 0) or g_f there (beta = 0)."""
    params, lf, lr = _problem(0)
    n = [0]
    grad_phi_first_order(params, _counting(lf, n), _counting(lr, n), beta, fd_scheme=scheme)
    assert n[0] == phi_evals
    n[0] = 0
    penalty_grad_first_order(params, _counting(lf, n), _counting(lr, n), beta, 1.0, fd_scheme=scheme)
    assert n[0] == F_evals


def test_parameters_are_restored_bit_for_bit():
    params, lf, lr = _problem(1)
    before = [p.detach().clone() for p in params]
    penalty_grad_first_order(params, lf, lr, 0.7, 1.0, fd_scheme="central")
    assert all(torch.equal(p, b) for p, b in zip(params, before))


class _NoDoubleBackward(torch.autograd.Function):
    """tanh whose backward is not differentiable: autograd's exact grad F cannot pass it."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y**2)


def test_first_order_needs_no_higher_derivatives():
    """An op whose backward is not differentiable (as many fused kernels): the exact grad F is silently
    wrong, the first-order one equals the exact grad F of the same function built from plain ops."""
    g = torch.Generator().manual_seed(0)
    x_f, x_r = torch.randn(6, 3, generator=g), torch.randn(8, 3, generator=g)
    params = [torch.randn(3, 4, generator=g, requires_grad=True), torch.randn(4, generator=g, requires_grad=True)]
    lf = lambda p: (_NoDoubleBackward.apply(x_f @ p[0]) @ p[1]).pow(2).mean()  # noqa: E731
    lr = lambda p: (_NoDoubleBackward.apply(x_r @ p[0]) @ p[1] - 1).pow(2).mean()  # noqa: E731
    twin_f = lambda p: (torch.tanh(x_f @ p[0]) @ p[1]).pow(2).mean()  # noqa: E731
    twin_r = lambda p: (torch.tanh(x_r @ p[0]) @ p[1] - 1).pow(2).mean()  # noqa: E731
    truth, _ = penalty_grad(params, twin_f, twin_r, 0.5, 1.0)
    # autograd does not fail here: it drops the op's curvature without a word (measured 44% off) ...
    assert _rel(penalty_grad(params, lf, lr, 0.5, 1.0)[0], truth) > 0.1
    # ... while the first-order variant only ever asks for first derivatives
    assert _rel(penalty_grad_first_order(params, lf, lr, 0.5, 1.0, fd_scheme="central")[0], truth) <= 1e-5


def test_first_order_runs_gpt2_with_fused_layernorm_and_sdpa():
    """The paper tier's kernels: fused LayerNorm (wrong third derivatives) and SDPA attention (no double
    backward on CPU). The first-order grad F on that model equals the exact one of its eager,
    primitive-LayerNorm twin with the same weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from ofmu.llm.models import use_primitive_layernorm

    def model(attn):
        cfg = GPT2Config(vocab_size=30, n_positions=16, n_embd=16, n_layer=1, n_head=2, resid_pdrop=0.0,
                         embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation=attn)
        torch.manual_seed(0)
        return GPT2LMHeadModel(cfg).double()

    fused, twin = model("sdpa"), model("eager")
    use_primitive_layernorm(twin)
    twin.load_state_dict(fused.state_dict())
    g = torch.Generator().manual_seed(1)
    ids_f, ids_r = torch.randint(0, 30, (3, 8), generator=g), torch.randint(0, 30, (4, 8), generator=g)

    def lm_loss(m, ids):  # transformers' own loss casts logits to float32: computed here in float64
        logits = m(input_ids=ids).logits[:, :-1]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    def losses(m):
        return (lambda p: lm_loss(m, ids_f)), (lambda p: lm_loss(m, ids_r))

    approx, _ = penalty_grad_first_order(list(fused.parameters()), *losses(fused), 0.3, 1.0, fd_scheme="central")
    exact, _ = penalty_grad(list(twin.parameters()), *losses(twin), 0.3, 1.0)
    assert _rel(approx, exact) <= 1e-4


@pytest.mark.parametrize("key, value", [
    ("fd_step", 0.0), ("fd_step", -1e-3), ("fd_step", math.nan), ("fd_step", math.inf), ("fd_step", True),
    ("fd_step", "small"), ("derivatives", "second_order"), ("derivatives", 1), ("fd_scheme", "backward")])
def test_bad_first_order_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"'{key}'"):
        OFMUConfig(**{key: value})


def test_a_non_finite_difference_stops_the_run_with_the_divergence_message():
    """The objective is finite at theta but not at the perturbed point of the difference."""
    p = torch.tensor([0.5], requires_grad=True)
    forget = lambda q: -torch.sqrt(0.6 - q.sum())  # noqa: E731 - defined for q < 0.6; the step moves q to 2
    retain = lambda q: (q**2).sum()  # noqa: E731
    cfg = OFMUConfig(beta=0.0, inner_steps=0, derivatives="first_order", fd_step=1.0)
    with pytest.raises(NonFiniteError, match="diverged"):
        ofmu_iteration([p], lambda: (lambda q: forget(q[0]), lambda q: retain(q[0])), cfg, rho=1.0)


def test_fidelity_along_a_diverging_run_keeps_the_iterations_before_and_warns():
    """An OFMU run that blows up mid-way (ascent on an unbounded forget loss) ends the comparison there."""
    from ofmu.unlearning.fidelity import along_run

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    x = torch.randn(8, 3, dtype=torch.float64)

    class Task:
        def loss(self, m, batch):
            return (m(batch) ** 2).mean()

    settings = {"beta": 0.0, "inner_steps": 1, "inner_lr": 1e30, "outer_lr": 1e-3, "rho0": 1.0}
    with pytest.warns(UserWarning, match=r"diverged.*outer iterations 0\.\.\d+ only") as caught:
        rows = along_run(model, [x], [x], Task(), settings, iterations=12, problem="tiny", steps=[1e-4])
    stopped = int(str(caught[0].message).split("at outer iteration ")[1].split(";")[0])
    assert 0 < stopped < 12 and {r["iteration"] for r in rows} == set(range(stopped))
    assert all(np.isfinite(r["rel_error"]) for r in rows)
    finite = along_run(model, [x], [x], Task(), {**settings, "inner_lr": 1e-3}, iterations=3, problem="tiny",
                       steps=[1e-4])
    assert {r["iteration"] for r in finite} == {0, 1, 2}
