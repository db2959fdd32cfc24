"""Figures of the comparison (both stages): trade-off fronts per cell and OFMU's sensitivity.

Coordinates and reference points come from ``ofmu.unlearning.comparison`` (AXES): vision draws the UA gap
to Retrain (lower is better) against TA, the LLM forget quality (log) against model utility.
"""

from __future__ import annotations

import textwrap
from typing import Mapping

import numpy as np
import pandas as pd

from ofmu.plotting import style
from ofmu.unlearning.comparison import AXES, START, TARGET, collapsed, front, reference_point, references_of


def _cell_title(cell: Mapping) -> str:
    return ", ".join(str(v) for v in cell.values())


def _refs_for(stage: str, references: pd.DataFrame, cell: Mapping, seed: int | None) -> dict:
    mask = np.ones(len(references), dtype=bool)
    for k, v in cell.items():
        mask &= (references[k] == v).to_numpy()
    rows = references[mask]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    return references_of(rows)


def _reference_markers(ax, stage: str, refs: Mapping, which: str) -> None:
    axes = AXES[stage]
    for label, marker, size in ((TARGET[stage], "*", 14), (START[stage], "s", 7)):
        xy = axes.shown(stage, axes.coords(stage, pd.DataFrame([refs[label]]), refs))[0]
        ax.plot(*xy, marker, ms=size, color=style.colour(label), mec="white", mew=0.6, zorder=6,
                label=f"{style.label(label)} ({which})")


def staircase(front: np.ndarray, ref: tuple[float, float]) -> np.ndarray:
    """The boundary of the region a front dominates above ``ref`` (both coordinates maximized), as a path:
    from the reference utility up to the best-forgetting point, then alternately left and up to the next front
    point, and left to the reference forgetting. Its area above ``ref`` is the hypervolume."""
    rx, ry = ref
    p = front[(front[:, 0] > rx) & (front[:, 1] > ry)]
    if not len(p):
        return np.zeros((0, 2))
    p = p[np.argsort(-p[:, 0])]
    path = [(p[0, 0], ry), (p[0, 0], p[0, 1])]
    for (x0, y0), (x1, y1) in zip(p[:-1], p[1:]):
        path += [(x1, y0), (x1, y1)]
    path.append((rx, p[-1, 1]))
    return np.asarray(path, dtype=float)


