"""Deliberately wrong solvers, for proving that the theory checks can fail (tests/theory/test_mutations.py,
``python -m ofmu mutations``; table in theory/THEOREMS.md).

Each mutant is a context manager that swaps one function of ``ofmu.core.ofmu`` for a wrong version through
the module's own seams (the dispatchers look these names up at call time), so the claims run the real
solver code with exactly one bug injected; nothing is edited on disk and the original is restored on exit.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager, nullcontext
from unittest import mock

import pandas as pd

import ofmu.core.ofmu as solver


def _scaled_penalty_term(scale: float):
    """grad F = grad L_r + scale * 2 rho Hess(Phi) grad Phi: the Hessian-vector product dropped (0) or
    halved (0.5). F itself (the diagnostics, the line search's values) stays right: only the direction is."""
    original = solver.penalty_grad

    def wrong(params, forget_loss, retain_loss, beta, rho, variant="exact", cos_eps=1e-12):
        grad_f, diag = original(params, forget_loss, retain_loss, beta, rho, variant, cos_eps)
        g_r, _ = original(params, forget_loss, retain_loss, beta, 0.0, variant, cos_eps)
        grad_f = tuple(r + scale * (g - r) for r, g in zip(g_r, grad_f))
        diag["grad_F_norm"] = float(solver._norm(grad_f))
        return grad_f, diag

    return mock.patch.object(solver, "penalty_grad", wrong)


@contextmanager
def _flipped_cosine():
    """Phi = L_f + beta cos (the similarity term's sign flipped) in grad Phi and in grad F alike."""
    grad_phi, penalty_grad = solver.grad_phi, solver.penalty_grad
    with mock.patch.object(solver, "grad_phi", lambda p, f, r, beta, *a, **k: grad_phi(p, f, r, -beta, *a, **k)), \
            mock.patch.object(solver, "penalty_grad",
                              lambda p, f, r, beta, *a, **k: penalty_grad(p, f, r, -beta, *a, **k)):
        yield


def _config_changed(**changes):
    """Every outer iteration runs with these config fields replaced (a solver that ignores the setting)."""
    original = solver.ofmu_iteration

    def wrong(params, make_objectives, cfg, rho, iteration=0, probe=None):
        return original(params, make_objectives, dataclasses.replace(cfg, **changes), rho, iteration, probe)

    return mock.patch.object(solver, "ofmu_iteration", wrong)


def _rho_off_by_one():
    """rho_k = rho0 gamma^(k+1): the schedule one iteration ahead."""
    schedule = solver.rho_schedule
    return mock.patch.object(solver, "rho_schedule", lambda cfg, k: schedule(cfg, k + 1))


def _wrong_difference_quotient():
    """First-order products divided by the perturbation's norm delta instead of its scale eps = delta/||v||
    along v (the quotient of a finite difference taken with one step and divided by another)."""
    hvp = solver.difference_hvp

    def wrong(gradient, params, v, base, delta, scheme):
        v_norm = float(solver._norm(v))
        return tuple(h / v_norm for h in hvp(gradient, params, v, base, delta, scheme)) if v_norm else \
            hvp(gradient, params, v, base, delta, scheme)

    return mock.patch.object(solver, "difference_hvp", wrong)


MUTANTS = {
    "drop the Hessian-vector product in grad F": lambda: _scaled_penalty_term(0.0),
    "halve the Hessian-vector product in grad F": lambda: _scaled_penalty_term(0.5),
    "flip the sign of the cosine term in Phi": _flipped_cosine,
    "outer gradient at the anchor theta_k, not the inner iterate": lambda: _config_changed(outer_point="anchor"),
    "cheap grad F (Hess(L_f) for Hess(Phi)) at beta > 0": lambda: _config_changed(outer_grad="cheap"),
    "rho schedule one iteration ahead": _rho_off_by_one,
    "first-order quotient divided by the wrong step": _wrong_difference_quotient,
}


def failing_checks(mutant: str | None, runs: dict[str, tuple[dict, list[str], list[int]]]) -> pd.DataFrame:
    """Run every claim in ``runs`` (claim -> (spec, families, seeds)) with ``mutant`` injected (None: the
    correct solver) and return the verdicts that did not pass."""
    from ofmu.theory.claims import run_claim
    from ofmu.theory.verdicts import check_claim

    failed = []
    with MUTANTS[mutant]() if mutant else nullcontext():
        for claim, (spec, families, seeds) in runs.items():
            rows = pd.concat([run_claim(claim, spec, f, s) for f in families for s in seeds], ignore_index=True)
            verdicts = check_claim(claim, spec, rows)
            failed.append(verdicts[~verdicts["passed"]])
    return pd.concat(failed, ignore_index=True)


def mutation_table(results: dict[str | None, pd.DataFrame]) -> str:
    """Markdown: mutant -> the checks that fail (claim: quantity [group], families), from ``failing_checks``
    per mutant (key None: the correct solver)."""
    lines = ["| mutant | checks that fail |", "|---|---|"]
    for mutant, failed in results.items():
        if failed.empty:
            caught = "none"
        else:
            failed = failed.assign(check=failed["claim"] + ": " + failed["quantity"]
                                   + failed["group"].map(lambda g: f" [{g}]" if g else ""))
            caught = "; ".join(f"{check} ({', '.join(sorted(set(g['family'])))})"
                               for check, g in failed.groupby("check", sort=True))
        lines.append(f"| {mutant or '(correct solver)'} | {caught} |")
    return "\n".join(lines)
