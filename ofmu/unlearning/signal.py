"""Can the setup tell "forgotten" from "not forgotten"? The checks the pipeline runs on the reference rows
before any table is written (shared/experiment-protocol.md section 2), with the setting to change when not.

* vision, random forgetting: the Original memorizes D_f: UA(Retrain) - UA(Original) >= ``min_ua_gap``
  on every seed of the cell (the selection seed and each reported one: a seed without the gap is a pair of
  the verdict in which "forgotten" and "not forgotten" look alike), else the Original never learned D_f
  better than unseen data and doing nothing already "forgets";
* vision, MIA: the attack's feature separates D_r from test data on the Original (MIA-AUC >=
  ``min_mia_auc``), else MIA-Efficacy is reported as "no signal" and left out of Avg. Gap. This decision
  is taken on the selection seed alone (``gap_metrics``), because the selection uses Avg. Gap;
* LLM: FQ(Finetuned) < ``max_fq_finetuned`` and FQ(Retain) > ``min_fq_retain`` on every split and replicate (else the
  KS test cannot tell the two apart on that split). The step counts are checked by the dry run
  (``ofmu.plan``), from the config alone.

Each check returns the numbers it looked at (written to ``results/<stage>/signal.json`` and the README)
and raises ``SignalError`` naming the setting to change.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ofmu.vision.metrics import GAP_METRICS

VISION_THRESHOLDS = {"min_ua_gap": 0.05, "min_mia_auc": 0.6}
LLM_THRESHOLDS = {"max_fq_finetuned": 0.01, "min_fq_retain": 0.01}


class SignalError(RuntimeError):
    """The setup cannot separate forgotten from not forgotten; the message names the setting to change."""


def _ref(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    return frame[(frame["label"] == label) & (frame["setting"] == "reference")]


def gap_metrics(original: Mapping[str, float], thresholds: Mapping[str, float] = VISION_THRESHOLDS) -> list[str]:
    """The metrics of Avg. Gap for a cell, from its Original's row on the selection seed: MIA-Efficacy only
    when the attack separates members from non-members there."""
    keep_mia = float(original["MIA-AUC"]) >= thresholds["min_mia_auc"]
    return [m for m in GAP_METRICS if m != "MIA-Efficacy" or keep_mia]


def vision_signal(references: pd.DataFrame, selection_seed: int,
                  thresholds: Mapping[str, float] = VISION_THRESHOLDS) -> dict[str, Any]:
    """Per (dataset, scenario): UA gap and MIA-AUC per seed; raises SignalError when a random-forgetting cell
    has no memorization signal."""
    cells, errors = [], []
    for (dataset, scenario), rows in references.groupby(["dataset", "scenario"], sort=True):
        orig = _ref(rows, "Original").set_index("seed")
        retrain = _ref(rows, "Retrain").set_index("seed")
        gap = (retrain["UA"] - orig["UA"]).sort_index()
        if selection_seed not in orig.index:
            raise SignalError(f"vision {dataset} {scenario}: no Original row for the selection seed {selection_seed}")
        cell = {"dataset": dataset, "scenario": scenario, "ua_gap": {int(s): float(v) for s, v in gap.items()},
                "ua_gap_mean": float(gap.mean()), "ua_gap_min": float(gap.min()),
                "mia_auc_original": {int(s): float(v) for s, v in orig["MIA-AUC"].sort_index().items()},
                "gap_metrics": gap_metrics(orig.loc[selection_seed], thresholds)}
        cells.append(cell)
        short = gap[~(gap >= thresholds["min_ua_gap"])]
        if scenario == "random" and len(short):
            errors.append(f"vision {dataset} random forgetting: UA(Retrain) - UA(Original) < "
                          f"{100 * thresholds['min_ua_gap']:.0f} points on seed(s) "
                          f"{', '.join(f'{int(s)} ({100 * v:.2f})' for s, v in short.items())}: "
                          f"the Original does not memorize D_f, so no method can be ranked. Train it longer "
                          f"(vision.train.epochs) until RA nears 100%, or on fewer images (vision.train_subset) "
                          f"with as many steps")
    if errors:
        raise SignalError("no signal:\n  - " + "\n  - ".join(errors))
    return {"thresholds": dict(thresholds), "cells": cells}


def llm_signal(references: pd.DataFrame, thresholds: Mapping[str, float] = LLM_THRESHOLDS) -> dict[str, Any]:
    """Per split and replicate (seed): FQ of Finetuned and Retain; raises SignalError when a split cannot separate
    them on some replicate (each replicate is its own corpus and models, so each must have the signal)."""
    splits, errors = [], []
    for split, rows in references.groupby("split", sort=True):
        fq_f = _ref(rows, "Finetuned").set_index("seed")["forget_quality"].sort_index()
        fq_r = _ref(rows, "Retain").set_index("seed")["forget_quality"].sort_index()
        splits.append({"split": split, "fq_finetuned": {int(k): float(v) for k, v in fq_f.items()},
                       "fq_retain": {int(k): float(v) for k, v in fq_r.items()},
                       "fq_finetuned_max": float(fq_f.max()), "fq_retain_min": float(fq_r.min())})
        # a replicate missing either row fails too (its NaN passes neither comparison)
        bad = [int(seed) for seed in fq_f.index.union(fq_r.index)
               if not (fq_f.get(seed, np.nan) < thresholds["max_fq_finetuned"]
                       and fq_r.get(seed, np.nan) > thresholds["min_fq_retain"])]
        if bad:
            errors.append(f"llm {split}: FQ(Finetuned) < {thresholds['max_fq_finetuned']} < FQ(Retain) fails on seed(s) "
                          + ", ".join(f"{seed} (FQ(Finetuned) = {fq_f.get(seed, np.nan):.3g}, FQ(Retain) = {fq_r.get(seed, np.nan):.3g})"
                                      for seed in bad)
                          + ": the KS test cannot tell them apart. Drop the split from llm.splits or enlarge it "
                            "(llm.corpus.n_authors)")
    if errors:
        raise SignalError("no signal:\n  - " + "\n  - ".join(errors))
    return {"thresholds": dict(thresholds), "splits": splits}

