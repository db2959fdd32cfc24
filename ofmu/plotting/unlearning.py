"""OFMU's per-iteration diagnostics in both unlearning stages (the fronts: ``ofmu.plotting.comparison``).

A stage passes its cell keys and metric columns; nothing here knows images or text.
"""

from __future__ import annotations

import pandas as pd

from ofmu.plotting import style

DIAGNOSTICS = [("cos", "cos(grad L_f, grad L_r)", False), ("grad_phi_norm", "||grad Phi||", True),
               ("rho", "rho", True), ("L_f", "L_f (forget loss)", False), ("L_r", "L_r (retain loss)", False)]


def _panel_title(values) -> str:
    return ", ".join(str(v) for v in (values if isinstance(values, tuple) else (values,)))


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
