"""The one cell runner of both stages: (domain, method, setting, seed) -> one tidy row, and its writer.

A ``Domain`` holds what differs between the stages (vision: ``ofmu.vision.domain``; LLM:
``ofmu.llm.domain``): the model every method starts from, the task and loaders, the evaluation, the
reference models and the names of its cell and metric columns. Everything else exists once, here: copying
the start model, warming up, timing, catching divergence, the diagnostics of every step, and the columns
every row carries in both domains:

    domain, <cell keys>, seed, method, setting, label, checkpoint, status, wall_seconds, peak_memory_mib,
    forget_passes, steps, grad_evals, hparams, code_version, (config_hash: in the written file), <metric columns>

``checkpoint`` is the fraction of the budget (passes over D_f) the row's model had used: a run is
evaluated at several checkpoints (e.g. 0.25, 0.5, 1.0), one row each, so that one run gives a piece of a
trade-off curve; its wall_seconds, steps, forget_passes and grad_evals (gradient evaluations counted by a hook,
``loop.counting_gradients``) are those up to the checkpoint. Reference rows
have none.

``status`` is "ok" or "diverged" (a diverged run keeps its row, with no metrics, so tables count it
instead of averaging NaNs). ``label`` is what tables and figures show: the method's name for its default
setting, the variant's name for an ablation variant.

Cost of a run, in a process of its own (the pipeline runs one job per method, setting and seed): a warm-up
on a throwaway copy of the model before anything is timed (``warm_up``: lazy initialization would
otherwise be charged to the run), then ``run_unlearning`` measures wall
seconds and the peak resident memory above the level at the start of the run (see ``loop.py``). Loading
data and models and evaluating are outside both numbers.
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ofmu.core.ofmu import NonFiniteError
from ofmu.io import code_version, config_hash, write_csv_atomic, write_json_atomic
from ofmu.seeds import derive_seed
from ofmu.unlearning.loop import Task, UnlearnResult, run_unlearning
from ofmu.unlearning.settings import method_class

CORE_COLUMNS = ("domain", "seed", "method", "setting", "label", "checkpoint", "status", "wall_seconds",
                "peak_memory_mib", "forget_passes", "steps", "grad_evals", "hparams", "code_version")
DEFAULT_SETTING = "default"


@dataclass
class Evaluation:
    """Metrics of one model (one row) and per-item tables (e.g. per-sample values, probes)."""

    metrics: dict[str, float]
    tables: dict[str, list[dict]] = field(default_factory=dict)


class Domain:
    """What a stage supplies to the cell runner. One instance serves one cell and one seed (vision: its Original; LLM: its replicate)."""

    name: str = "?"
    cell_keys: tuple[str, ...] = ()
    metric_columns: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()  # names of the per-item tables ``evaluate`` returns

    def cell(self) -> dict[str, Any]:
        """The values of ``cell_keys`` for this cell."""
        raise NotImplementedError

    def start_model(self) -> nn.Module:
        """The model every method starts from (Original / Finetuned); the runner copies it."""
        raise NotImplementedError

    def task(self) -> Task:
        raise NotImplementedError

    def loaders(self, seed: int, batch_size: int) -> tuple[Any, Any]:
        """(forget loader, retain loader) for run seed ``seed``."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> Evaluation:
        raise NotImplementedError

    def references(self) -> list[dict[str, Any]]:
        """The reference rows of the cell: dicts with label, model, seed, and optionally ``extra`` columns
        and ``evaluate`` (keyword arguments of ``evaluate`` for that model)."""
        raise NotImplementedError


def use_threads(n: int) -> None:
    """torch threads of this job: the pipeline gives each job its ``threads:`` (two 1-thread jobs on two
    cores; more threads than cores was measured to slow everything down by spin-waiting)."""
    torch.set_num_threads(max(1, int(n)))


def domain_class(name: str) -> type[Domain]:
    """``ofmu.<name>.domain.DOMAIN`` (imported on demand: the LLM domain needs transformers)."""
    if name not in ("vision", "llm"):
        raise ValueError(f"unknown domain {name!r}; valid domains: vision, llm")
    return importlib.import_module(f"ofmu.{name}.domain").DOMAIN


@dataclass
class Run:
    """One unit of work: a method with complete settings, named by its setting id, on one seed."""

    method: str
    settings: dict[str, Any]
    seed: int
    setting: str = DEFAULT_SETTING
    label: str | None = None

    def __post_init__(self) -> None:
        self.label = self.label or (self.method if self.setting == DEFAULT_SETTING else self.setting)


@dataclass
class CellResult:
    rows: pd.DataFrame
    tables: dict[str, pd.DataFrame]


def _row(domain: Domain, **values: Any) -> dict[str, Any]:
    return {"domain": domain.name, **domain.cell(), **values, "code_version": code_version()}


