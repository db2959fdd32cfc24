"""How far the first-order OFMU (``derivatives: first_order``) is from the exact one, measured.

``v_curves``  float64: relative error of first-order grad Phi (beta = 0.5) and grad F (beta = 0.5 and 0)
              against autograd's, over difference steps 1e-1 .. 1e-11, forward and central, on a theory
              problem (logistic_ridge) and a small smooth network (tanh MLP); the "auto" steps are marked.
``along_run`` float32, a real model: an OFMU run with the experiments' settings; at every outer iteration,
              at the point and on the mini-batches where grad F is taken, the first-order grad F at each
              candidate step (and at the inner ascent's own step eta_in ||grad Phi||, the difference the
              inner loop would give) against the exact one: cosine similarity and relative norm error.
``summarize`` median and 10th / 90th percentiles per (problem, scheme, step).
The pipeline's rules ``*_first_order_fidelity`` and ``first_order_fidelity_figure`` run these on the
default tier's own models (fig11, tab7); ``benchmarks/ofmu_fidelity.py`` runs them standalone.
"""

from __future__ import annotations

import copy
import warnings
from functools import partial
from typing import Any

import pandas as pd
import torch

from ofmu.core.ofmu import (NonFiniteError, OFMUConfig, difference_step, grad_phi, grad_phi_first_order,
                            ofmu_iteration, penalty_grad, penalty_grad_first_order, rho_schedule)

STEPS_FLOAT64 = [10.0**-k for k in range(1, 12)]
STEPS_FLOAT32 = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5]
SCHEMES = ("forward", "central")
INNER_STEP = "forward, inner step"  # the scheme name of the difference along eta_in * grad Phi


def _flat(g) -> torch.Tensor:
    return torch.cat([x.detach().reshape(-1) for x in g])


def compare(approx, exact) -> dict[str, float]:
    a, e = _flat(approx).double(), _flat(exact).double()
    return {"rel_error": float((a - e).norm() / e.norm()), "cosine": float(a @ e / (a.norm() * e.norm()))}


# ---- float64 V-curves -------------------------------------------------------------------------------------
def _theory_problem():
    from ofmu.theory.problems import make_problem

    p = make_problem("logistic_ridge", 0)
    f, r = p.torch_objectives()
    return [torch.tensor(p.initial_point(), dtype=torch.float64, requires_grad=True)], f, r


def _network_problem():
    g = torch.Generator().manual_seed(0)
    x_f = torch.randn(32, 20, generator=g, dtype=torch.float64)
    x_r = torch.randn(64, 20, generator=g, dtype=torch.float64)
    y_f, y_r = torch.randint(0, 5, (32,), generator=g), torch.randint(0, 5, (64,), generator=g)
    params = [(0.3 * torch.randn(20, 16, generator=g, dtype=torch.float64)).requires_grad_(),
              torch.zeros(16, dtype=torch.float64, requires_grad=True),
              (0.3 * torch.randn(16, 5, generator=g, dtype=torch.float64)).requires_grad_(),
              torch.zeros(5, dtype=torch.float64, requires_grad=True)]

    def loss(x, y):
        return lambda p: torch.nn.functional.cross_entropy(torch.tanh(x @ p[0] + p[1]) @ p[2] + p[3], y)

    return params, loss(x_f, y_f), loss(x_r, y_r)


def v_curves() -> list[dict[str, Any]]:
    rows = []
    for problem, build in (("theory problem (logistic_ridge)", _theory_problem), ("tanh network", _network_problem)):
        params, f, r = build()
        quantities = {  # name -> (exact, first-order at a step and scheme, nested difference?)
            "grad Phi, beta=0.5": (grad_phi(params, f, r, 0.5)[0], partial(grad_phi_first_order, params, f, r, 0.5), False),
            "grad F, beta=0.5": (penalty_grad(params, f, r, 0.5, 1.0)[0],
                                 partial(penalty_grad_first_order, params, f, r, 0.5, 1.0), True),
            "grad F, beta=0": (penalty_grad(params, f, r, 0.0, 1.0)[0],
                               partial(penalty_grad_first_order, params, f, r, 0.0, 1.0), False),
        }
        scale = 1.0 + float(_flat(params).norm())
        for quantity, (exact, approx, nested) in quantities.items():
            for scheme in SCHEMES:
                auto = difference_step(params, "auto", scheme, nested) / scale
                for step in [*STEPS_FLOAT64, auto]:
                    rows.append({"problem": problem, "dtype": "float64", "quantity": quantity, "scheme": scheme,
                                 "fd_step": step, "auto": step == auto,
                                 **compare(approx(fd_step=step, fd_scheme=scheme)[0], exact)})
    return rows


