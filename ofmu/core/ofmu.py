"""The OFMU two-loop algorithm over generic differentiable objectives of torch parameters.

Notation (see theory/THEOREMS.md):
    L_f, L_r         forget and retain objectives, callables ``params -> scalar tensor``
    Phi              = L_f - beta * cos(grad L_f, grad L_r), maximized by T inner ascent steps
    F                = L_r + rho * ||grad Phi||^2, one outer descent step per iteration
    rho_{k+1}        = min(gamma * rho_k, rho_max)

Parameters are a list of leaf tensors with ``requires_grad=True``: plain tensors for the convex theory
problems, ``model.parameters()`` for networks. Objectives are re-created by a ``make_objectives``
callable before every gradient evaluation so that a caller can draw a new mini-batch each time; the
theory problems return the same deterministic closures every time.

Derivatives (checked against float64 central finite differences in tests/unit/test_derivatives.py):
    grad Phi     = g_f - beta * grad cos(g_f, g_r): one double backward (two HVPs folded into one).
    grad F exact = grad L_r + 2 rho Hess(Phi) grad Phi, by differentiating ||grad Phi||^2 through the
                   graph of grad Phi: a triple backward when beta > 0 (third derivatives of the losses).
    grad F cheap = grad L_r + 2 rho Hess(L_f) grad Phi: drops the curvature of the cosine term, one HVP
                   of L_f. Identical to the exact one when beta = 0; a poor approximation for large beta
                   (shared/derivative-notes.md measured cosine 0.12-0.65 at beta = 0.5), so it is an
                   option, never the default.

``derivatives`` says how the Hessian-vector products in these formulas are computed:
    "exact"        autograd through the graph of a gradient (double / triple backward). Needs a model whose
                   layers have correct higher derivatives (ofmu/llm/models.py: no fused LayerNorm, eager
                   attention); kept to verify the first-order variant.
    "first_order"  every product H v as a difference of two gradients on the same mini-batch, with a
                   perturbation of norm delta = fd_step * (1 + ||theta||) along v (the Jacobian-free
                   Newton-Krylov rule, Knoll & Keyes 2004; DARTS scales its step by 1/||v|| the same way).
                   Only first-order autograd, so any model (fused LayerNorm, SDPA attention) works. Cost in
                   gradient evaluations (forward differences): grad Phi 4 (beta > 0) or 1 (beta = 0); grad F
                   8 (beta > 0) or 3 (beta = 0); central differences: 6 / 1 and 18 / 4.
                   Accuracy against "exact": benchmarks/ofmu_fidelity.py, README.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Callable, Sequence

import torch

from ofmu.configs import dataclass_from_dict

Tensor = torch.Tensor
Objective = Callable[[Sequence[Tensor]], Tensor]
MakeObjectives = Callable[[], tuple[Objective, Objective]]

OUTER_GRADS = ("exact", "cheap")
OUTER_POINTS = ("inner", "anchor")
DERIVATIVES = ("exact", "first_order")
FD_SCHEMES = ("forward", "central")


class LineSearchWarning(RuntimeWarning):
    """An Armijo outer step found no decrease of F and was not taken (``line_search_failed`` in the
    diagnostics)."""


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf during optimization."""


