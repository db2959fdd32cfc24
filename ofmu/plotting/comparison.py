"""Figures of the comparison (both stages): trade-off fronts per cell and OFMU's sensitivity.

Coordinates and reference points come from ``ofmu.unlearning.comparison`` (AXES): vision draws the UA gap
to Retrain (lower is better) against TA, the LLM forget quality (log) against model utility.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ofmu.plotting import style
from ofmu.unlearning.comparison import AXES, START, TARGET, front, references_of


def _cell_title(cell: Mapping) -> str:
    return ", ".join(str(v) for v in cell.values())


def _refs_for(stage: str, references: pd.DataFrame, cell: Mapping, seed: int | None) -> dict:
    mask = np.ones(len(references), dtype=bool)
    for k, v in cell.items():
        mask &= (references[k] == v).to_numpy()
    rows = references[mask]
    if stage == "vision" and seed is not None:
        rows = rows[rows["seed"] == seed]
    return references_of(rows)


def _reference_markers(ax, stage: str, refs: Mapping, which: str) -> None:
    axes = AXES[stage]
    for label, marker, size in ((TARGET[stage], "*", 14), (START[stage], "s", 7)):
        xy = axes.shown(stage, axes.coords(stage, pd.DataFrame([refs[label]]), refs))[0]
        ax.plot(*xy, marker, ms=size, color=style.colour(label), mec="white", mew=0.6, zorder=6,
                label=f"{style.label(label)} ({which})")


def plot_fronts(stage: str, sweeps: pd.DataFrame, runs: pd.DataFrame, references: pd.DataFrame,
                selected: list[Mapping], cell_keys: list[str], path, title: str) -> None:
    """One panel per cell: every sweep point and checkpoint of every method (faint), its Pareto front (line),
    its selected setting on the selection seed (large marker, black edge) and that setting's rows on the
    reported seeds (small open circles), the target (star) and the start model (square)."""
    axes_spec = AXES[stage]
    cells = [dict(zip(cell_keys, k if isinstance(k, tuple) else (k,))) for k, _ in sweeps.groupby(cell_keys, sort=True)]
    legend_width = 2.0
    width = 5.2 * len(cells) + legend_width
    fig, axes = style.new_figure(len(cells), size=(width, 4.6))
    for ax, cell in zip(axes, cells):
        sw = sweeps[np.logical_and.reduce([sweeps[k] == v for k, v in cell.items()])]
        seed = int(sw["seed"].iloc[0])
        refs = _refs_for(stage, references, cell, seed)
        for label in style.order(sw["label"].unique()):
            colour = style.colour(label)
            coords, mask = front(stage, sw[sw["label"] == label], refs)
            if not len(coords):
                continue
            shown = axes_spec.shown(stage, coords)
            ax.plot(shown[:, 0], shown[:, 1], ".", ms=3, alpha=0.3, color=colour)
            line = shown[mask][np.argsort(shown[mask][:, 0])]
            ax.plot(line[:, 0], line[:, 1], "-", lw=1.3, color=colour, label=style.label(label))
            sel = next(s for s in selected if s["label"] == label and all(s["cell"][k] == v for k, v in cell.items()))
            pick = sw[(sw["label"] == label) & (sw["setting"] == sel["setting"]) & (sw["checkpoint"] == sel["checkpoint"])]
            xy = axes_spec.shown(stage, axes_spec.coords(stage, pick, refs))
            ax.plot(xy[:, 0], xy[:, 1], "o", ms=8, color=colour, mec="black", mew=1.0, zorder=5)
            reported = runs[(runs["label"] == label) & (runs["checkpoint"] == sel["checkpoint"]) & (runs["status"] == "ok")
                            & np.logical_and.reduce([runs[k] == v for k, v in cell.items()])]
            for s, r in reported.groupby("seed"):
                xy = axes_spec.shown(stage, axes_spec.coords(stage, r, _refs_for(stage, references, cell, s)))
                ax.plot(xy[:, 0], xy[:, 1], "o", ms=4.5, mfc="none", color=colour, mew=1.0, zorder=4)
        _reference_markers(ax, stage, refs, "selection seed")
        if axes_spec.x_log:
            ax.set_xscale("log")
        ax.set_title(_cell_title(cell), fontsize=9)
        ax.set_xlabel(axes_spec.x_label, fontsize=8)
        ax.set_ylabel(axes_spec.y_label, fontsize=8)
        ax.grid(alpha=0.3, lw=0.4, which="both")
    legend = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    from matplotlib.lines import Line2D

    legend["selected (selection seed)"] = Line2D([], [], marker="o", ls="", ms=8, color="#bbbbbb", mec="black")
    legend["selected, each reported seed"] = Line2D([], [], marker="o", ls="", ms=4.5, mfc="none", color="#444444")
    legend["every grid point x checkpoint"] = Line2D([], [], marker=".", ls="", ms=4, color="#444444", alpha=0.4)
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
    style.save(fig, path, tight=False)


def plot_sensitivity(frames: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], path, title: str) -> None:
    """One panel per stage: OFMU's one-at-a-time variations around its selected setting (mean ± std over
    the seeds run), each labelled by the setting it changes; the selected setting, target and start marked."""
    stages = [s for s, (rows, _) in frames.items() if len(rows)]
    fig, axes = style.new_figure(len(stages), size=(7.6 * len(stages), 4.6))
    for ax, stage in zip(axes, stages):
        rows, references = frames[stage]
        spec = AXES[stage]
        cell = {k: rows[k].iloc[0] for k in (("dataset", "scenario") if stage == "vision" else ("split",))}
        points = []
        for (setting, seed), r in rows[rows["status"] == "ok"].groupby(["setting", "seed"], sort=False):
            xy = spec.shown(stage, spec.coords(stage, r, _refs_for(stage, references, cell, seed)))[0]
            points.append({"setting": setting, "x": xy[0], "y": xy[1]})
        points = pd.DataFrame(points, columns=["setting", "x", "y"])
        # one marker and colour per variation, named in the legend (labels next to the points overlapped)
        markers = "os^vD<>ph*"
        for i, (setting, g) in enumerate(points.groupby("setting", sort=False)):
            selected = setting == "selected"
            n = len(g)
            ax.errorbar(g["x"].mean(), g["y"].mean(), xerr=g["x"].std(ddof=1) if n > 1 else None,
                        yerr=g["y"].std(ddof=1) if n > 1 else None, fmt=markers[i % len(markers)],
                        ms=9 if selected else 6, color=style.colour("OFMU") if selected else f"C{i % 10}",
                        capsize=2, lw=0.8, mec="black" if selected else None, alpha=0.85, label=setting)
        diverged = rows[rows["status"] != "ok"]["setting"].unique()
        seeds = sorted(int(s) for s in rows["seed"].unique())
        _reference_markers(ax, stage, _refs_for(stage, references, cell, seeds[0]), f"seed {seeds[0]}")
        if spec.x_log:
            ax.set_xscale("log")
        note = f"; diverged: {', '.join(diverged)}" if len(diverged) else ""
        ax.set_title(f"{stage}: {_cell_title(cell)}, seeds {seeds}{note}", fontsize=8)
        ax.set_xlabel(spec.x_label, fontsize=8)
        ax.set_ylabel(spec.y_label, fontsize=8)
        ax.grid(alpha=0.3, lw=0.4, which="both")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    style.save(fig, path, tight=False)
