"""LLM-only unlearning methods on the shared loop: loss values by hand, update directions against gradients
computed independently here, the OFMU path on a tiny GPT-2, and registry/error behaviour."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # forced: no hub on these machines, fail at once

import math

import pytest
import torch
import torch.nn.functional as F

from ofmu.core.fdcheck import directional_fd_error
from ofmu.core.ofmu import gradient_cosine, penalty_grad
from ofmu.llm.data import IGNORE_INDEX
from ofmu.llm.models import GPT2Spec, build_gpt2
from ofmu.llm.unlearn import (
    LanguageModelTask, dpo_loss, npo_loss, simnpo_loss,
)
from ofmu.unlearning.loop import Context, run_unlearning
from ofmu.unlearning.methods import make_method

PLAIN = {"momentum": 0.0, "weight_decay": 0.0}  # one step = -lr * hook gradient, exactly
VOCAB, SEQ = 20, 7


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _batch(g, n, prompt=3):
    ids = torch.randint(2, VOCAB, (n, SEQ), generator=g)
    labels = ids.clone()
    labels[:, :prompt] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    forget, retain = _batch(g, 3), _batch(g, 4)
    forget["alternate"] = _batch(g, 3)  # "I don't know" answers to the same questions
    return forget, retain


def _model(dtype=torch.float64):
    return build_gpt2(VOCAB, GPT2Spec(n_layer=2, n_embd=8, n_head=2, n_positions=SEQ), seed=3, dtype=dtype)


def _seq_nll(model, batch):
    """-log pi(answer | prompt), summed over answer tokens, from log_softmax directly (independent of the code)."""
    logp = torch.log_softmax(model(input_ids=batch["input_ids"]).logits, -1)
    ids, labels = batch["input_ids"], batch["labels"]
    out = []
    for b in range(ids.shape[0]):
        out.append(-sum(logp[b, t - 1, ids[b, t]] for t in range(1, ids.shape[1]) if labels[b, t] != IGNORE_INDEX))
    return torch.stack(out)


def _n_answer(batch):
    return (batch["labels"][:, 1:] != IGNORE_INDEX).sum(1)


def _step(name, hp, model, forget, retain):
    """One update of the method through the loop's Context; returns the parameters before the step."""
    before = [p.detach().clone() for p in model.parameters()]
    ctx = Context(model=model, task=LanguageModelTask(), device=torch.device("cpu"), seed=0,
                  forget_loader=[forget], retain_loader=[retain], generator=torch.Generator().manual_seed(0))
    method = make_method(name, **hp)
    method.setup(ctx)
    method.step(ctx)
    return before, method


def _expected_update(model, before, loss_fn, lr):
    """Parameters after one plain gradient step on loss_fn, computed here from the saved start point."""
    probe = _model()
    with torch.no_grad():
        for p, b in zip(probe.parameters(), before):
            p.copy_(b)
    grads = torch.autograd.grad(loss_fn(probe), list(probe.parameters()))
    return [b - lr * g for b, g in zip(before, grads)]


# ------------------------------------------------------------------------------------------ hand values
def test_npo_simnpo_dpo_losses_match_a_hand_computation():
    nll, ref = torch.tensor([2.0, 5.0]), torch.tensor([3.0, 4.0])
    beta = 0.1
    # log(pi/pi_ref) = ref - nll = [1, -1]; loss = (2/beta) mean(log(1 + exp(beta * [1, -1])))
    hand = 2 / beta * (math.log1p(math.exp(0.1)) + math.log1p(math.exp(-0.1))) / 2
    assert float(npo_loss(nll, ref, beta)) == pytest.approx(hand, rel=1e-6)
    lengths = torch.tensor([4.0, 5.0])  # per-token NLL [0.5, 1.0]
    hand = 2 / 4.5 * (math.log1p(math.exp(-4.5 * (0.5 - 0.2))) + math.log1p(math.exp(-4.5 * (1.0 - 0.2)))) / 2
    assert float(simnpo_loss(nll, lengths, 4.5, 0.2)) == pytest.approx(hand, rel=1e-6)
    # DPO margin = (win_ref - win) - (lose_ref - lose) = (1 - 2) - (3 - 2) = -2 for the single example
    hand = 2 / beta * math.log1p(math.exp(beta * 2))
    assert float(dpo_loss(torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0]), beta)) \
        == pytest.approx(hand, rel=1e-6)


def test_npo_at_the_reference_is_ga_scaled_by_one():
    # at pi = pi_ref the NPO gradient equals GA's (loss -nll): d/dnll (2/beta) log(1 + exp(-beta(nll - ref)))
    # = -2 sigmoid(0) = -1 per example, averaged over 2 examples
    nll = torch.tensor([1.5, 2.5], requires_grad=True)
    npo_loss(nll, nll.detach(), 0.1).backward()
    torch.testing.assert_close(nll.grad, torch.full((2,), -0.5))


