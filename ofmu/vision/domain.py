"""The vision stage as a ``Domain`` of the one cell runner, its reference models, and its tables' extras.

    train_reference_checkpoint   Original (full training set) or Retrain (D_r only) -> safetensors
    VisionDomain                 one (dataset, scenario, seed) cell: start model, loaders, evaluation,
                                 references (Original, Retrain)
    with_avg_gap                 Avg. Gap of every row to the Retrain row of its cell and seed

``cfg`` is the part of the stage config a job uses (keys data_root, data_cache, forget_fraction, model,
model_kwargs, device, train, mia_max_samples, retain_eval_samples, train_subset, forget_class; for training
also retrain_settings, Retrain's complete settings from config/methods/Retrain.yaml); each function reads only
its keys.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ofmu.io import code_version, config_hash
from ofmu.tables import Column, fmt_mean_std, summary_table
from ofmu.unlearning.cells import Domain, Evaluation
from ofmu.vision import api as V
from ofmu.vision.metrics import GAP_METRICS, avg_gap
from ofmu.vision.models import checkpoint_metadata, load_checkpoint, save_checkpoint


def _data(cfg: dict, dataset: str):
    return _load(dataset, cfg.get("data_root"), cfg["data_cache"], cfg.get("train_subset"))


@functools.lru_cache(maxsize=4)
def _load(dataset: str, root, cache_dir, subset):
    """One load per process: a job that runs several seeds (the reported runs) reads the files once
    (Fashion-MNIST: ~3 s each time). Nothing downstream writes into the tensors."""
    return V.train_subset(V.load_data(dataset, root=root, cache_dir=cache_dir), subset)


def _split(cfg: dict, data, scenario: str, seed: int):
    if scenario == "random":
        return V.forget_split(data, scenario, seed, fraction=cfg["forget_fraction"])
    # one whole class, the same for every seed (config forget_class): the spread over seeds is not a spread
    # over classes; forget_fraction does not apply
    return V.forget_split(data, scenario, seed, forget_class=(cfg.get("forget_class") or {}).get(data.name))


def train_reference_checkpoint(cfg: dict, dataset: str, seed: int, out_path: str | Path,
                               scenario: str | None = None) -> dict:
    """Train the original model (``scenario=None``) or the Retrain gold standard for ``scenario``."""
    data = _data(cfg, dataset)
    train = cfg["train"]
    kwargs = dict(model_name=cfg["model"], seed=seed, epochs=train["epochs"], lr=train["lr"],
                  batch_size=train["batch_size"], model_kwargs=cfg.get("model_kwargs") or {}, device=cfg["device"],
                  settings=cfg.get("retrain_settings"))
    if scenario is None:
        result = V.train_original(data, **kwargs)
    else:
        result = V.train_retrain(data, _split(cfg, data, scenario, seed), **kwargs)
    meta = {"dataset": dataset, "scenario": scenario or "none", "seed": seed, "n_train": len(data.train_y),
            "wall_seconds": result.wall_seconds, "peak_memory_bytes": result.peak_memory_bytes,
            "config_hash": config_hash(cfg), "code_version": code_version()}
    save_checkpoint(result.model, out_path, meta)
    return meta


class VisionDomain(Domain):
    """One (dataset, scenario, seed): the seed fixes the Original, the forget set and the Retrain model."""

    name = "vision"
    cell_keys = ("dataset", "scenario")
    metric_columns = ("UA", "RA", "TA", "MIA-Efficacy")

    def __init__(self, cfg: dict, dataset: str, scenario: str, seed: int, original, retrain=None):
        self.cfg, self.dataset, self.scenario, self.seed = cfg, dataset, scenario, int(seed)
        self.data = _data(cfg, dataset)
        self.split = _split(cfg, self.data, scenario, self.seed)
        self.original = self._load(original)
        self.retrain_path = retrain

    @classmethod
    def from_files(cls, cfg: dict, cell: dict, seed: int, inputs: dict) -> "VisionDomain":
        return cls(cfg, cell["dataset"], cell["scenario"], seed, inputs["original"], inputs.get("retrain"))

    def _load(self, path) -> torch.nn.Module:
        model = V.new_model(self.data, self.cfg["model"], self.seed, **(self.cfg.get("model_kwargs") or {}))
        return load_checkpoint(model, path, self.cfg["device"])

    def cell(self):
        return {"dataset": self.dataset, "scenario": self.scenario}

    def start_model(self):
        return self.original

    def task(self):
        return V.task_for(self.data)

    def loaders(self, seed, batch_size):
        if int(seed) != self.seed:
            raise ValueError(f"a vision cell is built for seed {self.seed} (its Original and forget set); got {seed}")
        return V.make_loaders(self.data, self.split, batch_size, seed)

    def evaluate(self, model, detail=True, mia_auc=False):
        """UA, RA, TA, MIA-Efficacy (with ``mia_auc``, the reference rows: MIA-AUC too); no per-item tables."""
        names = (*GAP_METRICS, "MIA-AUC") if mia_auc else GAP_METRICS
        return Evaluation(V.evaluate(model, self.data, self.split, seed=self.seed, device=self.cfg["device"],
                                     mia_max_samples=self.cfg["mia_max_samples"],
                                     retain_max_samples=self.cfg["retain_eval_samples"], names=names,
                                     test_max_samples=self.cfg.get("test_eval_samples")))

    def references(self):
        if self.retrain_path is None:
            raise ValueError("the reference rows need the Retrain checkpoint (inputs['retrain'])")
        meta = checkpoint_metadata(self.retrain_path)
        return [{"label": "Original", "model": self.original, "seed": self.seed, "evaluate": {"mia_auc": True}},
                {"label": "Retrain", "model": self._load(self.retrain_path), "seed": self.seed,
                 "evaluate": {"mia_auc": True},
                 "extra": {"wall_seconds": float(meta["wall_seconds"]),
                           "peak_memory_mib": int(meta["peak_memory_bytes"]) / 2**20}}]


DOMAIN = VisionDomain


def with_avg_gap(frame: pd.DataFrame, metrics=GAP_METRICS) -> pd.DataFrame:
    """``Avg.Gap`` of every ok row: mean |metric - Retrain's| over ``metrics`` (UA, RA, TA, MIA-Efficacy;
    the pipeline drops a metric without signal), against the Retrain row of the same (dataset, scenario,
    seed); NaN where that row is missing."""
    keys = ["dataset", "scenario", "seed"]
    retrain = frame[(frame["label"] == "Retrain") & (frame["setting"] == "reference")].set_index(keys)
    gaps = []
    for _, row in frame.iterrows():
        key = tuple(row[k] for k in keys)
        if row["status"] != "ok" or key not in retrain.index:
            gaps.append(np.nan)
            continue
        ref = retrain.loc[key]
        gaps.append(avg_gap({k: row[k] for k in metrics}, {k: ref[k] for k in metrics}, metrics))
    return frame.assign(**{"Avg.Gap": gaps})


VISION_COLUMNS = [
    *[Column(m, m, fmt_mean_std(2, 100)) for m in GAP_METRICS],
    Column("Avg.Gap", "Avg. Gap", fmt_mean_std(2, 100)),
]
# Measured cost varies from run to run and machine to machine; it has its own table so that two runs of one
# config give byte-identical metric tables (`make compare`).
VISION_COST_COLUMNS = [
    Column("wall_seconds", "RTE (s)", fmt_mean_std(1)),
    Column("peak_memory_mib", "peak mem. (MiB)", fmt_mean_std(0)),
]


def vision_table(frame: pd.DataFrame, order: list[str], gap_metrics=GAP_METRICS) -> pd.DataFrame:
    """Percentages as mean ± std over seeds; one row per (dataset, label) in ``order``; Avg. Gap to Retrain
    over ``gap_metrics`` (a metric left out is titled "(no signal)")."""
    columns = [Column(c.source, c.title + (" (no signal)" if c.source in GAP_METRICS and c.source not in gap_metrics
                                           else ""), c.fmt) for c in VISION_COLUMNS]
    return summary_table(with_avg_gap(frame, gap_metrics), ["dataset", "label"], columns, order)


def vision_cost_table(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """RTE and peak memory as mean ± std over seeds; the rows of ``vision_table``."""
    return summary_table(frame, ["dataset", "label"], VISION_COST_COLUMNS, order)
