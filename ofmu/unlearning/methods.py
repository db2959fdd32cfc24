"""Unlearning methods as small hooks on the one loop (``loop.py``), registered in ``ofmu.registry.METHODS``.

Conventions: L_f = mean cross-entropy on a forget batch (maximized to forget), L_r = the same on a retain
batch (minimized to keep utility). Every method draws fresh mini-batches through the loop's context, so the
budget of passes over D_f is counted in one place.

Each class declares the setting names it accepts (``keys``); the values, with their sources, live in
``config/methods/<name>.yaml`` (``ofmu.unlearning.settings``), never in this module.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from ofmu.core.ofmu import OFMUConfig, check_scalarized, ofmu_iteration, rho_schedule, scalarized_iteration
from ofmu.registry import METHODS
from ofmu.seeds import seeded
from ofmu.unlearning.loop import Context, LossMethod, Method, SGDMethod, num_examples

Tensor = torch.Tensor
SGD_KEYS = SGDMethod.keys


def _f(t: Tensor) -> float:
    """A diagnostic number from a tensor that may carry a graph."""
    return float(t.detach())


def register_method(name: str):
    """Class decorator: register a method under ``name`` (its settings file is config/methods/<name>.yaml)."""

    def deco(cls):
        cls.name = name
        return METHODS.register(name)(cls)

    return deco


def make_method(name: str, domain: str | None = None, **overrides: Any) -> Method:
    """A method with its settings from ``config/methods/<name>.yaml`` (defaults, then the ``domain`` block),
    then ``overrides``. Unknown names list the valid ones; unknown keys are rejected by name."""
    from ofmu.unlearning.settings import method_class, method_settings

    return method_class(name)(**method_settings(name, domain, overrides))


def reset_parameters(model: torch.nn.Module, seed: int) -> None:
    """Re-draw every layer's weights from ``seed`` (used by Retrain: from scratch, same architecture)."""
    with seeded(seed):
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
        if type(model).__name__ == "ResNet":
            # torchvision's ResNet overrides the layer defaults after construction; repeat that here so a
            # retrained ResNet starts from the same distribution as a freshly built one
            for module in model.modules():
                if isinstance(module, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                    torch.nn.init.constant_(module.weight, 1)
                    torch.nn.init.constant_(module.bias, 0)



@register_method("Retrain")
class Retrain(LossMethod):
    """Train from scratch on D_r (the gold standard); also trains the original model on the full set."""

    keys = SGD_KEYS + ("epochs",)

    uses_forget = False

    def num_steps(self, ctx: Context, epochs: float) -> int:
        # its own budget: `epochs` hyperparameter over D_r; the loop's D_f budget does not apply
        if ctx.retain_loader is None:
            raise ValueError("Retrain needs a retain loader")
        return max(1, int(round(self.hparams["epochs"] * len(ctx.retain_loader))))

    def setup(self, ctx: Context) -> None:
        reset_parameters(ctx.model, ctx.seed)
        super().setup(ctx)

    def loss(self, ctx, fb, rb):
        l_r = ctx.loss(rb)
        return l_r, {"L_r": _f(l_r)}


@register_method("FT")
class FineTune(LossMethod):
    uses_forget = False

    def loss(self, ctx, fb, rb):
        l_r = ctx.loss(rb)
        return l_r, {"L_r": _f(l_r)}


@register_method("GA")
class GradientAscent(LossMethod):
    uses_retain = False

    def loss(self, ctx, fb, rb):
        l_f = ctx.loss(fb)
        return -l_f, {"L_f": _f(l_f)}


@register_method("GradDiff")
class GradDiff(LossMethod):
    keys = SGD_KEYS + ("forget_weight",)
    def loss(self, ctx, fb, rb):
        l_f, l_r = ctx.loss(fb), ctx.loss(rb)
        return l_r - self.hparams["forget_weight"] * l_f, {"L_f": _f(l_f), "L_r": _f(l_r)}


@register_method("RL")
class RandomLabels(LossMethod):
    def loss(self, ctx, fb, rb):
        l_rand = ctx.loss(ctx.task.random_label_batch(fb, ctx.generator))
        l_r = ctx.loss(rb)
        return l_rand + l_r, {"L_random": _f(l_rand), "L_r": _f(l_r)}


@register_method("l1-sparse")
class L1Sparse(LossMethod):
    keys = SGD_KEYS + ("alpha",)
    uses_forget = False

    def loss(self, ctx, fb, rb):
        l_r = ctx.loss(rb)
        alpha_t = self.hparams["alpha"] * (1 - ctx.progress)  # linear decay to 0, as in Jia et al. (2023)
        l1 = sum(p.abs().sum() for p in ctx.params())
        return l_r + alpha_t * l1, {"L_r": _f(l_r), "l1": _f(l1)}


@register_method("SalUn")
class SalUn(RandomLabels):
    """RL restricted to the weights most salient for the forget loss (mask from one pass over D_f)."""

    keys = SGD_KEYS + ("mask_ratio",)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.hparams["mask_ratio"] <= 1:
            raise ValueError(f"SalUn mask_ratio must be in (0, 1], got {self.hparams['mask_ratio']}")

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        params = ctx.params()
        sal = [torch.zeros_like(p) for p in params]
        for _ in range(len(ctx.forget_loader)):  # one pass over D_f, accumulated |grad L_f|
            fb = ctx.next_forget()
            grads = torch.autograd.grad(ctx.loss(fb), params)
            for s, g in zip(sal, grads):
                s.add_(g)
        flat = torch.cat([s.abs().flatten() for s in sal])
        k = max(1, int(round(self.hparams["mask_ratio"] * flat.numel())))
        threshold = torch.topk(flat, k, sorted=False).values.min()  # one global threshold, as in SalUn
        self.mask = [(s.abs() >= threshold).to(s.dtype) for s in sal]

    def before_update(self, ctx: Context) -> None:
        for p, m in zip(ctx.params(), self.mask):
            if p.grad is not None:
                p.grad.mul_(m)


def _flat_dot(xs, ys) -> Tensor:
    return sum((x * y).sum() for x, y in zip(xs, ys))


@register_method("BLUR")
class BLUR(SGDMethod):
    """Bi-level single loop: forgetting has priority, utility is restored only where it does not conflict.

    Reading chosen here: u = -grad L_f (the descent direction of the lower-level forget objective -L_f),
    v = grad L_r. If <v, u> < 0 the retain gradient would undo forgetting, so its component along u is
    removed, v <- v - <v, u>/||u||^2 u (a one-sided PCGrad projection); the update direction is u + lam v.
    A step along -(u + lam v) therefore never increases -L_f to first order through the retain term.
    """

    keys = SGD_KEYS + ("lam",)

    def step(self, ctx: Context) -> dict[str, float]:
        params = ctx.params()
        fb, rb = ctx.next_forget(), ctx.next_retain()
        l_f, l_r = ctx.loss(fb), ctx.loss(rb)
        u = [-g for g in torch.autograd.grad(l_f, params)]
        v = list(torch.autograd.grad(l_r, params))
        dot = float(_flat_dot(u, v))
        projected = dot < 0
        if projected:
            coef = dot / max(float(_flat_dot(u, u)), 1e-30)
            v = [vi - coef * ui for vi, ui in zip(v, u)]
        lam = self.hparams["lam"]
        for p, ui, vi in zip(params, u, v):
            p.grad = ui + lam * vi
        self.apply(ctx)
        return {"L_f": _f(l_f), "L_r": _f(l_r), "dot_uv": dot, "projected": float(projected)}


@register_method("PDU")
class PrimalDual(LossMethod):
    """min -L_f s.t. L_r <= eps, by gradient descent on the Lagrangian and dual ascent on lam >= 0."""

    keys = SGD_KEYS + ("lam0", "dual_lr", "eps_slack", "eps_batches")

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        with torch.no_grad():
            base = sum(float(ctx.loss(ctx.next_retain())) for _ in range(self.hparams["eps_batches"]))
        self.eps = base / self.hparams["eps_batches"] + self.hparams["eps_slack"]
        self.lam = float(self.hparams["lam0"])

    def loss(self, ctx, fb, rb):
        l_f, l_r = ctx.loss(fb), ctx.loss(rb)
        lam = self.lam
        # dual ascent with the current retain loss; the primal step below uses lam from before the update
        self.lam = max(0.0, self.lam + self.hparams["dual_lr"] * (_f(l_r) - self.eps))
        return -l_f + lam * (l_r - self.eps), {"L_f": _f(l_f), "L_r": _f(l_r), "lam": lam, "eps": self.eps}


@register_method("IU")
class InfluenceUnlearning(Method):
    """One-shot influence removal with a diagonal-Fisher (Gauss-Newton) preconditioner.

    Removing D_f from the empirical risk moves the optimum by about (n_f/n) H^-1 grad L_f (influence
    functions); H is replaced by the diagonal empirical Fisher of D_r, estimated from mini-batch gradients
    (E[B * (batch-mean grad)^2] = per-example second moment + B * mean^2, and the mean gradient is ~0 at a
    trained model), plus damping. The method takes no loop steps; all work happens in ``setup``.
    """

    keys = ("alpha", "damping", "fisher_batches")

    forget_batches_per_step = 0

    def num_steps(self, ctx: Context, epochs: float) -> int:
        return 0

    def setup(self, ctx: Context) -> None:
        h = self.hparams
        params = ctx.params()
        g_f = [torch.zeros_like(p) for p in params]
        n_f = 0
        for _ in range(len(ctx.forget_loader)):
            fb = ctx.next_forget()
            b = len(fb[1]) if isinstance(fb, (tuple, list)) else 1
            for acc, g in zip(g_f, torch.autograd.grad(ctx.loss(fb), params)):
                acc.add_(g, alpha=b)
            n_f += b
        fisher = [torch.zeros_like(p) for p in params]
        for _ in range(h["fisher_batches"]):
            rb = ctx.next_retain()
            b = len(rb[1]) if isinstance(rb, (tuple, list)) else 1
            for acc, g in zip(fisher, torch.autograd.grad(ctx.loss(rb), params)):
                acc.add_(g.pow(2), alpha=b / h["fisher_batches"])
        n_r = num_examples(ctx.retain_loader)
        scale = h["alpha"] * n_f / n_r
        with torch.no_grad():
            for p, g, f in zip(params, g_f, fisher):
                p.add_(scale * (g / n_f) / (f + h["damping"]))
        self.diag = {"scale": scale, "grad_f_norm": float(torch.sqrt(_flat_dot(g_f, g_f))) / n_f}


@register_method("Scalarized")
class Scalarized(Method):
    """The weighted-sum ablation L_r - weight * L_f with plain gradient steps (core.scalarized_iteration)."""

    keys = ("lr", "weight")

    def validate(self) -> None:
        check_scalarized(self.hparams["weight"], self.hparams["lr"])

    def step(self, ctx: Context) -> dict[str, float]:
        model_loss = ctx.loss

        def make_objectives():
            fb, rb = ctx.next_forget(), ctx.next_retain()
            return (lambda p: model_loss(fb)), (lambda p: model_loss(rb))

        return scalarized_iteration(ctx.params(), make_objectives, self.hparams["weight"], self.hparams["lr"],
                                    iteration=ctx.step_index)


@register_method("OFMU")
class OFMU(Method):
    """OFMU on the network parameters: ``ofmu.core.ofmu.ofmu_iteration`` with fresh mini-batches.

    Each outer iteration calls ``make_objectives`` T + 1 times (T inner ascent steps + one outer step), and
    each call draws a new forget and a new retain batch, so one step costs T + 1 budget units.
    """

    keys = tuple(f.name for f in fields(OFMUConfig))

    def validate(self) -> None:
        self.cfg = OFMUConfig.from_dict(self.hparams)  # OFMUConfig checks every value and names the bad key

    @property
    def forget_batches_per_step(self) -> int:  # type: ignore[override]
        return self.cfg.inner_steps + 1

    def step(self, ctx: Context) -> dict[str, float]:
        model_loss = ctx.loss

        def make_objectives():
            fb, rb = ctx.next_forget(), ctx.next_retain()
            # the closures ignore their argument: the model's own parameters are the tensors OFMU updates
            return (lambda p: model_loss(fb)), (lambda p: model_loss(rb))

        k = ctx.step_index
        return ofmu_iteration(ctx.params(), make_objectives, self.cfg, rho_schedule(self.cfg, k), iteration=k)