@dataclass
class OFMUConfig:
    """Hyperparameters of one OFMU run (all plain numbers so a config file maps onto it)."""

    beta: float = 0.0  # weight of the cosine similarity penalty in Phi
    rho0: float = 1.0  # initial penalty weight
    gamma: float = 1.0  # growth factor of rho per outer iteration (>= 1)
    rho_max: float = math.inf  # cap on rho
    inner_steps: int = 5  # T: ascent steps on Phi per outer iteration (0 = gradient descent on F)
    inner_lr: float = 1e-2  # step size of the inner ascent
    outer_lr: float = 1e-2  # step size of the outer descent on F
    outer_grad: str = "exact"  # "exact" (third-order terms) or "cheap" (cosine curvature dropped)
    outer_point: str = "inner"  # where grad F is taken: "inner" iterate theta' (default) or "anchor" theta_k
    cos_eps: float = 1e-12  # smoothing of the gradient norms in the cosine
    # Armijo backtracking on F for the outer step (halve outer_lr until F drops by >= lr/2 ||grad F||^2).
    # With beta > 0, F is not globally smooth (the cosine's curvature is unbounded), so a fixed step has
    # no descent guarantee; theory claim C5 uses backtracking. Off by default (costs extra F evaluations).
    outer_backtracking: bool = False
    derivatives: str = "exact"  # how Hessian-vector products are computed: "exact" (autograd) or "first_order"
    fd_scheme: str = "forward"  # first_order: "forward" (1 extra gradient per product) or "central" (2)
    # first_order: perturbation norm relative to 1 + ||theta||; "auto" = the textbook step of the parameters'
    # dtype (``difference_step``); the experiments set a measured one in config/methods/OFMU.yaml
    fd_step: float | str = "auto"

    def __post_init__(self) -> None:
        # kinds first: True is not beta = 1 and "abc" is not a TypeError inside a comparison
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "fd_step":
                if value != "auto" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                        or not math.isfinite(value) or value <= 0):
                    raise ValueError(f"OFMU config key 'fd_step' = {value!r}: expected 'auto' or a finite number > 0")
                continue
            wants_bool = isinstance(f.default, bool)
            if wants_bool != isinstance(value, bool) or (
                    not wants_bool and isinstance(f.default, (int, float)) and not isinstance(value, (int, float))):
                kind = "true or false" if wants_bool else "a number"
                raise ValueError(f"OFMU config key {f.name!r} = {value!r}: expected {kind}")
            # infinity is a valid cap (rho_max's default: no cap), never a rate, weight or start
            if (not wants_bool and isinstance(value, float) and f.name != "rho_max" and not math.isfinite(value)):
                raise ValueError(f"OFMU config key {f.name!r} = {value!r}: expected a finite number")
        checks = [
            (self.beta >= 0, "beta", "a number >= 0"),
            (self.rho0 >= 0, "rho0", "a number >= 0"),
            (self.gamma >= 1, "gamma", "a number >= 1"),
            (self.rho_max >= self.rho0, "rho_max", "a number >= rho0"),
            (int(self.inner_steps) == self.inner_steps and self.inner_steps >= 0, "inner_steps", "an integer >= 0"),
            (self.inner_lr > 0, "inner_lr", "a number > 0"),
            (self.outer_lr > 0, "outer_lr", "a number > 0"),
            (self.outer_grad in OUTER_GRADS, "outer_grad", f"one of {OUTER_GRADS}"),
            (self.outer_point in OUTER_POINTS, "outer_point", f"one of {OUTER_POINTS}"),
            (self.cos_eps > 0, "cos_eps", "a number > 0"),
            (self.derivatives in DERIVATIVES, "derivatives", f"one of {DERIVATIVES}"),
            (self.fd_scheme in FD_SCHEMES, "fd_scheme", f"one of {FD_SCHEMES}"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"OFMU config key {key!r} = {getattr(self, key)!r}: expected {expected}")
        self.inner_steps = int(self.inner_steps)

    @classmethod
    def from_dict(cls, values: dict) -> "OFMUConfig":
        return dataclass_from_dict(cls, values, "OFMU config")

    def to_dict(self) -> dict:
        return asdict(self)


def _dot(xs: Sequence[Tensor], ys: Sequence[Tensor]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(xs, ys))


def _norm(xs: Sequence[Tensor]) -> Tensor:
    return torch.sqrt(_dot(xs, xs))


def _grads(
    out: Tensor, params: Sequence[Tensor], create_graph: bool, retain_graph: bool | None = None,
) -> tuple[Tensor, ...]:
    # allow_unused: a parameter a loss does not touch has gradient zero, not an error
    gs = torch.autograd.grad(
        out, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, gs))


