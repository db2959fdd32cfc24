"""Each method's hook moves the parameters the way its definition says, checked against gradients computed
independently here; on a small CNN trained on sklearn digits (fixed forget and retain batches)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from ofmu.registry import UnknownNameError
from ofmu.vision.data import TensorLoader, load_dataset
from ofmu.unlearning.loop import ClassificationTask, Context, run_unlearning
from ofmu.unlearning.methods import make_method
from ofmu.vision.models import build_model

PLAIN = {"momentum": 0.0, "weight_decay": 0.0}  # one step = -lr * hook gradient, exactly


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits")
    model = build_model("small_cnn", 0, in_channels=1, image_size=8, num_classes=10, width=8, hidden=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = TensorLoader(data.train_x, data.train_y, 64, seed=0)
    for _ in range(6):  # a briefly trained model: forget loss small, so ascent has something to undo
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    fb = (data.train_x[:32], data.train_y[:32])
    rb = (data.train_x[32:96], data.train_y[32:96])
    return model, fb, rb


def _ctx(model, fb, rb, seed=0):
    # one full batch per loader, not shuffled: every draw returns the same batch
    forget = TensorLoader(*fb, batch_size=len(fb[1]), shuffle=False)
    retain = TensorLoader(*rb, batch_size=len(rb[1]), shuffle=False)
    return Context(model=model, task=ClassificationTask(10), device=torch.device("cpu"), seed=seed,
                   forget_loader=forget, retain_loader=retain, generator=torch.Generator().manual_seed(seed),
                   total_steps=1)


def _loss(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def _grad(model, batch, labels=None):
    x, y = batch
    return torch.autograd.grad(F.cross_entropy(model(x), y if labels is None else labels), list(model.parameters()))


def _vec(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _params(model):
    return _vec([p.detach() for p in model.parameters()]).clone()


def _one_step(name, model, fb, rb, **hp):
    model = copy.deepcopy(model)
    before = _params(model)
    method = make_method(name, **hp)
    ctx = _ctx(model, fb, rb)
    method.setup(ctx)
    ctx.total_steps = 1
    diag = method.step(ctx) if method.num_steps(ctx, 1) > 0 else {}
    return model, before, _params(model) - before, method, diag


def _expected_step(model, lr, direction):
    return -lr * _vec(direction)


@pytest.mark.parametrize("name, combine", [
    ("FT", lambda gf, gr: gr),
    ("GA", lambda gf, gr: [-g for g in gf]),
    ("GradDiff", lambda gf, gr: [r - f for f, r in zip(gf, gr)]),
])
def test_simple_hooks_step_along_their_gradient(setup, name, combine):
    model, fb, rb = setup
    lr = 1e-2
    new, _, delta, _, _ = _one_step(name, model, fb, rb, lr=lr, **PLAIN)
    expected = _expected_step(model, lr, combine(_grad(model, fb), _grad(model, rb)))
    assert torch.allclose(delta, expected, atol=1e-6, rtol=1e-4)
    # and the losses move the intended way
    if name == "GA":
        assert _loss(new, fb) > _loss(model, fb)
    if name == "FT":
        assert _loss(new, rb) < _loss(model, rb)
    if name == "GradDiff":
        assert _loss(new, rb) - _loss(new, fb) < _loss(model, rb) - _loss(model, fb)


def test_graddiff_weight_and_scalarized(setup):
    model, fb, rb = setup
    gf, gr = _grad(model, fb), _grad(model, rb)
    _, _, delta, _, _ = _one_step("GradDiff", model, fb, rb, lr=1e-2, forget_weight=0.3, **PLAIN)
    assert torch.allclose(delta, -1e-2 * (_vec(gr) - 0.3 * _vec(gf)), atol=1e-6, rtol=1e-4)
    _, _, delta, _, _ = _one_step("Scalarized", model, fb, rb, lr=1e-2, weight=0.3)  # plain gradient step
    assert torch.allclose(delta, -1e-2 * (_vec(gr) - 0.3 * _vec(gf)), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["RL", "SalUn"])
def test_random_label_methods(setup, name):
    model, fb, rb = setup
    # the labels the method will draw: the loop's generator, seeded with the run seed, shift 1..9 mod 10
    shift = torch.randint(1, 10, fb[1].shape, generator=torch.Generator().manual_seed(0))
    rand = (fb[1] + shift) % 10
    assert not torch.any(rand == fb[1])
    new, _, delta, method, _ = _one_step(name, model, fb, rb, lr=0.05, **PLAIN)
    expected = -0.05 * (_vec(_grad(model, fb, rand)) + _vec(_grad(model, rb)))
    if name == "SalUn":
        mask = _vec(method.mask)
        assert 0.45 < float(mask.mean()) < 0.55  # top 50% of the weights
        sal = _vec(_grad(model, fb)).abs()
        assert sal[mask == 1].min() >= sal[mask == 0].max()  # the mask keeps the most salient weights
        expected = expected * mask
        assert torch.all(delta[mask == 0] == 0)  # no weight decay here, so unmasked weights stay put
    assert torch.allclose(delta, expected, atol=1e-6, rtol=1e-4)
    assert _loss(new, fb) > _loss(model, fb)  # the true-label forget loss goes up


def test_l1_sparse_adds_decaying_l1_subgradient(setup):
    model, fb, rb = setup
    alpha = 1e-3
    _, before, delta, _, _ = _one_step("l1-sparse", model, fb, rb, lr=1e-2, alpha=alpha, **PLAIN)
    expected = -1e-2 * (_vec(_grad(model, rb)) + alpha * torch.sign(before))  # progress 0: full alpha
    assert torch.allclose(delta, expected, atol=1e-6, rtol=1e-4)


def test_blur_removes_the_conflicting_retain_component(setup):
    model, fb, rb = setup
    u = -_vec(_grad(model, fb))
    v = _vec(_grad(model, rb))
    if torch.dot(u, v) < 0:
        v_used = v - torch.dot(u, v) / torch.dot(u, u) * u
    else:
        v_used = v
    _, _, delta, _, diag = _one_step("BLUR", model, fb, rb, lr=1e-2, lam=0.5, **PLAIN)
    assert torch.allclose(delta, -1e-2 * (u + 0.5 * v_used), atol=1e-6, rtol=1e-4)
    assert torch.dot(u, v_used) >= -1e-6 * u.norm() * v_used.norm()  # never works against forgetting
    assert diag["projected"] == float(torch.dot(u, v) < 0)


def test_blur_projection_on_a_conflicting_pair():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0]])
    # the same example in both sets: ascent and descent on it point in exactly opposite directions (v = -u)
    fb, rb = (x, torch.tensor([0])), (x, torch.tensor([0]))
    g = torch.autograd.grad(F.cross_entropy(model(x), fb[1]), [model.weight])[0]
    ctx = _ctx(model, fb, rb)
    m = make_method("BLUR", "vision", lr=1.0, lam=1.0, **PLAIN)
    m.setup(ctx)
    diag = m.step(ctx)
    assert diag["projected"] == 1.0 and diag["dot_uv"] < 0
    # the projected retain part vanishes, so the step is pure forgetting: theta - lr * u = eye + g
    # (GradDiff's direction u + v would be zero here: no step at all)
    assert torch.allclose(model.weight.detach(), torch.eye(2) + g, atol=1e-6)


def test_pdu_primal_and_dual_updates(setup):
    model, fb, rb = setup
    l_r0 = float(_loss(model, rb).detach())
    _, _, delta, method, diag = _one_step("PDU", model, fb, rb, lr=1e-2, lam0=2.0, dual_lr=0.5, eps_slack=0.1,
                                          eps_batches=3, **PLAIN)
    assert method.eps == pytest.approx(l_r0 + 0.1, rel=1e-5)  # eps = initial retain loss + slack
    expected = -1e-2 * (-_vec(_grad(model, fb)) + 2.0 * _vec(_grad(model, rb)))
    assert torch.allclose(delta, expected, atol=1e-6, rtol=1e-4)
    # L_r < eps at the start, so the dual variable decreases by dual_lr * (L_r - eps) = -0.05
    assert method.lam == pytest.approx(max(0.0, 2.0 + 0.5 * (l_r0 - method.eps)), rel=1e-5)
    assert diag["lam"] == 2.0


def test_iu_one_shot_fisher_newton_step(setup):
    model, fb, rb = setup
    new, _, delta, method, _ = _one_step("IU", model, fb, rb, alpha=2.0, damping=0.1, fisher_batches=2)
    g_f, g_r = _vec(_grad(model, fb)), _vec(_grad(model, rb))
    n_f, n_r = len(fb[1]), len(rb[1])
    fisher = n_r * g_r**2  # two draws of the same batch: B * (batch gradient)^2
    expected = 2.0 * n_f / n_r * g_f / (fisher + 0.1)
    assert torch.allclose(delta, expected, atol=1e-6, rtol=1e-4)
    assert method.num_steps(_ctx(model, fb, rb), 5) == 0
    assert _loss(new, fb) > _loss(model, fb)


def test_ofmu_step_matches_a_hand_written_iteration(setup):
    model, fb, rb = setup
    # T = 1, beta = 0: theta' = theta + eta_in grad L_f; theta+ = theta' - eta_out (grad L_r + 2 rho H_f grad L_f) at theta'
    new, before, delta, method, diag = _one_step(
        "OFMU", model, fb, rb, beta=0.0, inner_steps=1, inner_lr=0.05, outer_lr=0.02, rho0=0.5, gamma=1.0,
        derivatives="exact")  # the hand-written iteration uses autograd's HVP (first-order: tests/unit/test_first_order.py)
    assert method.forget_batches_per_step == 2
    ref = copy.deepcopy(model)
    params = list(ref.parameters())
    g_f0 = _grad(ref, fb)
    with torch.no_grad():
        for p, g in zip(params, g_f0):
            p.add_(0.05 * g)
    g_f = torch.autograd.grad(_loss(ref, fb), params, create_graph=True)
    hvp = torch.autograd.grad(sum((g * g.detach()).sum() for g in g_f), params)  # H_f grad L_f
    g_r = _grad(ref, rb)
    with torch.no_grad():
        for p, r, h in zip(params, g_r, hvp):
            p.sub_(0.02 * (r + 2 * 0.5 * h))
    assert torch.allclose(_params(new), _params(ref), atol=1e-6, rtol=1e-4)
    assert diag["rho"] == 0.5


def test_ofmu_inner_ascent_forgets(setup):
    model, fb, rb = setup
    new, _, _, _, _ = _one_step("OFMU", model, fb, rb, beta=0.1, inner_steps=3, inner_lr=0.05, outer_lr=1e-4, rho0=0.0)
    assert _loss(new, fb) > _loss(model, fb)


def test_retrain_restarts_from_fresh_weights(setup):
    model, fb, rb = setup
    fresh = build_model("small_cnn", 7, in_channels=1, image_size=8, num_classes=10, width=8, hidden=32)
    m = copy.deepcopy(model)
    method = make_method("Retrain", epochs=1)
    method.setup(_ctx(m, fb, rb, seed=7))
    assert torch.equal(_params(m), _params(fresh))  # re-drawn from the seed, the trained weights are gone


def test_bad_method_input_errors(setup):
    with pytest.raises(UnknownNameError, match="valid methods: .*GradDiff.*OFMU"):
        make_method("GradientDiff")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['learning_rate'\].*valid"):
        make_method("GA", learning_rate=0.1)
    with pytest.raises(ValueError, match="inner_steps"):
        make_method("OFMU", inner_steps=-1)
    model, fb, rb = setup
    ctx = _ctx(copy.deepcopy(model), fb, rb)
    with pytest.raises(ValueError, match="> 0 epochs"):
        run_unlearning(ctx.model, make_method("GA"), ctx.forget_loader, ctx.retain_loader, ctx.task, 0, seed=0)
    with pytest.raises(ValueError, match="needs a forget loader"):
        run_unlearning(ctx.model, make_method("GA"), None, ctx.retain_loader, ctx.task, 1, seed=0)
