"""The comparison of both stages: each method's setting selected on the selection seed, collapsed runs
flagged, trade-off fronts and their one-number summary (shared/experiment-protocol.md sections 3-5).

Fronts. Every (setting, checkpoint) of a method's sweep is a point with two coordinates, both maximized:
    vision  x = -|UA - UA(Retrain)| (points): forgetting as much as Retrain, no more, no less
            y = TA (%): the utility that matters to a user
    LLM     x = log10 FQ: forget quality (a KS p-value, spans orders of magnitude)
            y = MU: model utility
The hypervolume of a front is measured against a fixed reference point, decided before any run: the start
model (Original / Finetuned) in forgetting, and 90% of its utility (the LLM selection rule's floor). A front
gets credit only for points that forget better than doing nothing while keeping 90% of the utility.

A run is "collapsed" when its utility falls under half the start model's (vision TA, LLM MU): the tables
count such seeds next to the mean instead of averaging them in silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ofmu.tables import mean_std
from ofmu.unlearning.fronts import SelectionRule, hypervolume, pareto_mask, select

START = {"vision": "Original", "llm": "Finetuned"}
TARGET = {"vision": "Retrain", "llm": "Retain"}
UTILITY = {"vision": "TA", "llm": "model_utility"}
UTILITY_FLOOR = 0.9  # of the start model's utility: the hypervolume's reference point
COLLAPSE_FRACTION = 0.5  # utility under this share of the start model's: collapsed
FQ_FLOOR = 1e-30  # FQ is a p-value; a 0 (underflow) is drawn and measured at this floor


@dataclass(frozen=True)
class Axes:
    """How a stage's rows become front coordinates (both maximized) and how they are drawn."""

    x_label: str
    y_label: str
    x_log: bool

    def coords(self, stage: str, rows: pd.DataFrame, refs: Mapping[str, Mapping]) -> np.ndarray:
        if stage == "vision":
            x = -100 * (rows["UA"].astype(float) - float(refs["Retrain"]["UA"])).abs()
            y = 100 * rows["TA"].astype(float)
        else:
            x = np.log10(rows["forget_quality"].astype(float).clip(lower=FQ_FLOOR))
            y = rows["model_utility"].astype(float)
        return np.column_stack([np.asarray(x, float), np.asarray(y, float)])

    def shown(self, stage: str, coords: np.ndarray) -> np.ndarray:
        """Coordinates as drawn: vision's x as the (positive) UA gap, the LLM's x as FQ itself."""
        return np.column_stack([-coords[:, 0] if stage == "vision" else 10 ** coords[:, 0], coords[:, 1]])


AXES = {
    "vision": Axes("|UA - UA(Retrain)| (points; 0 = forgets like Retrain)", "TA: test accuracy (%)", False),
    "llm": Axes("forget quality FQ (log; higher = closer to Retain)", "model utility MU", True),
}