def _key_columns(domain: Domain, checkpoint: bool = True) -> list[str]:
    """The columns that name a row: every per-item table carries them too (diagnostics, which cover the
    whole run, all but the checkpoint)."""
    return ["domain", *domain.cell_keys, "seed", "method", "setting", "label", *(["checkpoint"] if checkpoint else [])]


def _evaluated(domain: Domain, model: nn.Module, row: dict, tables: dict[str, list[dict]],
               options: dict | None = None) -> dict:
    ev = domain.evaluate(model, **(options or {}))
    keys = {k: row.get(k) for k in _key_columns(domain)}
    for name in domain.tables:
        tables.setdefault(name, []).extend({**keys, **item} for item in ev.tables.get(name, []))
    return {**row, "status": "ok", **ev.metrics}


def warm_up(task: Task, model: nn.Module, loader, device) -> None:
    """Pay one-off costs of the process before the timer starts: the first forward/backward (allocator
    pools, kernels) and the first torch.optim optimizer, whose constructor imports torch._dynamo (measured:
    1.4 s and ~150 MiB, which would otherwise be charged to every SGD-based method and not to OFMU)."""
    throwaway = copy.deepcopy(model).to(device).train()
    task.loss(throwaway, task.to_device(next(iter(loader)), device)).backward()
    torch.optim.SGD(throwaway.parameters(), lr=0.0).step()


def run_method(domain: Domain, run: Run, epochs: float, batch_size: int, device: str = "cpu",
               checkpoints: tuple[float, ...] = (1.0,), detail_at: float | None = None,
               warm: bool = True) -> CellResult:
    """Unlearn with ``run`` from a copy of the domain's start model; one evaluated row per checkpoint
    (fraction of the budget). Per-item tables (``domain.tables``) only at ``detail_at`` (default: the
    last checkpoint); a checkpoint the run did not reach with finite weights is a "diverged" row."""
    method = method_class(run.method)(**run.settings)  # complete settings: what the job was given, exactly
    start = domain.start_model()
    if warm:  # from loaders of its own: a loader reshuffles on every pass, the run's batches must be the seed's
        warm_up(domain.task(), start, domain.loaders(run.seed, batch_size)[1], device)
    forget, retain = domain.loaders(run.seed, batch_size)
    model = copy.deepcopy(start)
    row = _row(domain, seed=run.seed, method=run.method, setting=run.setting, label=run.label,
               hparams=json.dumps(run.settings, sort_keys=True, default=str))
    tables: dict[str, list[dict]] = {name: [] for name in ("diagnostics", *domain.tables)}
    # the checkpoints' weights go into buffers allocated (and touched) before the run's memory is measured:
    # the run's peak memory is the method's alone, whatever the number of checkpoints
    buffers = {f: {k: v.detach().clone() for k, v in model.state_dict().items()} for f in set(checkpoints)}
    snapshots: dict[float, tuple[dict, dict]] = {}

    def keep(fraction: float, info: dict) -> None:  # copies only: evaluating here would count in the run's memory
        for k, v in model.state_dict().items():
            buffers[fraction][k].copy_(v.detach())
        snapshots[fraction] = (info, buffers[fraction])

    try:
        result: UnlearnResult | None = run_unlearning(
            model, method, forget, retain, domain.task(), epochs=epochs, seed=derive_seed(run.seed, "method"),
            device=device, checkpoints=checkpoints, on_checkpoint=keep)
    except NonFiniteError as err:
        print(f"{run.label} {run.setting} diverged: {err}")
        result = None
    if result is not None:
        row["peak_memory_mib"] = result.peak_memory_bytes / 2**20
        keys = {k: row[k] for k in _key_columns(domain, checkpoint=False)}
        tables["diagnostics"] = [{**keys, **h} for h in result.history]
    detail_at = max(checkpoints) if detail_at is None else detail_at
    rows = []
    for fraction in sorted(set(checkpoints)):
        at = {**row, "checkpoint": fraction}
        info, state = snapshots.get(fraction, (None, None))
        if state is None or not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
            rows.append({**at, "status": "diverged"})
            continue
        at.update(wall_seconds=info["wall_seconds"], forget_passes=info["forget_passes"], steps=info["steps"],
                  grad_evals=info["grad_evals"])
        model.load_state_dict(state)
        model.eval()
        # per-item tables only where asked: domain.evaluate may skip them (the LLM's probes cost as much again)
        try:
            rows.append(_evaluated(domain, model, at, tables, None if fraction == detail_at else {"detail": False}))
        except NonFiniteError as err:  # finite weights, non-finite outputs: diverged all the same
            print(f"{run.label} {run.setting} at {fraction}: evaluation not finite: {err}")
            rows.append({**at, "status": "diverged"})
    return _result(domain, rows, tables)