def gradient_cosine(g_f: Sequence[Tensor], g_r: Sequence[Tensor], eps: float) -> Tensor:
    """cos(g_f, g_r) with norms smoothed as sqrt(||g||^2 + eps^2), so it is differentiable at g = 0."""
    nf = torch.sqrt(_dot(g_f, g_f) + eps**2)
    nr = torch.sqrt(_dot(g_r, g_r) + eps**2)
    return _dot(g_f, g_r) / (nf * nr)


OFMU_DIVERGENCE_FIX = "lower outer_lr/inner_lr or rho (rho_max, gamma)"


def check_finite(named: dict[str, object], where: str, fix: str = OFMU_DIVERGENCE_FIX) -> None:
    """NonFiniteError naming the first non-finite value, where, and ``fix`` (the solver's own settings)."""
    for name, value in named.items():
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if not bool(torch.isfinite(torch.as_tensor(v)).all()):
                raise NonFiniteError(f"non-finite {name} at {where}; the run diverged: {fix}, or check the inputs for NaN")


def grad_phi(
    params: Sequence[Tensor], forget_loss: Objective, retain_loss: Objective, beta: float,
    cos_eps: float = 1e-12, create_graph: bool = False,
) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """grad Phi = grad L_f - beta * grad cos(grad L_f, grad L_r) and the quantities it is built from
    (L_f always; L_r, g_f, g_r and cos when beta > 0).

    With ``create_graph=True`` the result stays differentiable (needed for the exact grad F).
    """
    l_f = forget_loss(params)
    if beta == 0:
        # grad Phi = grad L_f: the retain loss is not needed (an inner step then costs one gradient)
        return _grads(l_f, params, create_graph=create_graph), {"L_f": l_f}
    l_r = retain_loss(params)
    g_f = _grads(l_f, params, create_graph=True)
    g_r = _grads(l_r, params, create_graph=True)
    cos = gradient_cosine(g_f, g_r, cos_eps)
    phi = l_f - beta * cos
    g_phi = _grads(phi, params, create_graph=create_graph)
    return g_phi, {"L_f": l_f, "L_r": l_r, "g_f": g_f, "g_r": g_r, "cos": cos}


def penalty_grad(
    params: Sequence[Tensor], forget_loss: Objective, retain_loss: Objective, beta: float, rho: float,
    variant: str = "exact", cos_eps: float = 1e-12,
) -> tuple[tuple[Tensor, ...], dict[str, float]]:
    """grad F for F = L_r + rho * ||grad Phi||^2, plus diagnostics at this point.

    ``variant="exact"`` differentiates through grad Phi (third-order terms when beta > 0);
    ``variant="cheap"`` uses Hess(L_f) in place of Hess(Phi).
    """
    if variant not in OUTER_GRADS:
        raise ValueError(f"unknown grad F variant {variant!r}; valid variants: {', '.join(OUTER_GRADS)}")
    # The exact variant needs grad Phi as a differentiable graph; so does the cheap one for L_f's HVP.
    l_f = forget_loss(params)
    l_r = retain_loss(params)
    g_f = _grads(l_f, params, create_graph=True)
    # grad cos needs Hess(L_r), so g_r keeps its graph whenever beta > 0
    g_r = _grads(l_r, params, create_graph=beta > 0)
    if beta == 0:
        g_phi = g_f
        cos = gradient_cosine([g.detach() for g in g_f], g_r, cos_eps)
    else:
        cos = gradient_cosine(g_f, g_r, cos_eps)
        # the cheap variant still differentiates g_f afterwards (its HVP), so keep the graph alive
        g_phi = _grads(l_f - beta * cos, params, create_graph=(variant == "exact"), retain_graph=True)
    penalty = _dot(g_phi, g_phi)
    if variant == "exact":
        hvp = _grads(rho * penalty, params, create_graph=False)  # = 2 rho Hess(Phi) grad Phi
    else:
        v = [g.detach() for g in g_phi]
        hvp = tuple(2 * rho * h for h in _grads(_dot(g_f, v), params, create_graph=False))
    grad_f = tuple(gr.detach() + h for gr, h in zip(g_r, hvp))
    return grad_f, _diagnostics(l_f, l_r, g_f, g_r, cos, penalty, grad_f, rho)


