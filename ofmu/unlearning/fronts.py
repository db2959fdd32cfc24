"""Trade-off fronts of unlearning runs and the rule that selects a method's setting (shared/experiment-protocol.md).

A method's runs (every swept setting, every checkpoint along the budget) are points in a plane of two
objectives, e.g. (forget quality, model utility) on the LLM or (-|UA - UA_Retrain|, RA) on vision. Both
coordinates are *maximized* here; negate a metric to minimize it.

* ``pareto_mask``: which points no other point dominates (>= in both coordinates, > in one);
* ``hypervolume``: the area the points dominate above a fixed reference point, the one number that
  summarizes a front (larger is better; 0 when no point beats the reference in both coordinates);
* ``SelectionRule`` / ``select``: the rule, written in the config before any run, that picks one row
  (setting and checkpoint) of a method from its selection-seed rows: optimize one metric, optionally
  only among rows whose utility is at least a fraction of a reference model's, ties broken by a second
  metric, then by the order of the rows (the config's order of the grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

DIRECTIONS = ("min", "max")


def _points(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must be an array of shape [n, 2]; got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points must be finite (drop diverged runs before building a front)")
    return p


def pareto_mask(points) -> np.ndarray:
    """Boolean mask of the non-dominated points (both coordinates maximized; equal points are all kept)."""
    p = _points(points)
    order = np.lexsort((-p[:, 1], -p[:, 0]))  # by x descending, then y descending
    mask = np.zeros(len(p), dtype=bool)
    best_y, best_x = -np.inf, np.nan
    for i in order:
        x, y = p[i]
        # dominated iff an earlier point (x' >= x) has y' > y, or y' == y with x' > x
        if y > best_y or (y == best_y and x == best_x):
            mask[i] = True
            if y > best_y:
                best_y, best_x = y, x
    return mask


def hypervolume(points, reference: Sequence[float]) -> float:
    """Area of the region dominated by ``points`` and dominating ``reference`` (both coordinates maximized)."""
    p = _points(points) if len(points) else np.zeros((0, 2))
    rx, ry = (float(v) for v in reference)
    p = p[(p[:, 0] > rx) & (p[:, 1] > ry)]
    if not len(p):
        return 0.0
    front = p[pareto_mask(p)]
    front = front[np.argsort(-front[:, 0])]  # x descending, so y ascends along the front
    area, previous_y = 0.0, ry
    for x, y in front:
        area += (x - rx) * (y - previous_y)
        previous_y = max(previous_y, y)
    return float(area)


@dataclass(frozen=True)
class SelectionRule:
    """How a method's setting is chosen on the selection seed (config ``selection``).

    ``metric``/``direction``: what to optimize. ``utility``/``utility_fraction``/``utility_reference``:
    only rows with utility >= fraction x the reference model's utility compete (when none does, the row
    with the highest utility is chosen, and the selection says so). ``tie_break``/``tie_direction``:
    the second metric.
    """

    metric: str
    direction: str = "min"
    utility: str | None = None
    utility_fraction: float = 0.9
    utility_reference: str | None = None
    tie_break: str | None = None
    tie_direction: str = "min"

    def __post_init__(self) -> None:
        for key in ("direction", "tie_direction"):
            if getattr(self, key) not in DIRECTIONS:
                raise ValueError(f"selection {key} must be one of {DIRECTIONS}; got {getattr(self, key)!r}")
        if (self.utility is None) != (self.utility_reference is None):
            raise ValueError("selection: give both 'utility' and 'utility_reference' (the reference model's "
                             "label, e.g. Finetuned), or neither")
        if not 0 < self.utility_fraction <= 1 or isinstance(self.utility_fraction, bool):
            raise ValueError(f"selection utility_fraction must be in (0, 1]; got {self.utility_fraction!r}")

    @classmethod
    def from_dict(cls, values: Mapping) -> "SelectionRule":
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown selection keys {unknown}; valid: {sorted(cls.__dataclass_fields__)}")
        if "metric" not in values:
            raise ValueError("the selection rule needs 'metric' (the column to optimize)")
        return cls(**values)

    def metrics(self) -> list[str]:
        return [m for m in (self.metric, self.utility, self.tie_break) if m is not None]

    def check_metrics(self, available: Sequence[str], where: str = "selection") -> None:
        """One error naming every metric of the rule that the domain does not compute."""
        missing = [m for m in self.metrics() if m not in available]
        if missing:
            raise ValueError(f"{where} names metrics {missing} that this domain does not compute; "
                             f"valid: {sorted(available)}")


def select(rows: pd.DataFrame, rule: SelectionRule, references: Mapping[str, Mapping[str, float]] | None = None
           ) -> tuple[int, str]:
    """Index (label of ``rows``) of the selected row, and a one-line reason.

    ``rows``: one method's ok rows on the selection seed (one per setting and checkpoint) in the config's
    order; ``references``: metrics of the reference models by label (for the utility floor).
    """
    if rows.empty:
        raise ValueError("nothing to select from: no finished run of this method on the selection seed")
    rule.check_metrics(list(rows.columns))
    candidates = rows
    reason = f"{rule.direction} {rule.metric}"
    if rule.utility is not None:
        if not references or rule.utility_reference not in references:
            raise ValueError(f"the selection's utility floor needs the {rule.utility_reference!r} reference's "
                             f"metrics; got references {sorted(references or {})}")
        floor = rule.utility_fraction * float(references[rule.utility_reference][rule.utility])
        candidates = rows[rows[rule.utility] >= floor]
        reason += f" among rows with {rule.utility} >= {rule.utility_fraction} x {rule.utility_reference} ({floor:.4g})"
        if candidates.empty:
            best = rows[rule.utility].idxmax()
            return best, f"no row keeps {rule.utility} >= {floor:.4g}: the row with the highest {rule.utility}"
    keys = [(rule.metric, rule.direction)] + ([(rule.tie_break, rule.tie_direction)] if rule.tie_break else [])
    ranked = candidates.assign(_order=np.arange(len(candidates))).sort_values(
        [k for k, _ in keys] + ["_order"], ascending=[d == "min" for _, d in keys] + [True], kind="mergesort")
    return ranked.index[0], reason
