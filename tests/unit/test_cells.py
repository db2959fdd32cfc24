"""The one cell runner on the vision domain (sklearn digits): the same core columns for every row, a
diverged method reported as such, reference rows, Avg. Gap against a hand computation, the summary table's
mean ± std, and per-cell cost ratios."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ofmu.io import config_hash
from ofmu.unlearning.cells import (CORE_COLUMNS, Run, check_sweep_budget, cost_ratios, run_method, run_references,
                                   write_result)
from ofmu.unlearning.settings import method_settings
from ofmu.vision.domain import VisionDomain, train_reference_checkpoint, vision_cost_table, vision_table, with_avg_gap

CFG = {"data_root": None, "data_cache": "unused", "forget_fraction": 0.1, "model": "small_cnn",
       "model_kwargs": {"width": 4}, "device": "cpu", "train": {"epochs": 1, "lr": 0.05, "batch_size": 64},
       "mia_max_samples": 50, "retain_eval_samples": 200}
BUDGET = {"epochs": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("vision")
    train_reference_checkpoint(CFG, "digits", 0, tmp / "orig.safetensors")
    train_reference_checkpoint(CFG, "digits", 0, tmp / "retrain.safetensors", scenario="random")
    domain = VisionDomain(CFG, "digits", "random", 0, tmp / "orig.safetensors", tmp / "retrain.safetensors")
    refs = run_references(domain)
    runs = {name: run_method(domain, Run(name, method_settings(name, "vision", hp), 0), **BUDGET)
            for name, hp in [("GradDiff", {}), ("GA", {"lr": 1e6}), ("OFMU", {})]}
    torch.set_num_threads(threads)
    return domain, refs, runs, tmp


def test_rows_share_the_core_columns_and_a_diverged_method_keeps_its_row(cell):
    domain, refs, runs, _ = cell
    frame = pd.concat([refs.rows, *[r.rows for r in runs.values()]], ignore_index=True)
    assert list(frame.columns[:len(CORE_COLUMNS) + 2]) == ["domain", "dataset", "scenario", *CORE_COLUMNS[1:]]
    assert list(frame["label"]) == ["Original", "Retrain", "GradDiff", "GA", "OFMU"]
    assert dict(zip(frame["label"], frame["status"])) == {"Original": "ok", "Retrain": "ok", "GradDiff": "ok",
                                                           "GA": "diverged", "OFMU": "ok"}
    assert np.isnan(frame.loc[frame["label"] == "GA", "UA"]).all()
    ofmu = runs["OFMU"]
    assert {"cos", "grad_phi_norm", "rho"} <= set(ofmu.tables["diagnostics"].columns)
    assert len(ofmu.tables["diagnostics"]) == ofmu.rows["steps"].item()  # one diagnostics row per step
    assert json.loads(ofmu.rows["hparams"].item()) == method_settings("OFMU", "vision")


def test_a_run_is_the_api_call_with_the_same_seed(cell):
    """The runner's warm-up must not shift the run's batches: its row equals unlearn + evaluate called directly."""
    from ofmu.vision import api as V

    domain, _, runs, _ = cell
    model = V.copy_model(domain.original)
    V.unlearn(model, domain.data, domain.split, "GradDiff", epochs=1, batch_size=32, seed=0)
    direct = V.evaluate(model, domain.data, domain.split, seed=0, mia_max_samples=50, retain_max_samples=200)
    row = runs["GradDiff"].rows.iloc[0]
    assert {k: row[k] for k in direct} == direct


def test_avg_gap_and_table_against_hand_computation(cell):
    _, refs, runs, _ = cell
    frame = with_avg_gap(pd.concat([refs.rows, runs["GradDiff"].rows, runs["GA"].rows], ignore_index=True))
    ref, row = frame.iloc[1], frame.iloc[2]
    hand = np.mean([abs(row[k] - ref[k]) for k in ["UA", "RA", "TA", "MIA-Efficacy"]])
    assert row["Avg.Gap"] == pytest.approx(hand) and ref["Avg.Gap"] == 0.0
    table = vision_table(frame, ["Retrain", "Original", "GradDiff", "GA"])
    assert list(table["label"]) == ["Retrain", "Original", "GradDiff", "GA"]
    assert table.loc[table["label"] == "GA", "UA"].item() == "diverged (1/1)"
    assert table.loc[table["label"] == "GA", "seeds"].item() == "0 (+1 diverged)"


def test_the_sweep_budget_is_counted_on_the_cells_own_forget_set(cell):
    """Forget batches = passes x ceil(|D_f| / batch), counted by hand from the split; OFMU's outer iterations =
    batches // (T + 1): the check must pass at the exact count and fail one above it."""
    import math

    domain = cell[0]
    batches = 2 * math.ceil(len(domain.split.forget) / 16)
    ofmu = {f"T{t}": method_settings("OFMU", "vision", {"inner_steps": t}) for t in (1, 2)}
    budget = {"seed": 0, "epochs": 2, "batch_size": 16}
    check_sweep_budget(domain, "GA", {"a": method_settings("GA", "vision")}, **budget, min_steps=batches)
    with pytest.raises(ValueError, match=f"{batches} forget batches in the budget.*< signal.min_steps {batches + 1}"):
        check_sweep_budget(domain, "GA", {"a": method_settings("GA", "vision")}, **budget, min_steps=batches + 1)
    check_sweep_budget(domain, "OFMU", ofmu, **budget, min_outer_iterations=batches // 3)
    with pytest.raises(ValueError, match=f"OFMU T2 takes {batches // 3} outer iterations"):
        check_sweep_budget(domain, "OFMU", ofmu, **budget, min_outer_iterations=batches // 3 + 1)


def test_write_result_leaves_rows_tables_and_sidecar(cell, tmp_path):
    _, _, runs, _ = cell
    write_result(runs["OFMU"], tmp_path / "s0.csv", {"diagnostics": tmp_path / "s0.diagnostics.csv"}, {"seed": 0})
    written = pd.read_csv(tmp_path / "s0.csv")
    assert written["label"].item() == "OFMU" and written["seed"].item() == 0
    assert written["config_hash"].item() == config_hash({"seed": 0})  # the job's sidecar, as written beside it
    assert len(pd.read_csv(tmp_path / "s0.diagnostics.csv")) == runs["OFMU"].rows["steps"].item()
    assert json.loads((tmp_path / "s0.json").read_text())["seed"] == 0
    write_result(runs["GA"], tmp_path / "ga.csv", {"diagnostics": tmp_path / "ga.diagnostics.csv"}, {"seed": 0})
    assert list(pd.read_csv(tmp_path / "ga.diagnostics.csv").columns)[:2] == ["domain", "dataset"]  # empty, readable


def test_table_is_mean_and_sample_std_in_percent():
    frame = pd.DataFrame({
        "dataset": ["d"] * 3, "scenario": ["random"] * 3, "method": ["GA"] * 3, "label": ["GA"] * 3,
        "setting": ["default"] * 3,
        "seed": [0, 1, 2], "status": ["ok", "ok", "diverged"], "UA": [0.10, 0.20, np.nan], "RA": [0.9, 0.9, np.nan],
        "TA": [0.8, 0.8, np.nan], "MIA-Efficacy": [0.5, 0.5, np.nan], "wall_seconds": [1.0, 3.0, np.nan],
        "peak_memory_mib": [10.0, 20.0, np.nan]})
    row = vision_table(frame, ["GA"]).iloc[0]
    assert row["UA"] == "15.00 ± 7.07"  # mean 15, sample std sqrt(50) = 7.07; the diverged seed is not averaged
    assert row["seeds"] == "2 (+1 diverged)" and "RTE (s)" not in row  # timing varies by run: its own table
    cost = vision_cost_table(frame, ["GA"]).iloc[0]
    assert cost["RTE (s)"] == "2.0 ± 1.4" and cost["peak mem. (MiB)"] == "15 ± 7" and cost["seeds"] == "2 (+1 diverged)"


def test_cost_ratio_is_per_cell():
    frame = pd.DataFrame({"dataset": ["d"] * 2, "scenario": ["random"] * 2, "seed": [0, 0], "status": ["ok"] * 2,
                          "label": ["OFMU", "GradDiff"], "checkpoint": [1.0] * 2, "wall_seconds": [6.0, 2.0],
                          "peak_memory_mib": [30.0, 10.0], "forget_passes": [1.5, 2.0]})
    ratio = cost_ratios(frame, ["dataset", "scenario"]).iloc[0]
    assert ratio["time_ratio"] == pytest.approx((6.0 / 1.5) / (2.0 / 2.0)) and ratio["memory_ratio"] == 3.0