def references_of(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """{label: metrics} of the reference rows of one cell and one seed (vision: its Original and Retrain; LLM: its
    replicate's Finetuned and Retain). Rows of several seeds are an error, never one of them picked silently."""
    refs = rows[rows["setting"] == "reference"]
    if refs["label"].duplicated().any():
        raise ValueError(f"reference rows of several cells or seeds (seeds {sorted(set(refs['seed']))}): pass one "
                         f"cell and seed")
    return {r["label"]: r.to_dict() for _, r in refs.iterrows()}


def reference_point(stage: str, refs: Mapping[str, Mapping]) -> tuple[float, float]:
    """The hypervolume's reference: the start model's forgetting, 90% of its utility."""
    x, y = AXES[stage].coords(stage, pd.DataFrame([refs[START[stage]]]), refs)[0]
    return float(x), float(UTILITY_FLOOR * y)


def collapsed(stage: str, rows: pd.DataFrame, refs: Mapping[str, Mapping]) -> pd.Series:
    """True where a finished run's utility is under half the start model's."""
    floor = COLLAPSE_FRACTION * float(refs[START[stage]][UTILITY[stage]])
    return (rows["status"] == "ok") & (rows[UTILITY[stage]].astype(float) < floor)


# ---- selection -----------------------------------------------------------------------------------------------


def select_setting(stage: str, sweep: pd.DataFrame, references: pd.DataFrame, rule: Mapping,
                   signal: Mapping | None = None) -> dict[str, Any]:
    """The selected (setting, checkpoint) of one method on one cell, from its selection-seed sweep rows and
    that seed's reference rows only, by the config's ``rule``; with the reason and what was looked at."""
    rule_ = SelectionRule.from_dict(rule)
    seeds = sorted(set(sweep["seed"]) | set(references["seed"]))
    if len(seeds) != 1:
        raise ValueError(f"the selection reads one seed (the selection seed) only; got rows of seeds {seeds}")
    refs_rows = references
    extra: dict[str, Any] = {}
    if stage == "vision":
        from ofmu.unlearning.signal import VISION_THRESHOLDS, gap_metrics
        from ofmu.vision.domain import with_avg_gap

        # Avg.Gap over the metrics with signal (decided on this seed's Original), against this seed's Retrain
        metrics = gap_metrics(references_of(references)["Original"], {**VISION_THRESHOLDS, **(signal or {})})
        frame = with_avg_gap(pd.concat([references, sweep], ignore_index=True), metrics)
        sweep, refs_rows = frame[frame["setting"] != "reference"], frame[frame["setting"] == "reference"]
        extra["gap_metrics"] = metrics
    refs = references_of(refs_rows)
    ok = sweep[sweep["status"] == "ok"]
    if ok.empty:
        raise ValueError(f"every grid point of {sweep['label'].iloc[0]} diverged on the selection seed; widen its grid "
                         f"(config/methods/{sweep['method'].iloc[0]}.yaml) toward smaller learning rates")
    index, reason = select(ok, rule_, refs)
    row = ok.loc[index]
    return {"label": row["label"], "method": row["method"], "setting": row["setting"],
            "checkpoint": float(row["checkpoint"]), "settings": json.loads(row["hparams"]),
            "seed": int(row["seed"]), "reason": reason, "value": float(row[rule_.metric]), "metric": rule_.metric,
            "points": int(sweep["setting"].nunique()), "trials": len(sweep),
            # every (grid point, checkpoint) counted: a point that diverges after its first checkpoint is 1-2 of them
            "diverged_trials": int((sweep["status"] != "ok").sum()),
            "collapsed_trials": int(collapsed(stage, sweep, refs).sum()),
            "grid_edges": grid_edges(sweep, json.loads(row["hparams"])), **extra}


def grid_edges(sweep: pd.DataFrame, settings: Mapping) -> str:
    """Where a selected setting sits in its grid: each swept key (one with several values) whose selected value
    is the grid's lowest or highest, or "interior". A selection on an edge says the grid may not contain the
    method's best setting (extend it)."""
    grid: dict[str, set] = {}
    for hparams in sweep["hparams"].unique():
        for key, value in json.loads(hparams).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                grid.setdefault(key, set()).add(value)
    edges = [f"{key} lowest" if settings[key] == min(values) else f"{key} highest"
             for key, values in sorted(grid.items()) if len(values) > 1 and settings[key] in (min(values), max(values))]
    return ", ".join(edges) or "interior"


def at_selected(runs: pd.DataFrame, selected: list[Mapping]) -> pd.DataFrame:
    """The reported runs' rows at each method's selected checkpoint."""
    keep = pd.Series(False, index=runs.index)
    for s in selected:
        keep |= (runs["label"] == s["label"]) & (runs["checkpoint"].astype(float) == float(s["checkpoint"])) & \
                _cell_mask(runs, s.get("cell", {}))
    return runs[keep]


def _cell_mask(frame: pd.DataFrame, cell: Mapping) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in cell.items():
        mask &= frame[key] == value
    return mask


def selection_table(selected: list[Mapping], cell_keys: list[str], percent: bool = False) -> pd.DataFrame:
    """One row per (cell, method): the selected setting and checkpoint, the rule's metric there (in % with
    ``percent``: vision's fractions), the grid's size, its trials (grid points x checkpoints) and how many of
    them diverged or collapsed (utility under half the start model's), the rule."""
    rows = [{**{k: s["cell"][k] for k in cell_keys}, "method": s["label"], "selected setting": s["setting"],
             "checkpoint": s["checkpoint"],
             (f"{s['metric']} (%)" if percent else s["metric"]): f"{100 * s['value']:.2f}" if percent else f"{s['value']:.3g}",
             "grid points": s["points"], "grid points x checkpoints": s["trials"],
             "diverged (of them)": s["diverged_trials"], "collapsed (of them)": s["collapsed_trials"],
             "at a grid edge": s["grid_edges"], "rule": s["reason"]} for s in selected]
    return pd.DataFrame(rows)


# ---- fronts ----------------------------------------------------------------------------------------------------


def front(stage: str, rows: pd.DataFrame, refs: Mapping[str, Mapping]) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates of every finished row, mask of its Pareto front)."""
    ok = rows[rows["status"] == "ok"]
    coords = AXES[stage].coords(stage, ok, refs) if len(ok) else np.zeros((0, 2))
    return coords, (pareto_mask(coords) if len(coords) else np.zeros(0, dtype=bool))


def dominated_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the points ``b`` that some point of ``a`` weakly dominates (both coordinates maximized)."""
    if not len(b):
        return float("nan")
    if not len(a):
        return 0.0
    return float(np.mean([np.any(np.all(a >= p, axis=1)) for p in b]))


