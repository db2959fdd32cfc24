"""Figure of the first-order OFMU's fidelity: error against the difference step (the V-curves)."""

from __future__ import annotations

import pandas as pd

from ofmu.plotting import style

COLOURS = {"grad Phi": "#1f77b4", "grad F, beta=0": "#2ca02c", "grad F": "#d62728"}
LINES = {"forward": "-", "central": "--"}


def _colour(quantity: str) -> str:
    if quantity.startswith("grad Phi"):
        return COLOURS["grad Phi"]
    return COLOURS["grad F, beta=0"] if quantity.endswith("beta=0") else COLOURS["grad F"]


def plot_fidelity(summary: pd.DataFrame, chosen_step: float | None, path) -> None:
    """One panel per problem: median relative error vs step per (quantity, scheme); float64 panels mark the
    "auto" step with a star; float32 panels shade median..p90 over the run, mark the inner-step difference
    and the configured step."""
    order = ["theory problem (logistic_ridge)", "tanh network"]
    rest = sorted(set(summary["problem"]) - set(order), key=lambda p: (not p.startswith("vision"), p))
    problems = [p for p in order if p in set(summary["problem"])] + rest
    fig, axes = style.new_figure(len(problems), size=(4.4 * len(problems), 5.2))
    for ax, problem in zip(axes, problems):
        d = summary[summary["problem"] == problem]
        dtype = d["dtype"].iloc[0]
        for (quantity, scheme), g in d.groupby(["quantity", "scheme"], sort=True):
            g = g.sort_values("fd_step")
            colour = _colour(quantity)
            if scheme not in LINES:  # the inner-step difference: one point at its median step
                ax.errorbar(g["fd_step"], g["rel_error_median"],
                            yerr=[[0] * len(g), (g["rel_error_p90"] - g["rel_error_median"]).tolist()],
                            fmt="D", ms=6, color="k", capsize=3, label=f"{quantity}, {scheme} (median step)")
                continue
            curve = g[~g["auto"]]
            ax.loglog(curve["fd_step"], curve["rel_error_median"], marker="o", ms=3, ls=LINES[scheme],
                      color=colour, label=f"{quantity}, {scheme}")
            if dtype == "float32":
                ax.fill_between(curve["fd_step"], curve["rel_error_median"], curve["rel_error_p90"], alpha=0.12,
                                color=colour)
            auto = g[g["auto"]]
            ax.loglog(auto["fd_step"], auto["rel_error_median"], marker="*", ms=12, ls="none", color=colour,
                      markeredgecolor="k")
        if dtype == "float32" and chosen_step is not None:
            ax.axvline(chosen_step, color="k", lw=0.8, ls=":", label=f"configured fd_step {chosen_step:g}")
        suffix = "median over a run, band to p90" if dtype == "float32" else "* = the 'auto' step"
        ax.set_title(f"{problem}\n{dtype}, {suffix}", fontsize=8.5)
        ax.set_xlabel("fd_step (perturbation norm / (1 + ||theta||))")
        ax.set_ylabel("relative error vs autograd")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    fig.suptitle("First-order OFMU: gradient differences against autograd's exact derivatives "
                 "(solid: forward, dashed: central differences)", fontsize=10)
    style.save(fig, path)