def _diagnostics(l_f, l_r, g_f, g_r, cos, penalty, grad_f, rho: float) -> dict[str, float]:
    """What an outer step reports about the point where grad F was taken (both derivative variants)."""
    l_f, l_r, penalty, cos = (float(torch.as_tensor(x).detach()) for x in (l_f, l_r, penalty, cos))
    return {"L_f": l_f, "L_r": l_r, "F": l_r + rho * penalty,
            "grad_Lf_norm": float(_norm(g_f).detach()), "grad_Lr_norm": float(_norm(g_r).detach()), "cos": cos,
            "grad_phi_norm": math.sqrt(penalty), "grad_F_norm": float(_norm(grad_f)), "rho": rho}


# ---- first-order variant: every Hessian-vector product as a difference of gradients ----------------------
def difference_step(params: Sequence[Tensor], fd_step: float | str, scheme: str, nested: bool = False) -> float:
    """Norm of the perturbation: fd_step * (1 + ||theta||). "auto" is the textbook step of the parameters'
    dtype, the one that balances truncation against round-off: eps^(1/2) for forward and eps^(1/3) for
    central differences. When a difference is taken of differences (grad F with beta > 0 differences
    grad Phi, itself built from differences) round-off is divided by both steps: forward then needs
    eps^(1/3); central stays at eps^(1/3) (its textbook eps^(1/4) was measured 1e4x less accurate on the
    float64 test problems: their third derivatives are large).
    Real float32 networks have larger higher derivatives than the textbook assumes: their measured steps
    are set in config/methods/OFMU.yaml (benchmarks/ofmu_fidelity.py)."""
    if fd_step == "auto":
        eps = torch.finfo(params[0].dtype).eps
        power = {("forward", False): 1 / 2, ("central", False): 1 / 3,
                 ("forward", True): 1 / 3, ("central", True): 1 / 3}[(scheme, nested)]
        fd_step = eps**power
    return float(fd_step) * (1.0 + float(_norm([p.detach() for p in params])))


@contextmanager
def _shifted(params: Sequence[Tensor], direction: Sequence[Tensor], eps: float):
    """params + eps * direction inside the block; the exact original values afterwards (copied, not
    subtracted, so no round-off accumulates over a run)."""
    saved = [p.detach().clone() for p in params]
    _step(params, direction, eps)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def _value_and_grad(loss: Objective, params: Sequence[Tensor]) -> tuple[Tensor, tuple[Tensor, ...]]:
    value = loss(params)
    return value.detach(), _grads(value, params, create_graph=False)


def difference_hvp(gradient: Callable[[], Sequence[Tensor]], params: Sequence[Tensor], v: Sequence[Tensor],
                   base: Sequence[Tensor], delta: float, scheme: str) -> tuple[Tensor, ...]:
    """H v, where H is the Jacobian of ``gradient()`` (evaluated at the current params) and ``base`` its
    value there: (g(theta + eps v) - g(theta)) / eps (forward) or (g(theta + eps v) - g(theta - eps v)) / 2 eps
    (central), with eps = delta / ||v|| so the perturbation has norm delta whatever the scale of v."""
    v_norm = float(_norm(v))
    if v_norm == 0.0:
        return tuple(torch.zeros_like(p) for p in params)
    eps = delta / v_norm
    with _shifted(params, v, eps):
        plus = gradient()
    if scheme == "forward":
        return tuple((gp - g0) / eps for gp, g0 in zip(plus, base))
    with _shifted(params, v, -eps):
        minus = gradient()
    return tuple((gp - gm) / (2 * eps) for gp, gm in zip(plus, minus))