def plot_fronts(stage: str, sweeps: pd.DataFrame, runs: pd.DataFrame, references: pd.DataFrame,
                selected: list[Mapping], cell_keys: list[str], path, title: str) -> None:
    """One panel per cell: every sweep point and checkpoint of every method (faint), the staircase its front
    dominates above the hypervolume's reference point (what HV measures; a front with no point there has no
    staircase), its selected setting on the selection seed (large marker, black edge) and that setting's rows on
    the reported seeds (small open circles), the target (star) and the start model (square); the reference
    point's lines (the start model's forgetting, 90% of its utility) dashed. The axes show the region around
    the reference point; points outside it are counted in the panel's note, diverged and collapsed trials in
    the legend."""
    axes_spec = AXES[stage]
    cells = [dict(zip(cell_keys, k if isinstance(k, tuple) else (k,))) for k, _ in sweeps.groupby(cell_keys, sort=True)]
    legend_width = 2.6
    width = 5.2 * len(cells) + legend_width
    fig, axes = style.new_figure(len(cells), size=(width, 4.8))
    failures: dict[str, list[int]] = {}
    for ax, cell in zip(axes, cells):
        sw = sweeps[np.logical_and.reduce([sweeps[k] == v for k, v in cell.items()])]
        seed = int(sw["seed"].iloc[0])
        refs = _refs_for(stage, references, cell, seed)
        ref = reference_point(stage, refs)
        shown_all = []
        for label in style.order(sw["label"].unique()):
            colour = style.colour(label)
            rows = sw[sw["label"] == label]
            counts = failures.setdefault(label, [0, 0])
            counts[0] += int((rows["status"] != "ok").sum())
            counts[1] += int(collapsed(stage, rows, refs).sum())
            coords, mask = front(stage, rows, refs)
            if not len(coords):
                continue
            shown = axes_spec.shown(stage, coords)
            shown_all.append(shown)
            ax.plot(shown[:, 0], shown[:, 1], ".", ms=3, alpha=0.3, color=colour)
            stairs = staircase(coords[mask], ref)
            if len(stairs):
                stairs = axes_spec.shown(stage, stairs)
                ax.plot(stairs[:, 0], stairs[:, 1], "-", lw=1.3, color=colour, label=style.label(label))
            else:
                ax.plot([], [], "-", lw=1.3, color=colour, label=style.label(label))
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
        rx, ry = axes_spec.shown(stage, np.asarray([ref]))[0]
        ax.axhline(ry, ls="--", lw=0.8, color="#555555")
        ax.axvline(rx, ls=":", lw=0.8, color="#555555")
        if axes_spec.x_log:
            ax.set_xscale("log")
        hidden = _zoom(ax, stage, np.vstack(shown_all) if shown_all else np.zeros((0, 2)), (rx, ry), refs)
        ax.set_title(_cell_title(cell) + (f"\n({hidden} points outside the axes: utility far below the floor)"
                                          if hidden else ""), fontsize=8)
        ax.set_xlabel(axes_spec.x_label, fontsize=8)
        ax.set_ylabel(axes_spec.y_label, fontsize=8)
        ax.grid(alpha=0.3, lw=0.4, which="both")
    legend = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    legend = {_with_failures(text, failures): handle for text, handle in legend.items()}
    from matplotlib.lines import Line2D

    legend["selected (selection seed)"] = Line2D([], [], marker="o", ls="", ms=8, color="#bbbbbb", mec="black")
    legend["selected, each reported seed"] = Line2D([], [], marker="o", ls="", ms=4.5, mfc="none", color="#444444")
    legend["every grid point x checkpoint"] = Line2D([], [], marker=".", ls="", ms=4, color="#444444", alpha=0.4)
    legend["HV floor: 90% of the start's utility"] = Line2D([], [], ls="--", lw=0.8, color="#555555")
    legend["HV reference: the start's forgetting"] = Line2D([], [], ls=":", lw=0.8, color="#555555")
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=6.5, frameon=False)
    # wrapped to the figure's width (a one-panel figure is narrow)
    fig.suptitle("\n".join(textwrap.fill(line, width=int(12 * width)) for line in title.split("\n")), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
    style.save(fig, path, tight=False)


def _with_failures(text: str, failures: Mapping[str, list[int]]) -> str:
    """A method's legend entry with its diverged / collapsed trials over the panels, where it has any."""
    label = next((k for k in failures if style.label(k) == text), None)
    if label is None:
        return text
    diverged, n_collapsed = failures[label]
    notes = [f"{diverged} diverged"] * bool(diverged) + [f"{n_collapsed} collapsed"] * bool(n_collapsed)
    return text + (f" ({', '.join(notes)})" if notes else "")


def _zoom(ax, stage: str, shown: np.ndarray, ref: tuple[float, float], refs: Mapping) -> int:
    """Axes on the region of interest: utility from a little under the HV floor (collapsed points are far below
    it) to the top; forgetting over the points in that band plus the start and target. Returns how many points
    fall outside."""
    axes_spec = AXES[stage]
    marks = axes_spec.shown(stage, axes_spec.coords(stage, pd.DataFrame([refs[TARGET[stage]], refs[START[stage]]]), refs))
    pts = np.vstack([shown, marks]) if len(shown) else marks
    top = pts[:, 1].max()
    low = ref[1] - 0.5 * (top - ref[1])
    band = pts[pts[:, 1] >= low]
    xs = band[:, 0]
    if axes_spec.x_log:
        lo, hi = np.log10(max(xs.min(), 1e-30)), np.log10(xs.max())
        pad = 0.05 * max(hi - lo, 1.0)
        ax.set_xlim(10 ** (lo - pad), 10 ** (hi + pad))
        x_lo, x_hi = 10 ** (lo - pad), 10 ** (hi + pad)
    else:
        pad = 0.05 * max(xs.max() - xs.min(), 1.0)
        x_lo, x_hi = xs.min() - pad, xs.max() + pad
        ax.set_xlim(x_lo, x_hi)
    y_hi = top + 0.03 * (top - low)
    ax.set_ylim(low, y_hi)
    inside = (shown[:, 1] >= low) & (shown[:, 0] >= x_lo) & (shown[:, 0] <= x_hi) if len(shown) else np.zeros(0, bool)
    return int((~inside).sum())


def _mean_reference_markers(ax, stage: str, refs_per_seed: list[Mapping], seeds: list[int]) -> None:
    """The target and start model as the mean over ``seeds`` of their coordinates: the same seeds as the points
    they are compared with (each seed has its own Original and Retrain, or Finetuned and Retain)."""
    axes = AXES[stage]
    for label, marker, size in ((TARGET[stage], "*", 14), (START[stage], "s", 7)):
        xy = np.mean([axes.shown(stage, axes.coords(stage, pd.DataFrame([r[label]]), r))[0] for r in refs_per_seed], axis=0)
        ax.plot(*xy, marker, ms=size, color=style.colour(label), mec="white", mew=0.6, zorder=6,
                label=f"{style.label(label)} (mean over seeds {seeds})")


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
            # bars: the range over seeds (never below 0 for the vision UA gap, an absolute value, as mean - std was)
            mx, my = g["x"].mean(), g["y"].mean()
            ax.errorbar(mx, my, xerr=[[mx - g["x"].min()], [g["x"].max() - mx]] if len(g) > 1 else None,
                        yerr=[[my - g["y"].min()], [g["y"].max() - my]] if len(g) > 1 else None,
                        fmt=markers[i % len(markers)], ms=9 if selected else 6,
                        color=style.colour("OFMU") if selected else f"C{i % 10}", capsize=2, lw=0.8,
                        mec="black" if selected else None, alpha=0.85, label=setting)
        diverged = rows[rows["status"] != "ok"]["setting"].unique()
        seeds = sorted(int(s) for s in rows["seed"].unique())
        _mean_reference_markers(ax, stage, [_refs_for(stage, references, cell, s) for s in seeds], seeds)
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
