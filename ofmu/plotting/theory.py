"""One figure per theory claim: empirical curves (solid), explicit-constant bounds (dashed), fitted rates."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd

from ofmu.plotting import style

# claim -> panels: (quantity, x label, y label, x log-scale, series column, group shown or None for all)
PANELS = {
    "C1": [("value_gap", "rho", "L_r(theta*) - L_r(theta_rho)", True, "family", None),
           ("infeasibility", "rho", "||grad Phi(theta_rho)||", True, "family", None),
           ("distance", "rho", "||theta_rho - theta*|| (cvxpy: lines; solver: x)", True, "family", None)],
    "C2": [("value_gap", "iteration K", "F(theta_K) - F*", True, "family", None)],
    "C3": [("distance", "iteration K", "||theta_K - theta_rho||", False, "family", None)],
    "C4": [("distance", "outer iteration K", "distance to theta* (see legend)", True, "group", None),
           ("bias", "inner steps T", "||P_S(theta_K) - theta*|| at K max", False, "family", None)],
    "C5": [("min_grad_sq", "iteration K", "min_k<K ||grad F||^2 (measured independently)", True, "family", None),
           ("step_size", "iteration K", "smallest accepted Armijo step so far", True, "family", None)],
    "C6": [("distance", "outer iteration K", "||theta_K - theta*||, T = 0", True, "family", "T=0"),
           ("tracking after the cap", "outer iteration K", "||theta_K - theta_rho_max||, T = 0", False, "family", "T=0"),
           ("distance of P_S(theta)", "outer iteration K", "||P_S(theta_K) - theta*||, T = 4", True, "family", "T=4"),
           ("min_grad_sq", "outer iteration K", "min_k<K ||grad F_rho_k||^2, beta = 0.5", True, "family", None)],
}
COMPETITOR_STYLE = {"T=0 (penalty GD)": ("--", "s"), "scalarized": (":", "^")}
# extra series drawn on a panel without their own fit label: (claim, panel quantity) -> (quantity, marker)
OVERLAYS = {("C1", "distance"): ("distance (solver)", "x")}


def _group_key(name: str):
    """Sort "T=2" before "T=16" (numbers as numbers), anything else after, alphabetically."""
    m = re.fullmatch(r"T=(\d+)", str(name))
    return (0, int(m.group(1)), "") if m else (1, 0, str(name))


def _fit_label(verdicts: pd.DataFrame, family: str, quantity: str, group: str | None) -> str:
    v = verdicts[(verdicts["family"] == family) & (verdicts["quantity"] == quantity)]
    if group is not None:
        v = v[v["group"] == group]
    if v.empty or v["fit_kind"].iloc[0] not in ("loglog", "semilog"):
        return ""
    kind = "slope" if v["fit_kind"].iloc[0] == "loglog" else "log-rate"
    # the predicted rate is per instance (seed): report each seed's fitted/predicted ratio, not seed 0's
    ratios = ", ".join("below floor" if np.isnan(f) else f"{f / p:.2f}" for f, p in zip(v["fitted"], v["predicted"]))
    return f"\n  fitted/predicted {kind} per seed: {ratios}"


def plot_claim(claim_id: str, title: str, rows: pd.DataFrame, verdicts: pd.DataFrame, path, floor: float | None = None) -> None:
    panels = [p for p in PANELS[claim_id] if (rows["quantity"] == p[0]).any()]
    width = max(4.8 * len(panels), 7.0)  # a single panel still fits the two-line title
    fig, axes = style.new_figure(len(panels), size=(width, 4.6))
    for ax, (quantity, xlabel, ylabel, xlog, series_col, only_group) in zip(axes, panels):
        data = rows[rows["quantity"] == quantity]
        if only_group is not None:
            data = data[data["group"] == only_group]
        if claim_id == "C4" and quantity == "distance":
            # one instance, every T plus the competitors: the picture of the bias-vs-T trade-off
            first = data[["family", "seed"]].iloc[0]
            data = rows[rows["quantity"].isin(["distance", "competitor_distance"])
                        & (rows["family"] == first["family"]) & (rows["seed"] == first["seed"])]
            ax.set_title(f"{style.label(first['family'])}, seed {first['seed']}", fontsize=8)
        names = sorted(data[series_col].unique(), key=_group_key) if series_col == "group" \
            else style.order(data[series_col].unique())
        palette = {n: style.colour(n) or f"C{i}" for i, n in enumerate(names)}
        for name in names:
            sub = data[data[series_col] == name]
            competitor = bool((sub["quantity"] == "competitor_distance").any())
            for j, (_, run) in enumerate(sub.groupby(["family", "seed", "group"])):
                run = run.sort_values("x")
                if j == 0:
                    lab = style.label(name) + (_fit_label(verdicts, name, quantity, only_group)
                                               if series_col == "family" else "")
                    if claim_id == "C4" and quantity == "distance":
                        lab = f"{name}: ||theta_K - theta*||" if competitor else f"{name}: ||P_S(theta_K) - theta*||"
                else:
                    lab = None
                # values at or below the reference floor (incl. exact zeros) sit on the floor, hollow,
                # instead of vanishing from a log axis
                low = floor if floor else run["value"][run["value"] > 0].min()
                shown = run["value"].clip(lower=low)
                at_floor = run["value"] <= low
                # the two competitors can coincide: distinct line styles and markers keep both visible
                line, marker = COMPETITOR_STYLE.get(name, ("-", "o")) if competitor else ("-", "o")
                ax.plot(run["x"], shown, line, lw=1.1, color=palette[name], alpha=0.85, label=lab,
                        marker=marker if competitor else None, ms=4, mfc="none", zorder=3 if competitor else 2)
                ax.plot(run["x"][~at_floor], shown[~at_floor], "o", ms=2.5, color=palette[name], alpha=0.85)
                ax.plot(run["x"][at_floor], shown[at_floor], "o", ms=3.5, mfc="none", color=palette[name])
                if run["bound"].notna().all():
                    ax.plot(run["x"], run["bound"], ":", lw=1.0, color=palette[name], alpha=0.6)
            if (claim_id, quantity) in OVERLAYS:
                extra, marker = OVERLAYS[(claim_id, quantity)]
                over = rows[(rows["quantity"] == extra) & (rows[series_col] == name)]
                ax.plot(over["x"], over["value"], marker, ms=5, color=palette[name], ls="none")
        if floor and (data["value"] < 100 * floor).any():  # only where some curve comes near it
            ax.axhline(floor, color="0.4", lw=0.7, ls="-.", label=f"floor {floor:g} (hollow: at or below it)")
        ax.set_yscale("log")
        if xlog:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2 if len(names) > 3 else 1,
                  frameon=False)
    passed = int(verdicts["passed"].sum())
    text = (f"{claim_id}: {title}\nsolid: measured (each seed), dotted: bound; {passed} of {len(verdicts)} checks "
            f"pass (one per family x seed x quantity x group; tab1 has one row per family x quantity x group, over the seeds)")
    fig.suptitle("\n".join(textwrap.fill(line, width=int(15 * width)) for line in text.split("\n")), fontsize=9)
    style.save(fig, path)


def claims_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, family, quantity, group): predicted vs fitted rate over seeds, worst bound ratio, status."""
    rows = []
    # groups are read by index label: a frame concatenated from several files repeats labels, and .loc would then
    # mix other claims' rows into each group (tab1 before issue 19)
    verdicts = verdicts.reset_index(drop=True)
    keys = verdicts.groupby(["claim", "family", "quantity", "group"], sort=False).groups
    for claim, family, quantity, group in sorted(keys, key=lambda k: (k[0], k[1], k[2], _group_key(k[3]))):
        g = verdicts.loc[keys[(claim, family, quantity, group)]]
        fitted = g["fitted"].dropna()
        kind = g["fit_kind"].iloc[0]
        statuses = sorted(set(g["status"]))
        rows.append({
            "claim": claim, "family": family, "quantity": quantity + (f" [{group}]" if group else ""),
            "check": {"loglog": "log-log slope", "semilog": "log rate", "match": "equals the numpy iteration",
                      "none": "bound"}[kind],
            "predicted (mean over seeds)": "-" if g["predicted"].isna().all() else f"{g['predicted'].mean():.4f}",
            "fitted (mean over seeds)": f"{fitted.mean():.4f}" if len(fitted) else "-",
            "rate check": ("tight" if g["tight"].iloc[0] else "one-sided") if kind in ("loglog", "semilog") else "-",
            "max measured/bound": "-" if g["max_value_over_bound"].isna().all()
            else f"{g['max_value_over_bound'].max():.3g}",
            "seeds": len(g["seed"].unique()),
            "status": "PASS" if statuses == ["pass"] else "/".join(s.upper() for s in statuses),
        })
    return pd.DataFrame(rows)