def cosine_partials(g_f: Sequence[Tensor], g_r: Sequence[Tensor], eps: float):
    """cos(g_f, g_r) (smoothed as in ``gradient_cosine``) and its partial derivatives a = dcos/dg_f,
    b = dcos/dg_r, so that grad_theta cos = H_f a + H_r b."""
    nf = torch.sqrt(_dot(g_f, g_f) + eps**2)
    nr = torch.sqrt(_dot(g_r, g_r) + eps**2)
    cos = _dot(g_f, g_r) / (nf * nr)
    a = tuple(r / (nf * nr) - cos * f / nf**2 for f, r in zip(g_f, g_r))
    b = tuple(f / (nf * nr) - cos * r / nr**2 for f, r in zip(g_f, g_r))
    return cos, a, b


def grad_phi_first_order(
    params: Sequence[Tensor], forget_loss: Objective, retain_loss: Objective, beta: float, cos_eps: float = 1e-12,
    fd_step: float | str = "auto", fd_scheme: str = "forward", delta: float | None = None,
) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """grad Phi = g_f - beta (H_f a + H_r b) with both products by gradient differences (same mini-batches:
    the objectives are fixed closures). Returns what ``grad_phi`` returns. ``delta`` fixes the perturbation
    norm (grad F passes the same one at both ends of its difference)."""
    l_f, g_f = _value_and_grad(forget_loss, params)
    if beta == 0:
        return g_f, {"L_f": l_f}
    l_r, g_r = _value_and_grad(retain_loss, params)
    cos, a, b = cosine_partials(g_f, g_r, cos_eps)
    delta = delta if delta is not None else difference_step(params, fd_step, fd_scheme)
    h_a = difference_hvp(lambda: _value_and_grad(forget_loss, params)[1], params, a, g_f, delta, fd_scheme)
    h_b = difference_hvp(lambda: _value_and_grad(retain_loss, params)[1], params, b, g_r, delta, fd_scheme)
    g_phi = tuple(f - beta * (x + y) for f, x, y in zip(g_f, h_a, h_b))
    return g_phi, {"L_f": l_f, "L_r": l_r, "g_f": g_f, "g_r": g_r, "cos": cos}


def penalty_grad_first_order(
    params: Sequence[Tensor], forget_loss: Objective, retain_loss: Objective, beta: float, rho: float,
    variant: str = "exact", cos_eps: float = 1e-12, fd_step: float | str = "auto", fd_scheme: str = "forward",
) -> tuple[tuple[Tensor, ...], dict[str, float]]:
    """grad F = grad L_r + 2 rho Hess(Phi) grad Phi (``variant="exact"``; Hess(L_f) for "cheap") with the
    product as a difference of first-order grad Phi's along v = grad Phi; same diagnostics as ``penalty_grad``."""
    if variant not in OUTER_GRADS:
        raise ValueError(f"unknown grad F variant {variant!r}; valid variants: {', '.join(OUTER_GRADS)}")
    nested = variant == "exact" and beta > 0  # a difference of grad Phi's that are differences themselves
    delta = difference_step(params, fd_step, fd_scheme, nested)
    g_phi, info = grad_phi_first_order(params, forget_loss, retain_loss, beta, cos_eps, fd_step, fd_scheme, delta)
    if beta == 0:
        info["g_f"] = g_phi
        info["L_r"], info["g_r"] = _value_and_grad(retain_loss, params)
    if nested:
        hv = difference_hvp(
            lambda: grad_phi_first_order(params, forget_loss, retain_loss, beta, cos_eps, fd_scheme=fd_scheme, delta=delta)[0],
            params, g_phi, g_phi, delta, fd_scheme)
    else:  # Hess(Phi) = Hess(L_f) when beta = 0
        hv = difference_hvp(lambda: _value_and_grad(forget_loss, params)[1], params, g_phi, info["g_f"], delta,
                            fd_scheme)
    grad_f = tuple(gr + 2 * rho * h for gr, h in zip(info["g_r"], hv))
    cos = info.get("cos", gradient_cosine(info["g_f"], info["g_r"], cos_eps))
    return grad_f, _diagnostics(info["L_f"], info["L_r"], info["g_f"], info["g_r"], cos, _dot(g_phi, g_phi), grad_f, rho)


