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


def plot_attacks(records: pd.DataFrame, path) -> None:
    """The robustness attacks per label (mean over the reported seeds, first split): the unseen forget answers'
    probability while relearning on part of D_f, the forget answers' probability while fine-tuning on retain rows
    only, and the forget probability of the float model and its 8- / 4-bit roundings. Retain is the line to read
    the others against: it never learned D_f."""
    split = sorted(records["split"].unique())[0]
    records = records[records["split"] == split]
    labels = style.order(records["label"].unique())
    relearn = records[records["attack"] == "relearn"]
    panels = [("forget", "forget_prob_unseen", "relearning on part of D_f: the unseen rows"),
              ("retain", "forget_prob", "fine-tuning on retain rows only")]
    panels = [p for p in panels if p[0] in set(relearn["data"])]
    quantized = records[records["attack"] == "quantize"]
    fig, axes = style.new_figure(len(panels) + (not quantized.empty), size=(4.0 * (len(panels) + 1) + 1.6, 3.4))
    for ax, (data, metric, title) in zip(axes, panels):
        part = relearn[relearn["data"] == data]
        for label in labels:
            curve = part[part["label"] == label].groupby("steps")[metric].mean()
            ax.plot(curve.index, curve.values, marker="o", ms=3, lw=1.2, color=style.colour(label),
                    label=style.label(label), ls="--" if label in ("Retain", "Finetuned") else "-")
        ax.set_xlabel("attack steps")
        ax.set_ylabel("forget-answer probability" + (" (unseen rows)" if data == "forget" else ""))
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, lw=0.4)
    if not quantized.empty:
        ax = axes[len(panels)]
        bits = sorted(quantized["bits"].dropna().astype(int).unique(), reverse=True)
        start = relearn[relearn["steps"] == 0]
        for label in labels:
            base = start[start["label"] == label]["forget_prob"].mean()
            values = [base] + [quantized[(quantized["label"] == label) & (quantized["bits"] == b)]["forget_prob"].mean()
                               for b in bits]
            ax.plot(range(len(values)), values, marker="o", ms=3, lw=1.2, color=style.colour(label),
                    label=style.label(label), ls="--" if label in ("Retain", "Finetuned") else "-")
        ax.set_xticks(range(len(bits) + 1), ["float32", *[f"{b}-bit" for b in bits]])
        ax.set_ylabel("forget-answer probability")
        ax.set_title("quantization (round to nearest, per channel)", fontsize=9)
        ax.grid(alpha=0.3, lw=0.4)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Robustness of forgetting ({split}, mean over {records['seed'].nunique()} reported seeds): "
                 f"does an attack bring the forget answers back?", fontsize=9)
    style.save(fig, path)