def selected_hv(stage: str, runs: pd.DataFrame, references: pd.DataFrame, selected: list[Mapping],
                cell_keys: list[str]) -> pd.DataFrame:
    """Per (cell, method, reported seed): the hypervolume of the selected setting's checkpoints on that seed,
    against that seed's reference point (its own Original and Retrain; LLM: its replicate's Finetuned and Retain); a seed with no finished
    checkpoint has none (it diverged: counted in the tables, never averaged in as 0)."""
    out = []
    for s in selected:
        cell = {k: s["cell"][k] for k in cell_keys}
        cell_refs = references[_cell_mask(references, cell)]
        r = runs[_cell_mask(runs, cell) & (runs["label"] == s["label"]) & (runs["setting"] == s["setting"])]
        for seed, rs in r.groupby("seed"):
            if not (rs["status"] == "ok").any():  # diverged at every checkpoint: no hypervolume (not a 0)
                continue
            refs = references_of(cell_refs[cell_refs["seed"] == seed])
            coords, _ = front(stage, rs, refs)
            out.append({**cell, "label": s["label"], "seed": int(seed),
                        "hv": hypervolume(coords, reference_point(stage, refs))})
    return pd.DataFrame(out, columns=[*cell_keys, "label", "seed", "hv"])


def fronts_table(stage: str, sweeps: pd.DataFrame, runs: pd.DataFrame, references: pd.DataFrame,
                 selected: list[Mapping], cell_keys: list[str], order: list[str], subject: str = "OFMU",
                 hv: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cell and method: the hypervolume of its selection-seed front, the hypervolume of its selected
    setting's checkpoints on each reported seed (mean ± std), and how much of its front ``subject``'s
    front dominates (and the reverse). ``hv``: the per-seed hypervolumes of ``selected_hv`` when the caller has
    them already."""
    out = []
    hv = selected_hv(stage, runs, references, selected, cell_keys) if hv is None else hv
    for cell, sw in sweeps.groupby(cell_keys, sort=True):
        cell = dict(zip(cell_keys, cell if isinstance(cell, tuple) else (cell,)))
        sel_seed = int(sw["seed"].iloc[0])
        cell_refs = references[_cell_mask(references, cell)]
        refs = references_of(cell_refs[cell_refs["seed"] == sel_seed])
        ref_point = reference_point(stage, refs)
        fronts = {label: front(stage, sw[sw["label"] == label], refs) for label in order if label in set(sw["label"])}
        subject_front = fronts[subject][0][fronts[subject][1]] if subject in fronts else np.zeros((0, 2))
        for label, (coords, mask) in fronts.items():
            per_seed = hv[_cell_mask(hv, cell) & (hv["label"] == label)]["hv"]
            trials = int((sw["label"] == label).sum())
            row = {**cell, "method": label, "front points": int(mask.sum()),
                   "finished of grid points x checkpoints": f"{len(coords)} of {trials}",
                   "HV (selection seed)": round(hypervolume(coords, ref_point), 4),
                   "HV of selected setting (reported seeds)": mean_std(per_seed, 4) if len(per_seed) else "-"}
            if label != subject and subject in fronts:
                row[f"share dominated by {subject}"] = round(dominated_share(subject_front, coords[mask]), 2)
                row[f"share of {subject} dominated"] = round(dominated_share(coords[mask], subject_front), 2)
            out.append(row)
    return pd.DataFrame(out)


def sensitivity_table(stage: str, rows: pd.DataFrame, references: pd.DataFrame, selected: Mapping) -> pd.DataFrame:
    """Per variation of OFMU's selected setting: the front coordinates as drawn (vision |UA - UA(Retrain)|
    and TA in %, mean ± std over seeds; LLM FQ, median over seeds, and MU, mean ± std) and the count of diverged
    and collapsed seeds."""
    spec = AXES[stage]
    references = references[_cell_mask(references, selected["cell"])]
    out = []
    for setting, g in rows.groupby("setting", sort=False):
        xs, ys, n_collapsed = [], [], 0
        for seed, r in g[g["status"] == "ok"].groupby("seed"):
            refs = references_of(references[references["seed"] == seed])
            xy = spec.shown(stage, spec.coords(stage, r, refs))[0]
            xs.append(xy[0])
            ys.append(xy[1])
            n_collapsed += int(collapsed(stage, r, refs).sum())
        # FQ is a p-value: its median over seeds, never a linear mean
        x = (f"{np.median(xs):.2g}" if stage == "llm" else mean_std(xs, 2)) if xs else "-"
        out.append({"stage": stage, "cell": "/".join(str(v) for v in selected["cell"].values()), "OFMU setting": setting,
                    "forgetting (x)": x, "utility (y)": mean_std(ys, 3 if stage == "llm" else 2) if ys else "-",
                    "seeds": g["seed"].nunique(), "diverged": int((g["status"] != "ok").sum()), "collapsed": n_collapsed})
    return pd.DataFrame(out)


# ---- equal passes vs equal gradient evaluations -----------------------------------------------------------------


def equal_compute_checkpoint(grad_evals: Mapping[float, float], selected: float, budget: float) -> float | None:
    """The checkpoint a method is read at when every method gets ``budget`` gradient evaluations: its selected
    checkpoint when that is within the budget, else the latest checkpoint within it (the same setting stopped
    earlier), None when even its first checkpoint costs more. ``grad_evals``: checkpoint -> mean evaluations."""
    within = [c for c, g in grad_evals.items() if g <= budget]
    if selected in within:
        return selected
    return max(within) if within else None


def equal_compute_table(stage: str, runs: pd.DataFrame, references: pd.DataFrame, selected: list[Mapping],
                        cell_keys: list[str], budget_of: str = "GradDiff") -> pd.DataFrame:
    """Per cell and method (its selected setting, the reported seeds): the headline numbers at equal passes over
    D_f (the selected checkpoint: every table's budget) and at equal gradient evaluations (counted,
    ``loop.counting_gradients``): the cell's gradient budget is what ``budget_of`` (one gradient per forget
    batch) uses in the whole pass budget, and each method is read at ``equal_compute_checkpoint``. The rule
    reads costs only, never a metric, so it is fixed before the numbers are seen."""
    from ofmu.tables import fmt_median_range
    from ofmu.vision.domain import with_avg_gap

    ok = runs[runs["status"] == "ok"]
    out = []
    for s in selected:
        cell = {k: s["cell"][k] for k in cell_keys}
        in_cell = ok[_cell_mask(ok, cell)]
        base = in_cell[(in_cell["label"] == budget_of) & (in_cell["checkpoint"] == in_cell["checkpoint"].max())]
        if base.empty:
            raise ValueError(f"{stage} {cell}: no finished run of {budget_of} at the end of the budget, whose "
                             f"gradient evaluations set the equal-compute budget; add {budget_of} to {stage}.methods")
        budget = float(base["grad_evals"].mean())
        rows = in_cell[(in_cell["label"] == s["label"]) & (in_cell["setting"] == s["setting"])]
        if stage == "vision":
            refs = references[_cell_mask(references, cell)]
            rows = with_avg_gap(pd.concat([refs, rows], ignore_index=True), s["gap_metrics"])
            rows = rows[rows["setting"] != "reference"]
        costs = rows.groupby("checkpoint")["grad_evals"].mean().to_dict()
        row = {**cell, "method": s["label"], "gradient budget": f"{budget:.0f}"}
        for part, checkpoint in (("equal passes", float(s["checkpoint"])),
                                 ("equal gradients", equal_compute_checkpoint(costs, float(s["checkpoint"]), budget))):
            at = rows[rows["checkpoint"] == checkpoint] if checkpoint is not None else rows.iloc[:0]
            row[f"{part}: checkpoint"] = "none within the budget" if checkpoint is None else f"{checkpoint:g}"
            row[f"{part}: gradients"] = f"{at['grad_evals'].mean():.0f}" if len(at) else "-"
            row[f"{part}: seeds"] = len(at)
            if stage == "vision":
                row[f"{part}: Avg. Gap (%)"] = mean_std(100 * at["Avg.Gap"].astype(float)) if len(at) else "-"
            else:
                row[f"{part}: FQ"] = fmt_median_range(at["forget_quality"]) if len(at) else "-"
                row[f"{part}: MU"] = mean_std(at["model_utility"].astype(float), 3) if len(at) else "-"
        out.append(row)
    return pd.DataFrame(out)