def _grad_phi(cfg: "OFMUConfig", params, forget_loss, retain_loss):
    if cfg.derivatives == "first_order":
        return grad_phi_first_order(params, forget_loss, retain_loss, cfg.beta, cfg.cos_eps, cfg.fd_step, cfg.fd_scheme)
    return grad_phi(params, forget_loss, retain_loss, cfg.beta, cfg.cos_eps)


def _penalty_grad(cfg: "OFMUConfig", params, forget_loss, retain_loss, rho: float):
    if cfg.derivatives == "first_order":
        return penalty_grad_first_order(params, forget_loss, retain_loss, cfg.beta, rho, cfg.outer_grad, cfg.cos_eps,
                                        cfg.fd_step, cfg.fd_scheme)
    return penalty_grad(params, forget_loss, retain_loss, cfg.beta, rho, cfg.outer_grad, cfg.cos_eps)


@torch.no_grad()
def _step(params: Sequence[Tensor], direction: Sequence[Tensor], lr: float) -> None:
    for p, d in zip(params, direction):
        p.add_(d, alpha=lr)


Probe = Callable[[Sequence[Tensor], Objective, Objective, float, tuple[Tensor, ...]], None]


def ofmu_iteration(
    params: Sequence[Tensor], make_objectives: MakeObjectives, cfg: OFMUConfig, rho: float, iteration: int = 0,
    probe: Probe | None = None,
) -> dict[str, float]:
    """One outer iteration: T ascent steps on Phi, then one descent step on F. Updates params in place.

    Returns the diagnostics at the point where grad F was taken. ``probe(params, forget_loss, retain_loss,
    rho, grad_f)``, if given, sees that point, its objectives and grad F before the step (the fidelity
    benchmark compares derivative variants there; it must leave params as it found them).
    """
    anchor = [p.detach().clone() for p in params] if cfg.outer_point == "anchor" else None
    for t in range(cfg.inner_steps):
        forget_loss, retain_loss = make_objectives()
        g_phi, info = _grad_phi(cfg, params, forget_loss, retain_loss)
        check_finite({"grad Phi": g_phi, "L_f": info["L_f"]}, f"outer iteration {iteration}, inner step {t}")
        _step(params, g_phi, cfg.inner_lr)
    if anchor is not None:
        # grad F at theta_k, applied to the inner iterate theta'
        inner = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, a in zip(params, anchor):
                p.copy_(a)
    forget_loss, retain_loss = make_objectives()
    grad_f, diag = _penalty_grad(cfg, params, forget_loss, retain_loss, rho)
    check_finite({"grad F": grad_f, "F": diag["F"]}, f"outer iteration {iteration}")
    if probe is not None:
        probe(params, forget_loss, retain_loss, rho, grad_f)
    if anchor is not None:
        with torch.no_grad():
            for p, x in zip(params, inner):
                p.copy_(x)
    lr = cfg.outer_lr
    if cfg.outer_backtracking:
        lr = _armijo_step(params, make_objectives, cfg, rho, grad_f, diag["F"])
        if lr == 0.0:
            warnings.warn(f"outer iteration {iteration}: the Armijo line search found no decrease of F "
                          f"(||grad F|| = {diag['grad_F_norm']:.3g}); the step is not taken", LineSearchWarning)
    _step(params, grad_f, -lr)
    diag["outer_lr"] = lr
    diag["line_search_failed"] = float(cfg.outer_backtracking and lr == 0.0)
    return diag


