"""OFMU's per-iteration diagnostics in both unlearning stages (the fronts: ``ofmu.plotting.comparison``).

A stage passes its cell keys and metric columns; nothing here knows images or text.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ofmu.plotting import style

DIAGNOSTICS = [("cos", "cos(grad L_f, grad L_r)", False), ("grad_phi_norm", "||grad Phi||", True),
               ("rho", "rho", True), ("L_f", "L_f (forget loss)", False), ("L_r", "L_r (retain loss)", False)]


def _panel_title(values) -> str:
    return ", ".join(str(v) for v in (values if isinstance(values, tuple) else (values,)))


def plot_ofmu_diagnostics(diag: pd.DataFrame, path, panels: list[str], title: str,
                          selected_steps: Mapping[tuple, int] | None = None) -> None:
    """OFMU (selected setting) per outer iteration, mean over seeds, one line per cell; with ``selected_steps``
    ({cell values: outer iterations at the selected checkpoint}), that checkpoint marked (dashed) in every
    panel and its outer-iteration count and rho named in the legend."""
    if len(diag):
        diag = diag[diag["label"] == "OFMU"]
    fig, axes = style.new_figure(len(DIAGNOSTICS), size=(3.3 * len(DIAGNOSTICS), 3.4))
    if diag.empty:
        axes[0].text(0.5, 0.5, "OFMU was not among the configured methods", ha="center", transform=axes[0].transAxes)
        style.save(fig, path)
        return
    for key, d in diag.groupby(panels, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean = d.groupby("step").mean(numeric_only=True)
        steps = (selected_steps or {}).get(tuple(str(k) for k in key))
        label = _panel_title(key)
        if steps is not None and steps - 1 in mean.index:
            label += f" (selected: {steps} outer iterations, rho {mean.loc[steps - 1, 'rho']:.3g})"
        for ax, (col, name, logy) in zip(axes, DIAGNOSTICS):
            # markers: a cell with a single outer iteration is a point, not an invisible line
            (line,) = ax.plot(mean.index, mean[col], "-o", ms=2.5, lw=1.2, label=label)
            if steps is not None:  # the last outer step taken before the selected checkpoint (0-based)
                ax.axvline(steps - 1, ls="--", lw=0.9, color=line.get_color())
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("outer iteration")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if logy:
                ax.set_yscale("log")
            ax.grid(alpha=0.3, lw=0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 2), fontsize=7, frameon=False)
    fig.suptitle(f"{title} (mean over seeds; measured where the outer step is taken; dashed: the selected "
                 f"checkpoint)", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))  # the legend below the panels covers no curve
    style.save(fig, path, tight=False)


def selected_steps(runs: pd.DataFrame, selected: list[Mapping], label: str = "OFMU") -> dict[tuple, int]:
    """{cell values (as text): outer iterations ``label`` took at its selected checkpoint} (the median over
    its reported seeds' finished rows)."""
    out = {}
    for s in selected:
        if s["label"] != label:
            continue
        r = runs[(runs["label"] == label) & (runs["setting"] == s["setting"])
                 & (runs["checkpoint"].astype(float) == float(s["checkpoint"])) & (runs["status"] == "ok")]
        for k, v in s["cell"].items():
            r = r[r[k].astype(str) == str(v)]
        if len(r):
            out[tuple(str(v) for v in s["cell"].values())] = int(r["steps"].median())
    return out
