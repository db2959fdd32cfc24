"""LLM figure: Figure 1 analog (per-sample difficulty vs utility loss); the trade-off is in ``unlearning``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ofmu.plotting import style


def plot_difficulty(costs: pd.DataFrame, path) -> None:
    """One panel per method: difficulty (log P_full(answer)) vs utility loss of forgetting that sample alone."""
    methods = style.order(costs["method"].unique())
    fig, axes = style.new_figure(len(methods), size=(3.6 * len(methods), 3.4))
    for ax, method in zip(axes, methods):
        everything = costs[costs["method"] == method]
        d = everything.dropna(subset=["utility_loss"])
        diverged = len(everything) - len(d)
        rho, p = spearmanr(d["difficulty"], d["utility_loss"]) if len(d) > 2 else (np.nan, np.nan)
        ax.scatter(d["difficulty"], d["utility_loss"], s=14, color=style.colour(method), alpha=0.8)
        note = f"; {diverged} diverged" if diverged else ""
        ax.set_title(f"{style.label(method)}: Spearman {rho:.2f} (p={p:.2g}){note}", fontsize=8)
        ax.set_xlabel("difficulty = log P_full(answer)")
        ax.set_ylabel("utility loss (retain NLL increase)")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_yscale("symlog", linthresh=1.0)  # a few runs blow up by orders of magnitude
        ax.grid(alpha=0.3, lw=0.4)
    fig.suptitle("Figure 1 analog: forgetting one sample alone; does a harder sample cost more utility?", fontsize=9)
    style.save(fig, path)
