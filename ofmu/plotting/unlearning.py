"""Figures of both unlearning stages: the forgetting-vs-utility trade-off and OFMU's per-iteration diagnostics.

A stage passes its cell keys and metric columns; nothing here knows images or text.
"""

from __future__ import annotations

import pandas as pd

from ofmu.plotting import style

DIAGNOSTICS = [("cos", "cos(grad L_f, grad L_r)", False), ("grad_phi_norm", "||grad Phi||", True),
               ("rho", "rho", True), ("L_f", "L_f (forget loss)", False), ("L_r", "L_r (retain loss)", False)]


def _panel_title(values) -> str:
    return ", ".join(str(v) for v in (values if isinstance(values, tuple) else (values,)))


def plot_tradeoff(frame: pd.DataFrame, path, panels: list[str], x: str, y: str, xlabel: str, ylabel: str,
                  target: str, start: str, title: str, scale: float = 1.0, ylog: bool = False) -> None:
    """One panel per cell: mean ± std over seeds of ``x`` and ``y`` per label (``target`` as a star,
    ``start`` as a square); diverged runs have no metrics and are left out (the tables count them)."""
    frame = frame[frame["status"] == "ok"]
    groups = list(frame.groupby(panels, sort=True))
    legend_width = 1.9  # inches kept free on the right for the shared legend
    width = 4.4 * len(groups) + legend_width
    fig, axes = style.new_figure(len(groups), size=(width, 3.9))
    for ax, (key, d) in zip(axes, groups):
        for label in style.order(d["label"].unique()):
            g = d[d["label"] == label]
            xs, ys = scale * g[x], scale * g[y]
            marker = "*" if label == target else ("s" if label == start else "o")
            spread = len(g) > 1
            ax.errorbar(xs.mean(), max(ys.mean(), 1e-30) if ylog else ys.mean(),
                        xerr=xs.std(ddof=1) if spread else None, yerr=ys.std(ddof=1) if spread and not ylog else None,
                        fmt=marker, ms=9 if marker == "*" else 5, color=style.colour(label) or "#444444",
                        label=style.label(label), capsize=2, lw=0.8)
        if ylog:
            ax.set_yscale("log")
        ax.set_title(_panel_title(key), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, lw=0.4, which="both")
    legend = {}  # every label of every panel once (a label can be missing from a panel: diverged there)
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
    style.save(fig, path, tight=False)


def plot_ofmu_diagnostics(diag: pd.DataFrame, path, panels: list[str], title: str) -> None:
    """OFMU (default setting) per outer iteration, mean over seeds, one line per cell."""
    if len(diag):
        diag = diag[diag["label"] == "OFMU"]
    fig, axes = style.new_figure(len(DIAGNOSTICS), size=(3.3 * len(DIAGNOSTICS), 3.2))
    if diag.empty:
        axes[0].text(0.5, 0.5, "OFMU was not among the configured methods", ha="center", transform=axes[0].transAxes)
        style.save(fig, path)
        return
    for key, d in diag.groupby(panels, sort=True):
        mean = d.groupby("step").mean(numeric_only=True)
        for ax, (col, label, logy) in zip(axes, DIAGNOSTICS):
            # markers: a cell with a single outer iteration is a point, not an invisible line
            ax.plot(mean.index, mean[col], "-o", ms=2.5, lw=1.2, label=_panel_title(key))
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("outer iteration")
            if logy:
                ax.set_yscale("log")
            ax.grid(alpha=0.3, lw=0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle(f"{title} (mean over seeds; measured where the outer step is taken)", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # the legend below the panels covers no curve
    style.save(fig, path, tight=False)