def penalty_value(params: Sequence[Tensor], forget_loss: Objective, retain_loss: Objective, cfg: "OFMUConfig",
                  rho: float) -> float:
    """F = L_r + rho * ||grad Phi||^2 at params (grad Phi as ``cfg.derivatives`` computes it)."""
    g_phi, _ = _grad_phi(cfg, params, forget_loss, retain_loss)
    return float(retain_loss(params).detach()) + rho * float(_dot(g_phi, g_phi))


def _armijo_step(params, make_objectives, cfg: OFMUConfig, rho: float, grad_f, f_value: float,
                 max_halvings: int = 60) -> float:
    """The accepted step (halving from outer_lr until F drops by >= lr/2 ||grad F||^2), or 0.0 when no trial
    decreases F: a FAILED step, which the caller reports (``line_search_failed``) and never takes. A required
    decrease below the round-off of F cannot be verified, so it fails too: near a stationary point that is
    expected; far from one it means grad F is not a descent direction (a wrong gradient)."""
    start = [p.detach().clone() for p in params]
    sq_norm = float(_dot(grad_f, grad_f))
    lr = cfg.outer_lr
    try:
        for _ in range(max_halvings):
            if 0.5 * lr * sq_norm <= 1e-15 * max(1.0, abs(f_value)):
                return 0.0  # the decrease left to ask for is below the round-off of F
            _step(params, grad_f, -lr)
            forget_loss, retain_loss = make_objectives()
            trial = penalty_value(params, forget_loss, retain_loss, cfg, rho)
            if math.isfinite(trial) and trial <= f_value - 0.5 * lr * sq_norm:
                return lr
            with torch.no_grad():
                for p, s in zip(params, start):
                    p.copy_(s)
            lr *= 0.5
        return 0.0
    finally:
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)


def rho_schedule(cfg: OFMUConfig, iteration: int) -> float:
    """rho_k = min(rho0 * gamma^k, rho_max)."""
    if cfg.gamma == 1:
        return cfg.rho0
    return min(cfg.rho0 * cfg.gamma**iteration, cfg.rho_max)


def run_ofmu(
    params: Sequence[Tensor], make_objectives: MakeObjectives, cfg: OFMUConfig, iterations: int,
    callback: Callable[[int, Sequence[Tensor], dict], None] | None = None,
) -> list[dict[str, float]]:
    """K outer iterations; returns per-iteration diagnostics (one dict per iteration)."""
    history = []
    for k in range(iterations):
        rho = rho_schedule(cfg, k)
        diag = ofmu_iteration(params, make_objectives, cfg, rho, iteration=k)
        diag["iteration"] = k
        history.append(diag)
        if callback is not None:
            callback(k + 1, params, diag)
    return history


def check_scalarized(weight: float, lr: float) -> None:
    """The scalarized competitor's settings: weight >= 0 (it ascends L_f) and a step lr > 0."""
    for key, value, ok, expected in [("weight", weight, lambda v: v >= 0, "a finite number >= 0"),
                                     ("lr", lr, lambda v: v > 0, "a finite number > 0")]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
            raise ValueError(f"scalarized setting {key!r} = {value!r}: expected {expected}")


def scalarized_iteration(
    params: Sequence[Tensor], make_objectives: MakeObjectives, weight: float, lr: float, iteration: int = 0,
) -> dict[str, float]:
    """One gradient step on the weighted sum L_r - weight * L_f (the scalarized competitor)."""
    forget_loss, retain_loss = make_objectives()
    l_f, l_r = forget_loss(params), retain_loss(params)
    g_f = _grads(l_f, params, create_graph=False)
    g_r = _grads(l_r, params, create_graph=False)
    direction = tuple(gr - weight * gf for gr, gf in zip(g_r, g_f))
    check_finite({"scalarized gradient": direction}, f"iteration {iteration}", fix="lower lr or weight")
    _step(params, direction, -lr)
    return {"L_f": float(l_f.detach()), "L_r": float(l_r.detach()), "grad_Lf_norm": float(_norm(g_f)),
            "grad_Lr_norm": float(_norm(g_r)), "cos": float(gradient_cosine(g_f, g_r, 1e-12))}