# -------------------------------------------------------------------------------- update directions
@pytest.mark.parametrize("name, hp, expected_loss", [
    # forget terms only (alpha = 0): the update is the gradient of the independently written loss
    ("NPO", {"alpha": 0.0}, lambda m, f, r, ref: npo_loss(_seq_nll(m, f), _seq_nll(ref, f).detach(), 0.1)),
    ("SimNPO", {"alpha": 0.0},
     lambda m, f, r, ref: 0.125 * simnpo_loss(_seq_nll(m, f), _n_answer(f), 4.5, 0.0)),
    ("IdkDPO", {"alpha": 0.0},
     lambda m, f, r, ref: dpo_loss(_seq_nll(m, f["alternate"]), _seq_nll(ref, f["alternate"]).detach(),
                                   _seq_nll(m, f), _seq_nll(ref, f).detach(), 0.1)),
    # retain term only (gamma = 0): mean over examples of the per-token mean NLL
    ("NPO", {"gamma": 0.0}, lambda m, f, r, ref: (_seq_nll(m, r) / _n_answer(r)).mean()),
])
def test_llm_method_step_follows_the_gradient_of_its_loss(name, hp, expected_loss):
    forget, retain = _batches()
    model = _model()
    ref = _model()  # the reference = the model before the step (same seed, same weights)
    lr = 0.05
    before, _ = _step(name, {**PLAIN, "lr": lr, **hp}, model, forget, retain)
    expected = _expected_update(model, before, lambda m: expected_loss(m, forget, retain, ref), lr)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["NPO", "SimNPO", "IdkDPO"])
def test_a_small_forget_step_lowers_the_forget_answer_probability(name):
    forget, retain = _batches(1)
    model = _model()

    @torch.no_grad()
    def measure():
        # NPO/SimNPO: the forget answer's NLL; IdkDPO: its NLL relative to the "I don't know" answer (a
        # DPO step guarantees only the margin: with shared weights both answers may move the same way)
        nll = _seq_nll(model, forget).sum()
        return nll - _seq_nll(model, forget["alternate"]).sum() if name == "IdkDPO" else nll

    start = measure()
    _step(name, {**PLAIN, "lr": 1e-2, "alpha": 0.0}, model, forget, retain)
    assert measure() > start  # higher NLL = lower probability


def test_the_retain_term_lowers_the_retain_nll():
    forget, retain = _batches(2)
    model = _model()
    with torch.no_grad():
        start = _seq_nll(model, retain).sum()
    _step("NPO", {**PLAIN, "lr": 1e-2, "gamma": 0.0}, model, forget, retain)
    with torch.no_grad():
        assert _seq_nll(model, retain).sum() < start


def test_rmu_updates_only_its_trainable_weights_and_moves_towards_the_control_vector():
    forget, retain = _batches(3)
    model = _model()
    hp = {**PLAIN, "lr": 0.05, "alpha": 0.0, "layer": "transformer.h.1",
          "trainable": r"transformer\.h\.[01]\.mlp\.c_proj\.weight", "steering_coeff": 5.0}
    before, method = _step("RMU", hp, model, forget, retain)
    trained = {n for n, _ in model.named_parameters() if n.endswith("mlp.c_proj.weight")}
    for (n, p), b in zip(model.named_parameters(), before):
        assert torch.equal(p.detach(), b) != (n in trained), n
    task = LanguageModelTask()

    @torch.no_grad()
    def dist():
        act, mask = task.module_output(model, forget, "transformer.h.1")
        return float((((act - method.control) ** 2).mean(-1) * mask).sum())

    after = dist()
    with torch.no_grad():
        for p, b in zip(model.parameters(), before):
            p.copy_(b)
    assert after < dist()


def test_errors_name_the_fix():
    forget, retain = _batches()
    del forget["alternate"]
    with pytest.raises(ValueError, match="alternate_answers"):
        _step("IdkDPO", PLAIN, _model(), forget, retain)
    with pytest.raises(ValueError, match="transformer blocks are"):
        _step("RMU", {**PLAIN, "layer": "transformer.h.9"}, _model(), forget, retain)
    with pytest.raises(NotImplementedError, match="IdkDPO"):
        _step("RL", PLAIN, _model(), forget, retain)
    with pytest.raises(ValueError, match="beta"):
        make_method("NPO", beta=0)


# --------------------------------------------------------------------------------------- OFMU path
def test_ofmu_runs_through_the_shared_loop_on_a_tiny_gpt2_and_its_grad_F_matches_finite_differences():
    forget, retain = _batches(4)
    task = LanguageModelTask()
    model = _model()
    # the objectives the OFMU hook builds: task.loss on a forget and a retain batch
    params = list(model.parameters())
    lf, lr = (lambda p: task.loss(model, forget)), (lambda p: task.loss(model, retain))
    beta, rho, h = 0.5, 2.0, 1e-6
    grad_f, _ = penalty_grad(params, lf, lr, beta, rho, variant="exact")

    def F_value():
        g_f = torch.autograd.grad(lf(params), params, create_graph=True)
        g_r = torch.autograd.grad(lr(params), params, create_graph=True)
        g_phi = torch.autograd.grad(lf(params) - beta * gradient_cosine(g_f, g_r, 1e-12), params)
        return float(lr(params).detach()) + rho * float(sum((g ** 2).sum() for g in g_phi))

    # directional derivatives along random unit vectors (all coordinates would take minutes)
    assert directional_fd_error(F_value, params, grad_f, n_dirs=4, h=h, seed=0) <= 1e-6

    res = run_unlearning(model, make_method("OFMU", inner_steps=2, inner_lr=1e-2, outer_lr=1e-2, beta=0.1),
                         [forget] * 3, [retain], task, epochs=2, seed=0)
    assert res.steps == 2 and res.forget_batches == 6  # (T + 1) forget batches per outer iteration
    for key in ("cos", "grad_phi_norm", "rho", "L_f", "L_r"):
        assert math.isfinite(res.history[-1][key])
