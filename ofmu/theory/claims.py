"""Numerical verification of the claims stated in theory/THEOREMS.md (machine form: theory/claims.yaml).

``run_claim`` runs the real solvers of ``ofmu.core`` on one problem instance and returns tidy rows:
one row per (quantity, group, x) with the measured ``value`` and the explicit-constant ``bound``
at that point, plus what the fit should find (``fit_kind``, ``predicted``, ``tight``).
``ofmu.theory.verdicts.check_claim`` turns the rows into pass/fail verdicts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ofmu.core.ofmu import OFMUConfig, run_ofmu, scalarized_iteration
from ofmu.theory.problems import ConvexProblem, make_problem
from ofmu.theory.verdicts import CLAIM_IDS, ROW_COLUMNS

def geometric_checkpoints(max_iter: int) -> list[int]:
    """1, 2, 4, ..., max_iter (max_iter included even when not a power of two)."""
    points, k = [], 1
    while k < max_iter:
        points.append(k)
        k *= 2
    return points + [max_iter]


def _param(theta: np.ndarray) -> list[torch.Tensor]:
    return [torch.tensor(theta, dtype=torch.float64, requires_grad=True)]


def _row(claim, problem, quantity, x, value, bound, fit_kind="none", predicted=math.nan,
         tight=False, fit_from=0.0, group=""):
    return dict(claim=claim, family=problem.family, seed=problem.seed, quantity=quantity, group=str(group),
                x=float(x), value=float(value), bound=float(bound), fit_kind=fit_kind,
                predicted=float(predicted), tight=bool(tight), fit_from=float(fit_from))


def _trajectory(problem: ConvexProblem, solver: str, settings: dict, iterations: int) -> list[np.ndarray]:
    """theta_0, theta_1, ..., theta_K from one run of the real solver (float64)."""
    params = _param(problem.initial_point())
    f_loss, r_loss = problem.torch_objectives()
    make = lambda: (f_loss, r_loss)  # noqa: E731 - deterministic full-batch objectives
    thetas = [problem.initial_point()]
    record = lambda k, p, diag: thetas.append(p[0].detach().numpy().copy())  # noqa: E731
    if solver == "scalarized":
        for k in range(iterations):
            scalarized_iteration(params, make, settings["weight"], settings["lr"], iteration=k)
            record(k + 1, params, None)
    else:
        run_ofmu(params, make, OFMUConfig.from_dict(settings), iterations, record)
    return thetas


# ---- C1: penalty consistency --------------------------------------------------------------------
def run_c1(spec: dict, problem: ConvexProblem) -> list[dict]:
    theta_star, lam = problem.bilevel_reference()
    lam_norm = float(np.linalg.norm(lam))
    mu_r, L_r = problem.retain_hessian_bounds()
    rows = []
    for rho in np.geomspace(spec["rho_min"], spec["rho_max"], spec["rho_points"]):
        x = problem.penalized_reference(float(rho))
        kw = dict(fit_kind="loglog", predicted=-1.0, tight=True, fit_from=spec["fit_from_rho"])
        rows.append(_row("C1", problem, "value_gap", rho,
                         problem.retain_value(theta_star) - problem.retain_value(x), lam_norm**2 / (2 * rho), **kw))
        rows.append(_row("C1", problem, "value_gap_lower", rho,
                         problem.retain_value(x) - problem.retain_value(theta_star), 0.0))  # F_rho relaxes: <= 0
        rows.append(_row("C1", problem, "infeasibility", rho, problem.grad_phi_norm(x), lam_norm / (2 * rho), **kw))
        if mu_r > 0:
            kappa = L_r / mu_r
            bound = math.sqrt(1 + kappa**2) * lam_norm / (2 * rho * problem.sigma_min_A)
            rows.append(_row("C1", problem, "distance", rho, np.linalg.norm(x - theta_star), bound, **kw))
    return rows


# ---- C2 / C3: the outer loop on F_rho (T = 0) -------------------------------------------------------
def _penalty_gd_settings(problem: ConvexProblem, rho: float, beta: float = 0.0, step: float = 1.0) -> dict:
    return dict(beta=beta, rho0=rho, inner_steps=0, outer_lr=step / problem.penalty_smoothness(rho))


def _variants(spec: dict):
    """(settings update, quantity suffix) per derivative variant the claim is checked with: the exact
    derivatives always; ``derivatives: [exact, first_order]`` also checks the first-order OFMU, whose rows
    carry " (first-order)" in their quantity (same bounds: THEOREMS.md, "First-order derivatives")."""
    for variant in spec.get("derivatives", ["exact"]):
        if variant not in ("exact", "first_order"):
            raise ValueError(f"claim derivatives {variant!r}: expected exact or first_order")
        yield {"derivatives": variant}, ("" if variant == "exact" else " (first-order)")


def run_c2(spec: dict, problem: ConvexProblem) -> list[dict]:
    rho, K = spec["rho"], spec["max_iter"]
    L_F = problem.penalty_smoothness(rho)
    x_rho = problem.penalized_reference(rho)
    theta0 = problem.initial_point()
    if problem.penalty_strong_convexity(rho) == 0:
        x_rho = problem.nearest_minimizer(x_rho, rho, theta0)  # the bound holds for every minimizer
    f_star = problem.penalty_value(x_rho, rho)
    dist0 = np.linalg.norm(theta0 - x_rho)
    rows = []
    for variant, suffix in _variants(spec):
        thetas = _trajectory(problem, "penalty_gd", {**_penalty_gd_settings(problem, rho), **variant}, K)
        rows += [_row("C2", problem, "value_gap" + suffix, k, problem.penalty_value(thetas[k], rho) - f_star,
                      L_F * dist0**2 / (2 * k), fit_kind="loglog", predicted=-1.0, tight=False)
                 for k in geometric_checkpoints(K)]
    return rows


def run_c3(spec: dict, problem: ConvexProblem) -> list[dict]:
    rho, K = spec["rho"], spec["max_iter"]
    mu_F, L_F = problem.penalty_strong_convexity(rho), problem.penalty_smoothness(rho)
    if mu_F <= 0:
        raise ValueError(f"claim C3 needs a strongly convex F; family {problem.family!r} is merely convex")
    quadratic = problem.retain == "squares"
    # quadratic: exact contraction max_i |1 - lambda_i / L| = 1 - mu/L; general: sqrt(1 - mu/L)
    factor = 1 - mu_F / L_F if quadratic else math.sqrt(1 - mu_F / L_F)
    x_rho = problem.penalized_reference(rho)
    rows = []
    for variant, suffix in _variants(spec):
        thetas = _trajectory(problem, "penalty_gd", {**_penalty_gd_settings(problem, rho), **variant}, K)
        dist0 = np.linalg.norm(thetas[0] - x_rho)
        rows += [_row("C3", problem, "distance" + suffix, k, np.linalg.norm(thetas[k] - x_rho), factor**k * dist0,
                      fit_kind="semilog", predicted=math.log(factor), tight=quadratic,
                      fit_from=spec["fit_from_iter"])
                 for k in geometric_checkpoints(K)]
    return rows


# ---- C4: finite number T of inner steps (two-loop OFMU, beta = 0) ----------------------------------
def run_c4(spec: dict, problem: ConvexProblem) -> list[dict]:
    rho, K = spec["rho"], spec["max_iter"]
    theta_star, _ = problem.bilevel_reference()
    mu_r, L_r = problem.retain_hessian_bounds()
    eta_in = 1.0 / problem.lambda_max_A
    eta_out = 1.0 / problem.penalty_smoothness(rho)
    q = 1 - eta_in * problem.sigma_min_A
    c = math.sqrt(1 - eta_out * mu_r)
    rows = []
    for variant, suffix in _variants(spec):
        for T in spec["inner_steps"]:
            settings = dict(beta=0.0, rho0=rho, inner_steps=T, inner_lr=eta_in, outer_lr=eta_out, **variant)
            thetas = _trajectory(problem, "ofmu", settings, K)
            xs = [problem.project_onto_argmax_phi(t) for t in thetas]
            R = max(np.linalg.norm(t - x) for t, x in zip(thetas, xs))  # a-posteriori sup_k dist(theta_k, S)
            err0 = np.linalg.norm(xs[0] - theta_star)
            bias_bound = 2 * (L_r / mu_r) * q**T * R
            for k in geometric_checkpoints(K):
                rows.append(_row("C4", problem, "distance" + suffix, k, np.linalg.norm(xs[k] - theta_star),
                                 c**k * err0 + bias_bound, group=f"T={T}"))
            rows.append(_row("C4", problem, "bias" + suffix, T, np.linalg.norm(xs[K] - theta_star),
                             c**K * err0 + bias_bound, fit_kind="semilog", predicted=math.log(q),
                             tight=spec["bias_tight"], fit_from=spec["fit_from_T"]))
    # competitors on the same instance, for the figure (no claim is made about them)
    competitors = {
        "T=0 (penalty GD)": ("penalty_gd", _penalty_gd_settings(problem, rho)),
        "scalarized": ("scalarized", dict(weight=rho, lr=1.0 / (L_r + rho * problem.lambda_max_A))),
    }
    for label, (solver, settings) in competitors.items():
        thetas = _trajectory(problem, solver, settings, K)
        for k in geometric_checkpoints(K):
            rows.append(_row("C4", problem, "competitor_distance", k,
                             np.linalg.norm(thetas[k] - theta_star), math.nan, group=label))
    return rows


# ---- C5: non-convex F (beta > 0), stationarity of the outer loop -----------------------------------
def run_c5(spec: dict, problem: ConvexProblem) -> list[dict]:
    rho, K = spec["rho"], spec["max_iter"]
    settings = _penalty_gd_settings(problem, rho, beta=spec["beta"], step=spec["step_fraction"])
    settings["outer_backtracking"] = True  # F is not globally smooth when beta > 0 (THEOREMS.md, C5)
    params = _param(problem.initial_point())
    f_loss, r_loss = problem.torch_objectives()
    history = run_ofmu(params, lambda: (f_loss, r_loss), OFMUConfig.from_dict(settings), K + 1)
    F = np.array([h["F"] for h in history])  # F at theta_0..theta_K (diagnostics precede each step)
    g2 = np.array([h["grad_F_norm"] ** 2 for h in history])
    eta = np.array([h["outer_lr"] for h in history])
    # sufficient decrease F_{k+1} <= F_k - eta_k/2 ||grad F_k||^2 is what the rate rests on; the line
    # search should guarantee it, and it is verified here rather than assumed
    violation = np.maximum.accumulate(np.maximum(F[1:] - (F[:-1] - 0.5 * eta[:-1] * g2[:-1]), 0.0))
    eta_sum = np.cumsum(eta)
    rows = []
    for k in geometric_checkpoints(K):
        # telescoping: sum_{j<k} eta_j/2 ||grad F_j||^2 <= F_0 - F_k
        rows.append(_row("C5", problem, "min_grad_sq", k, g2[:k].min(), 2 * (F[0] - F[k]) / eta_sum[k - 1],
                         fit_kind="loglog", predicted=-1.0, tight=False))
        rows.append(_row("C5", problem, "descent_violation", k, violation[k - 1], 0.0))
        rows.append(_row("C5", problem, "step_size", k, eta[:k].min(), math.nan))
    return rows


CLAIM_RUNNERS = {"C1": run_c1, "C2": run_c2, "C3": run_c3, "C4": run_c4, "C5": run_c5}
assert tuple(CLAIM_RUNNERS) == CLAIM_IDS  # internal consistency, not user input


def run_claim(claim_id: str, spec: dict, family: str, seed: int) -> pd.DataFrame:
    if claim_id not in CLAIM_RUNNERS:
        raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(CLAIM_RUNNERS)}")
    if family not in spec["families"]:
        raise ValueError(f"claim {claim_id} is not stated for family {family!r}; its families: {spec['families']}")
    rows = CLAIM_RUNNERS[claim_id](spec, make_problem(family, seed))
    return pd.DataFrame(rows, columns=ROW_COLUMNS)