def check_sweep_budget(domain: Domain, method: str, points: dict[str, dict], seed: int, epochs: float,
                       batch_size: int, min_steps: int = 0, min_outer_iterations: int = 0) -> None:
    """Raise ValueError before any training when a grid point would get fewer than ``min_steps`` forget batches
    or, for a multi-batch step (OFMU: T + 1 batches per outer iteration), fewer than ``min_outer_iterations``
    steps in the budget: counted from this cell's forget loader (the class-wise D_f's size is known only here)."""
    batches = int(round(epochs * len(domain.loaders(seed, batch_size)[0])))
    where = f"{domain.name} {'/'.join(str(v) for v in domain.cell().values())}"
    if batches < min_steps:
        raise ValueError(f"{where}: {batches} forget batches in the budget ({epochs} passes at batch {batch_size}) "
                         f"< signal.min_steps {min_steps}; raise {domain.name}.unlearn.epochs or lower its batch_size")
    for setting, settings in points.items():
        cost = method_class(method)(**settings).budget_cost()
        if cost > 1 and batches // cost < min_outer_iterations:
            raise ValueError(f"{where}: {method} {setting} takes {batches // cost} outer iterations ({cost} forget "
                             f"batches each, {batches} in the budget) < signal.min_outer_iterations "
                             f"{min_outer_iterations}; raise {domain.name}.unlearn.epochs or drop the larger "
                             f"inner_steps from config/methods/{method}.yaml's sweep")


def run_sweep(domain: Domain, label: str, method: str, points: dict[str, dict], seed: int, epochs: float,
              batch_size: int, device: str = "cpu", checkpoints: tuple[float, ...] = (1.0,)) -> CellResult:
    """Every setting of a method's grid (``points``: setting id -> complete settings) on one seed, each
    evaluated at ``checkpoints``; one process, so loading data and models and warming up happen once."""
    parts = [run_method(domain, Run(method, dict(settings), seed, setting, label), epochs, batch_size, device,
                        checkpoints, detail_at=-1.0, warm=i == 0)
             for i, (setting, settings) in enumerate(points.items())]
    tables = {name: pd.concat([p.tables[name] for p in parts], ignore_index=True) for name in parts[0].tables}
    return CellResult(pd.concat([p.rows for p in parts], ignore_index=True), tables)


def run_references(domain: Domain) -> CellResult:
    """The reference rows of a cell and seed (Original and Retrain; Finetuned and Retain), evaluated alike."""
    rows, tables = [], {name: [] for name in domain.tables}
    for ref in domain.references():
        row = _row(domain, seed=ref["seed"], method=ref["label"], setting="reference", label=ref["label"],
                   hparams="", **ref.get("extra", {}))
        rows.append(_evaluated(domain, ref["model"].eval(), row, tables, ref.get("evaluate")))
    return _result(domain, rows, tables)


def _result(domain: Domain, rows: list[dict], tables: dict[str, list[dict]]) -> CellResult:
    columns = ["domain", *domain.cell_keys, *CORE_COLUMNS[1:], *domain.metric_columns]
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=[*columns, *[c for c in frame.columns if c not in columns]])
    # an empty table keeps its key columns, so readers concatenate it like any other
    return CellResult(frame, {name: pd.DataFrame(items) if items else pd.DataFrame(columns=_key_columns(domain))
                              for name, items in tables.items()})


def write_result(result: CellResult, rows_csv, tables: dict[str, str | Path], sidecar: dict) -> None:
    """Rows, each named table and a JSON sidecar (the job's seed, settings and config, code version), each
    written atomically; every row carries ``config_hash``, the hash of ``sidecar`` (the job's inputs)."""
    for name, path in tables.items():
        write_csv_atomic(path, result.tables.get(name, pd.DataFrame()))
    write_json_atomic(Path(rows_csv).with_suffix(".json"), {**sidecar, "code_version": code_version()})
    rows = result.rows.copy()
    rows.insert(rows.columns.get_loc("code_version") + 1, "config_hash", config_hash(sidecar))
    write_csv_atomic(rows_csv, rows)  # last: the rows file marks a complete result


def cost_ratios(frame: pd.DataFrame, cell_keys: list[str], method: str = "OFMU", baseline: str = "GradDiff") -> pd.DataFrame:
    """Wall time per pass over D_f and peak memory of ``method`` over ``baseline`` (labels: each at its
    selected setting), per cell and seed (same model and data), at the end of the budget (the last
    checkpoint): both used the same passes, up to OFMU's last incomplete step of T+1 batches."""
    cols = [*cell_keys, "seed"]
    ok = frame[frame["status"] == "ok"]
    if "checkpoint" in ok:
        ok = ok[ok["checkpoint"] == ok["checkpoint"].max()]
    a = ok[ok["label"] == method].set_index(cols)
    b = ok[ok["label"] == baseline].set_index(cols)
    per_pass = lambda f: f["wall_seconds"] / f["forget_passes"]  # noqa: E731
    out = pd.DataFrame({"time_ratio": per_pass(a) / per_pass(b),
                        "memory_ratio": a["peak_memory_mib"] / b["peak_memory_mib"],
                        "forget_passes": a["forget_passes"], "baseline_forget_passes": b["forget_passes"]})
    return out.reset_index()
