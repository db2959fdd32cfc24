"""Pass/fail verdicts of the theory claims from tidy run rows (light: no torch, no cvxpy).

    bound_ok  the value stays under the bound at every checkpoint (up to the reference accuracy); for
              ``fit_kind == "match"`` rows the bound is an exact prediction and the value must equal it
              within ``match_tol`` (relative) on both sides
    rate_ok   the fitted log-log slope (or log contraction factor) is within ``tol`` of the predicted
              one where the bound is tight, and at least as fast where it is only an upper bound.
    status    pass / fail / inconclusive: a rate that cannot be fitted (fewer than 3 points after the
              stated transient and above the floor) is inconclusive, which fails the claim unless the
              claim's ``inconclusive_ok`` names the quantity and says why (convergence that is suspiciously
              fast must not pass silently).

Rows with no bound and no fit (``fit_kind == "none"`` and a NaN bound) are figure data, not checks: they
get no verdict, so every verdict row is a check that can fail.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6")
CLAIM_KEYS = {"title", "families", "tol", "floor", "abs_tol"}
MIN_FIT_POINTS = 3
ROW_COLUMNS = ["claim", "family", "seed", "quantity", "group", "x", "value", "bound",
               "fit_kind", "predicted", "tight", "fit_from"]


# the keys each claim's runner reads (ofmu/theory/claims.py), beyond the common ones
CLAIM_RUNNER_KEYS = {
    "C1": {"rho_min", "rho_max", "rho_points", "fit_from_rho", "solver_rhos", "solver_tol", "solver_max_iter",
           "solver_match"},
    "C2": {"rho", "max_iter", "tight_families", "fit_from_iter"},
    "C3": {"rho", "max_iter", "fit_from_iter", "checkpoint_step"},
    "C4": {"rho", "max_iter", "inner_steps", "fit_from_T", "bias_tight"},
    "C5": {"beta", "rho", "step_fraction", "max_iter", "stationary_tol"},
    "C6": {"rho0", "gamma", "rho_max", "max_iter", "inner_steps", "beta", "fit_from_iter", "checkpoint_step",
           "stationary_tol", "match_tol"},
}
NON_NUMERIC_KEYS = {"title", "families", "derivatives", "tight_families", "inner_steps", "solver_rhos",
                    "fit_from_iter", "bias_tight", "inconclusive_ok"}
RESTORE = "restore it with `git checkout theory/claims.yaml`, or point theory.claims_file at a valid file"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_claims(path: str | Path) -> dict:
    """Read claims.yaml: one ValueError naming the file, the claim and the key for anything a run would trip on
    later (a missing or unreadable file, not a mapping, a missing key, a number that is not a finite number)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"claims file {path} does not exist (or is not a file); {RESTORE}")
    try:
        claims = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"claims file {path} is not readable YAML ({type(err).__name__}: "
                         f"{str(err).splitlines()[0]}); {RESTORE}") from None
    if not isinstance(claims, dict) or not claims:
        raise ValueError(f"claims file {path} must map claim ids ({', '.join(CLAIM_IDS)}) to their settings; "
                         f"it holds {type(claims).__name__}; {RESTORE}")
    for cid, spec in claims.items():
        if cid not in CLAIM_IDS:
            raise ValueError(f"{path}: unknown claim {cid!r}; claims with a runner: {', '.join(CLAIM_IDS)}")
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: claim {cid} must be a mapping of settings, got {spec!r}")
        missing = sorted((CLAIM_KEYS | CLAIM_RUNNER_KEYS[cid]) - set(spec))
        if missing:
            raise ValueError(f"{path}: claim {cid} lacks key(s) {missing}")
        check_numbers(spec, f"{path}: claim {cid}")
    return claims


def check_numbers(spec: dict, where: str) -> None:
    """Every numeric setting of a claim is a finite number (not a bool, not a string)."""
    for key, value in spec.items():
        if key not in NON_NUMERIC_KEYS and not _is_number(value):
            raise ValueError(f"{where} key {key!r} = {value!r}: expected a finite number")


def fit_rate(x: np.ndarray, value: np.ndarray, kind: str) -> float:
    """Least-squares slope of log(value) against log(x) ('loglog') or x ('semilog')."""
    xs = np.log(x) if kind == "loglog" else x
    return float(np.polyfit(xs, np.log(value), 1)[0])


def check_claim(claim_id: str, spec: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """One verdict row per (family, seed, quantity, group) that is a check (figure-only rows are skipped)."""
    verdicts = []
    allowed = spec.get("inconclusive_ok", {})
    for (family, seed, quantity, group), g in rows.groupby(["family", "seed", "quantity", "group"], sort=True):
        g = g.sort_values("x")
        kind = g["fit_kind"].iloc[0]
        has_bound = g["bound"].notna().all()
        if kind == "none" and not has_bound:
            continue  # figure data
        slack = spec["abs_tol"] + 1e-9 * g["bound"].abs()
        if kind == "match":
            bound_ok = bool(((g["value"] - g["bound"]).abs() <= spec["match_tol"] * g["bound"].abs() + slack).all())
        else:
            bound_ok = bool((g["value"] <= g["bound"] + slack).all()) if has_bound else True
        meaningful = g[g["bound"] > 10 * spec["abs_tol"]]  # a bound under the reference accuracy says nothing
        worst = float((meaningful["value"] / meaningful["bound"]).max()) if has_bound and len(meaningful) else math.nan
        fitted, predicted, tight, rate_ok = math.nan, float(g["predicted"].iloc[0]), bool(g["tight"].iloc[0]), True
        status = "pass"
        if kind in ("loglog", "semilog"):
            # the first-order variant converges to its difference step's round-off, not to the reference's
            floor = spec.get("first_order_floor", spec["floor"]) if quantity.endswith(" (first-order)") else spec["floor"]
            usable = g[(g["x"] >= g["fit_from"]) & (g["value"] > floor)]
            if len(usable) >= MIN_FIT_POINTS:
                fitted = fit_rate(usable["x"].to_numpy(), usable["value"].to_numpy(), kind)
                margin = spec["tol"] * abs(predicted)
                rate_ok = abs(fitted - predicted) <= margin if tight else fitted <= predicted + margin
            else:
                status = "inconclusive (allowed)" if quantity in allowed else "inconclusive"
                rate_ok = quantity in allowed
        if not bound_ok or (not rate_ok and status == "pass"):
            status = "fail"
        verdicts.append(dict(
            claim=claim_id, title=spec["title"], family=family, seed=int(seed), quantity=quantity, group=group,
            fit_kind=kind, predicted=predicted, fitted=fitted, tight=tight, tol=spec["tol"],
            max_value_over_bound=worst, bound_ok=bound_ok, rate_ok=bool(rate_ok), status=status,
            passed=bool(bound_ok and rate_ok)))
    return pd.DataFrame(verdicts)