# ---- float32 along a real run -----------------------------------------------------------------------------
def along_run(model: torch.nn.Module, forget, retain, task, settings: dict, iterations: int, problem: str,
              steps=STEPS_FLOAT32) -> list[dict[str, Any]]:
    """OFMU from a copy of ``model`` for ``iterations`` outer iterations with ``settings`` (the exact
    variant drives the run, so every variant is compared at the same points). A run that diverges stops
    there, with a warning: the rows cover the iterations before (the summary's ``n`` counts them)."""
    cfg = OFMUConfig.from_dict({**settings, "derivatives": "exact"})
    model = copy.deepcopy(model).train()
    params = list(model.parameters())
    batches = {"forget": iter(forget), "retain": iter(retain)}
    loaders = {"forget": forget, "retain": retain}

    def draw(name):
        try:
            return next(batches[name])
        except StopIteration:  # a new pass (the loader reshuffles)
            batches[name] = iter(loaders[name])
            return next(batches[name])

    def make_objectives():
        fb, rb = draw("forget"), draw("retain")
        return (lambda p: task.loss(model, fb)), (lambda p: task.loss(model, rb))

    rows = []
    quantity = f"grad F, beta={cfg.beta:g}"

    def probe_at(k):
        def probe(params, forget_loss, retain_loss, rho, exact):
            def row(scheme, step, approx):
                rows.append({"problem": problem, "dtype": str(params[0].dtype).replace("torch.", ""),
                             "quantity": quantity, "scheme": scheme, "fd_step": step, "iteration": k,
                             **compare(approx, exact)})

            for scheme in SCHEMES:
                for step in steps:
                    row(scheme, step, penalty_grad_first_order(params, forget_loss, retain_loss, cfg.beta, rho,
                                                               cfg.outer_grad, cfg.cos_eps, step, scheme)[0])
            # the difference one more inner ascent step would give: perturbation eta_in ||grad Phi||
            v, _ = grad_phi(params, forget_loss, retain_loss, cfg.beta, cfg.cos_eps)
            step = cfg.inner_lr * float(_flat(v).norm()) / (1.0 + float(_flat(params).norm()))
            row(INNER_STEP, step, penalty_grad_first_order(params, forget_loss, retain_loss, cfg.beta, rho,
                                                           cfg.outer_grad, cfg.cos_eps, step, "forward")[0])
        return probe

    for k in range(iterations):
        try:
            ofmu_iteration(params, make_objectives, cfg, rho_schedule(cfg, k), k, probe=probe_at(k))
        except NonFiniteError as exc:  # the run itself diverged: the comparison covers the iterations before
            warnings.warn(f"{problem}: {exc}; fidelity measured on outer iterations 0..{k - 1} only")
            return [r for r in rows if r["iteration"] < k]
    return rows


def summarize(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Per (problem, dtype, quantity, scheme, step): median and p90 relative error, median and p10 cosine.
    The inner-step difference has a step per iteration: it is summarized over the run at its median step."""
    frame = pd.DataFrame(rows)
    frame["auto"] = frame["auto"].fillna(False).astype(bool) if "auto" in frame else False
    inner = frame["scheme"] == INNER_STEP
    frame.loc[inner, "fd_step"] = frame[inner].groupby("problem")["fd_step"].transform("median")
    keys = ["problem", "dtype", "quantity", "scheme", "fd_step"]
    out = frame.groupby(keys, sort=True).agg(
        rel_error_median=("rel_error", "median"), rel_error_p90=("rel_error", lambda s: s.quantile(0.9)),
        cosine_median=("cosine", "median"), cosine_p10=("cosine", lambda s: s.quantile(0.1)),
        auto=("auto", "any"), n=("rel_error", "size"))
    return out.reset_index()


def fidelity_table(summary: pd.DataFrame, fd_step: float | str) -> pd.DataFrame:
    """The rows a reader needs: float64 at the "auto" step; float32 at the configured step (both schemes)
    and the inner-step difference."""
    f64 = summary[(summary["dtype"] == "float64") & summary["auto"]]
    f32 = summary[summary["dtype"] != "float64"]
    if fd_step != "auto":
        f32 = f32[(f32["scheme"] == INNER_STEP) | ((f32["fd_step"] - float(fd_step)).abs() <= 1e-12)]
    table = pd.concat([f64, f32], ignore_index=True).drop(columns=["auto"])
    for col in ("rel_error_median", "rel_error_p90", "fd_step"):
        table[col] = table[col].map(lambda v: f"{v:.2e}")
    for col in ("cosine_median", "cosine_p10"):
        table[col] = table[col].map(lambda v: f"{v:.6f}")
    return table.rename(columns={"rel_error_median": "rel. error (median)", "rel_error_p90": "rel. error (p90)",
                                 "cosine_median": "cosine (median)", "cosine_p10": "cosine (p10)", "n": "points"})
