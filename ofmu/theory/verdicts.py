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


def load_claims(path: str | Path) -> dict:
    """Read claims.yaml; every claim needs the common keys (its own keys are checked by its runner)."""
    claims = yaml.safe_load(Path(path).read_text())
    for cid, spec in claims.items():
        if cid not in CLAIM_IDS:
            raise ValueError(f"{path}: unknown claim {cid!r}; claims with a runner: {', '.join(CLAIM_IDS)}")
        missing = sorted(CLAIM_KEYS - set(spec))
        if missing:
            raise ValueError(f"{path}: claim {cid} lacks key(s) {missing}")
    return claims


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
