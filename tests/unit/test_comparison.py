"""The comparison's parts: checkpoints along a run, sweep grids, the selection on the selection seed, the
signal checks, fronts and their tables, each against an independent computation."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ofmu.plan import ConfigError, check_config
from ofmu.unlearning.comparison import (AXES, at_selected, collapsed, dominated_share, fronts_table, reference_point,
                                        references_of, select_setting)
from ofmu.unlearning.loop import ClassificationTask, checkpoint_steps, run_unlearning
from ofmu.unlearning.methods import make_method
from ofmu.unlearning.settings import SettingsError, sensitivity_points, sweep_points
from ofmu.unlearning.signal import SignalError, gap_metrics, llm_signal, vision_signal
from ofmu.vision.data import TensorLoader

REPO = Path(__file__).resolve().parents[2]


def test_checkpoint_steps_by_hand():
    # OFMU (T = 3: 4 forget batches a step) on 13 batches x 4 epochs = 52 units: 13 steps; at 25% a run of
    # 13 units takes 3 steps (0.92 passes, never more than the fraction), at 50% 6; GradDiff 13, 26, 52
    ofmu = lambda f: max(1, round(f * 52) // 4)  # noqa: E731  (Method.num_steps)
    assert checkpoint_steps([0.25, 0.5, 1.0], ofmu) == {3: [0.25], 6: [0.5], 13: [1.0]}
    assert checkpoint_steps([1.0, 0.5, 0.25], lambda f: max(1, round(f * 52))) == {13: [0.25], 26: [0.5], 52: [1.0]}
    assert checkpoint_steps([0.01, 0.02, 1.0], ofmu) == {1: [0.01, 0.02], 13: [1.0]}  # both round to one step
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        checkpoint_steps([0.0, 1.0], ofmu)


def _tiny_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(96, 5, generator=g), torch.randint(0, 3, (96,), generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    forget, retain = TensorLoader(x[:32], y[:32], 8, seed=1), TensorLoader(x[32:], y[32:], 8, seed=2)
    return model, forget, retain, ClassificationTask(3)


@pytest.mark.parametrize("method", ["GradDiff", "OFMU"])
def test_a_checkpoint_is_the_model_of_the_shorter_run(method):
    """The weights kept at 50% of a 4-epoch budget are those of a separate 2-epoch run (same seed, batches)."""
    model, forget, retain, task = _tiny_problem()
    full, kept = copy.deepcopy(model), {}
    result = run_unlearning(full, make_method(method, "vision"), forget, retain, task, epochs=4, seed=0,
                            checkpoints=[0.5, 1.0], on_checkpoint=lambda f, info: kept.__setitem__(
                                f, (info, {k: v.clone() for k, v in full.state_dict().items()})))
    half = copy.deepcopy(model)
    short = run_unlearning(half, make_method(method, "vision"), *_tiny_problem()[1:3], task, epochs=2, seed=0)
    info, state = kept[0.5]
    assert info["steps"] == short.steps and info["forget_passes"] == pytest.approx(short.forget_passes)
    for k, v in half.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(kept[1.0][1][k], v, rtol=0, atol=0)
    assert kept[1.0][0]["steps"] == result.steps and kept[0.5][0]["wall_seconds"] <= result.wall_seconds


def _with_grid(methods, name: str, grid: dict) -> None:
    """Replace method ``name``'s sweep in the copied ``methods`` directory by ``grid`` ({domain: {key: values}})."""
    import yaml

    path = methods / f"{name}.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["sweep"] = grid
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_sweep_points_are_the_grid_product_in_file_order(tmp_path):
    methods = tmp_path / "methods"
    shutil.copytree(REPO / "config" / "methods", methods)
    _with_grid(methods, "GradDiff", {"vision": {"lr": [1e-4, 3e-4, 1e-3, 3e-3], "forget_weight": [0.3, 1.0]}})
    _with_grid(methods, "OFMU", {"llm": {"inner_lr+outer_lr": [3e-3, 1e-2, 3e-2, 1e-1], "beta": [0.1, 0.5]}})
    _with_grid(methods, "GA", {"vision": {"lr": [3e-5, 1e-4, 3e-4, 1e-3]}})
    points = sweep_points("GradDiff", "vision", directory=methods)
    assert list(points) == [f"lr={lr:g},forget_weight={w:g}" for lr in (1e-4, 3e-4, 1e-3, 3e-3) for w in (0.3, 1.0)]
    assert points["lr=0.001,forget_weight=0.3"]["lr"] == 0.001 and points["lr=0.001,forget_weight=0.3"]["forget_weight"] == 0.3
    tied = sweep_points("OFMU", "llm", directory=methods)
    assert all(v["inner_lr"] == v["outer_lr"] for v in tied.values()) and len(tied) == 8
    # a variant's fixed setting leaves its key out of the grid; a limit keeps each grid's end points
    assert list(sweep_points("OFMU", "llm", {"beta": 0.0}, methods)) == [
        f"inner_lr+outer_lr={lr:g}" for lr in (3e-3, 1e-2, 3e-2, 1e-1)]
    assert list(sweep_points("GA", "vision", directory=methods, limit=2)) == ["lr=3e-05", "lr=0.001"]
    # sensitivity: one setting at a time, the base's own value skipped
    base = tied["inner_lr+outer_lr=0.01,beta=0.5"]
    sens = sensitivity_points(base, {"beta": [0.0, 0.5], "inner_steps": [1]})
    assert list(sens) == ["selected", "beta=0", "inner_steps=1"] and sens["inner_steps=1"]["beta"] == 0.5


@pytest.mark.parametrize("points, seed", [(4, 0), (7, 3), (10, 0), (23, 1)])
def test_a_sample_tries_every_value_equally_often(tmp_path, points, seed):
    """The stage's sample of a 4 x 3 x 2 grid (24 points), checked by counting: ``points`` distinct grid points,
    each value of each key ``points // n`` or one more times, in the grid's product order, the same for the same
    seed; a budget below the longest key's 4 values is the dry run's error."""
    import itertools

    methods = tmp_path / "methods"
    shutil.copytree(REPO / "config" / "methods", methods)
    grid = {"inner_lr": [1e-3, 3e-3, 1e-2, 3e-2], "beta": [0.01, 0.1, 1.0], "inner_steps": [1, 3]}
    _with_grid(methods, "OFMU", {"vision": grid})
    sample = sweep_points("OFMU", "vision", directory=methods, sample={"points": points, "seed": seed})
    chosen = [tuple(v[k] for k in grid) for v in sample.values()]
    product = list(itertools.product(*grid.values()))
    assert len(set(chosen)) == points and set(chosen) <= set(product)
    assert [product.index(c) for c in chosen] == sorted(product.index(c) for c in chosen)
    for i, (key, values) in enumerate(grid.items()):
        counts = [sum(c[i] == v for c in chosen) for v in values]
        assert set(counts) <= {points // len(values), points // len(values) + 1}, (key, counts)
    assert sweep_points("OFMU", "vision", directory=methods, sample={"points": points, "seed": seed}) == sample
    assert len(sweep_points("OFMU", "vision", directory=methods, sample={"points": 30, "seed": 0})) == 24  # all of it
    with pytest.raises(SettingsError, match="sampling budget must be >= 4"):
        sweep_points("OFMU", "vision", directory=methods, sample={"points": 3, "seed": 0})


@pytest.mark.parametrize("grid, named", [("[0.0, 1.0e-3]", "not positive"), ("[]", "empty"),
                                         ("[1.0e-3, true]", "must be a number")])
def test_a_bad_grid_is_named(tmp_path, grid, named):
    methods = tmp_path / "methods"
    shutil.copytree(REPO / "config" / "methods", methods)
    path = methods / "GradDiff.yaml"
    text = path.read_text()
    old = text[text.index("    lr: [", text.index("  vision:", text.index("sweep:"))):].split("]", 1)[0] + "]"
    path.write_text(text.replace(old, f"    lr: {grid}"))
    with pytest.raises(SettingsError, match=named) as err:
        sweep_points("GradDiff", "vision", directory=methods)
    assert "GradDiff.yaml (sweep.vision).lr" in str(err.value)


def _config():
    import yaml

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("change, named", [
    (lambda c: c["vision"].update(selection_seed=1), ["vision.selection_seed", "also a reported seed"]),
    (lambda c: c["llm"]["selection"].update(metric="accuracy"), ["llm.selection", "accuracy"]),
    (lambda c: c["vision"]["selection"].update(metric="forget_quality"), ["vision.selection", "forget_quality"]),
    (lambda c: c["llm"]["unlearn"].update(epochs=2), ["optimizer steps", "signal.min_steps"]),
    (lambda c: c["vision"]["sensitivity"].update(seeds=[100]), ["vision.sensitivity.seeds", "100"]),
])
def test_the_dry_run_check_names_protocol_errors(change, named):
    cfg = _config()
    change(cfg)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, REPO / "theory" / "claims.yaml")
    for text in named:
        assert text in str(err.value), (text, str(err.value))


def test_the_dry_run_counts_steps_on_the_smallest_replicate():
    """Each replicate's corpus draws its own forget split: its size, hence the steps, differ between seeds."""
    from ofmu.llm.corpus import CorpusConfig, generate_corpus

    cfg = _config()
    llm = cfg["llm"]
    sizes = {s: len(generate_corpus(CorpusConfig.from_dict({**llm["corpus"], "seed": s}))["forget10"])
             for s in [llm["selection_seed"], *llm["seeds"]]}
    steps = {s: llm["unlearn"]["epochs"] * -(-n // llm["unlearn"]["batch_size"]) for s, n in sizes.items()}
    smallest = min(steps, key=steps.get)
    assert steps[smallest] < max(steps.values()), steps  # the corpora do differ (else this test shows nothing)
    llm["signal"]["min_steps"] = steps[smallest] + 1  # enough for every replicate but the smallest
    with pytest.raises(ConfigError, match=rf"{steps[smallest]} optimizer steps per method on replicate {smallest} "):
        check_config(cfg, REPO / "theory" / "claims.yaml")
    llm["seeds"] = [s for s in llm["seeds"] if steps[s] > steps[smallest]][:3]
    if steps[llm["selection_seed"]] > steps[smallest]:
        check_config(cfg, REPO / "theory" / "claims.yaml")  # without that replicate the budget suffices


def test_a_forget_split_too_small_for_the_ks_test_is_a_dry_run_error():
    """4 forget QA against 4: the KS test's smallest p-value is 2 / C(8, 4) = 2 / 70 = 0.0286 (both samples apart),
    above signal.max_fq_finetuned 0.01, so the signal check could never pass; 5 QA: 2 / C(10, 5) = 0.0079 passes."""
    cfg = _config()
    cfg["llm"]["corpus"].update(n_authors=10, facts=cfg["llm"]["corpus"]["facts"][:4])  # forget10: 1 author x 4 facts
    cfg["llm"]["signal"].update(min_steps=0, min_outer_iterations=0)
    with pytest.raises(ConfigError, match=r"llm forget10: 4 forget QA .* below 0\.0286.* signal\.max_fq_finetuned 0\.01"):
        check_config(cfg, REPO / "theory" / "claims.yaml")
    cfg["llm"]["corpus"].update(facts=_config()["llm"]["corpus"]["facts"][:5])
    check_config(cfg, REPO / "theory" / "claims.yaml")


def _vision_rows(seed, ua_orig=0.05, ua_retrain=0.12, auc=0.55):
    refs = pd.DataFrame([
        {"dataset": "d", "scenario": "random", "seed": seed, "label": "Original", "method": "Original",
         "setting": "reference", "status": "ok", "UA": ua_orig, "RA": 0.99, "TA": 0.88, "MIA-Efficacy": 0.1, "MIA-AUC": auc},
        {"dataset": "d", "scenario": "random", "seed": seed, "label": "Retrain", "method": "Retrain",
         "setting": "reference", "status": "ok", "UA": ua_retrain, "RA": 0.98, "TA": 0.87, "MIA-Efficacy": 0.2, "MIA-AUC": auc}])
    return refs


def _sweep(seed, values):
    """Sweep rows of method M: {(setting, checkpoint): (UA, RA, TA, MIA)}."""
    return pd.DataFrame([{"dataset": "d", "scenario": "random", "seed": seed, "method": "GA", "label": "GA",
                          "setting": s, "checkpoint": c, "status": "ok", "hparams": json.dumps({"lr": float(s)}),
                          "UA": v[0], "RA": v[1], "TA": v[2], "MIA-Efficacy": v[3]} for (s, c), v in values.items()])


def test_vision_selection_by_hand_and_mia_left_out_without_signal():
    refs = _vision_rows(100)
    sweep = _sweep(100, {("0.1", 0.5): (0.12, 0.98, 0.87, 0.9),   # gaps over UA, RA, TA: 0, 0, 0
                         ("0.1", 1.0): (0.30, 0.90, 0.80, 0.2),   # large gaps
                         ("0.01", 1.0): (0.11, 0.98, 0.87, 0.2)})  # gap 1/3 of a point of UA, MIA exact
    chosen = select_setting("vision", sweep, refs, {"metric": "Avg.Gap", "direction": "min"})
    assert chosen["gap_metrics"] == ["UA", "RA", "TA"]  # AUC 0.55 < 0.6: MIA has no signal
    assert (chosen["setting"], chosen["checkpoint"]) == ("0.1", 0.5) and chosen["settings"] == {"lr": 0.1}
    # with signal, the MIA's gap (0.7 at the first point) decides for the third point
    chosen = select_setting("vision", sweep, _vision_rows(100, auc=0.8), {"metric": "Avg.Gap", "direction": "min"})
    assert (chosen["setting"], chosen["checkpoint"]) == ("0.01", 1.0)
    assert chosen["value"] == pytest.approx(np.mean([0.01, 0.0, 0.0, 0.0]))


def test_llm_selection_keeps_the_utility_floor():
    # the selection replicate's own Finetuned and Retain
    refs = pd.DataFrame([{"split": "f", "seed": 100, "label": "Finetuned", "setting": "reference", "status": "ok",
                          "forget_quality": 1e-5, "model_utility": 0.6, "forget_prob": 0.9},
                         {"split": "f", "seed": 100, "label": "Retain", "setting": "reference", "status": "ok",
                          "forget_quality": 0.9, "model_utility": 0.6, "forget_prob": 0.3}])
    sweep = pd.DataFrame([{"split": "f", "seed": 100, "method": "NPO", "label": "NPO", "setting": s, "checkpoint": c,
                           "status": st, "hparams": "{}", "forget_quality": fq, "model_utility": mu, "forget_prob": p}
                          for s, c, st, fq, mu, p in [("a", 1.0, "ok", 0.5, 0.1, 0.1),   # best FQ, below 0.9 x 0.6
                                                      ("b", 1.0, "ok", 0.02, 0.55, 0.5),  # tie on FQ ...
                                                      ("c", 1.0, "ok", 0.02, 0.58, 0.4),  # ... lower forget prob wins
                                                      ("d", 1.0, "diverged", np.nan, np.nan, np.nan),
                                                      ("e", 0.5, "ok", 0.01, 0.6, 0.5),  # diverged after one checkpoint
                                                      ("e", 1.0, "diverged", np.nan, np.nan, np.nan)]])
    rule = {"metric": "forget_quality", "direction": "max", "utility": "model_utility", "utility_fraction": 0.9,
            "utility_reference": "Finetuned", "tie_break": "forget_prob", "tie_direction": "min"}
    chosen = select_setting("llm", sweep, refs, rule)
    assert chosen["setting"] == "c" and chosen["points"] == 5 and chosen["trials"] == 6
    # every diverged trial counts, the partly diverged point "e" too (tab8 counted only all-diverged points);
    # "a" (MU 0.1 < half of Finetuned's 0.6) is the one collapsed trial
    assert chosen["diverged_trials"] == 2 and chosen["collapsed_trials"] == 1


def test_references_of_several_replicates_are_an_error_not_a_pick():
    """Each LLM replicate has its own Finetuned: rows of two seeds must never collapse into one silently."""
    refs = pd.DataFrame([{"split": "f", "seed": seed, "label": "Finetuned", "setting": "reference", "model_utility": mu}
                         for seed, mu in [(0, 0.6), (1, 0.5)]])
    assert references_of(refs[refs["seed"] == 1])["Finetuned"]["model_utility"] == 0.5
    with pytest.raises(ValueError, match=r"several cells or seeds \(seeds \[0, 1\]\)"):
        references_of(refs)


def test_reported_seeds_cannot_change_the_selection():
    """select_setting sees the selection seed's rows only; the pipeline's select rule gets no other file
    (tests/workflow/test_pipeline.py checks the DAG)."""
    refs = _vision_rows(100)
    sweep = _sweep(100, {("0.1", 1.0): (0.12, 0.98, 0.87, 0.2), ("0.01", 1.0): (0.2, 0.9, 0.8, 0.2)})
    alone = select_setting("vision", sweep, refs, {"metric": "Avg.Gap"})
    with pytest.raises(ValueError, match="one seed"):
        select_setting("vision", pd.concat([sweep, _sweep(0, {("0.01", 1.0): (0.12, 0.98, 0.87, 0.2)})]), refs,
                       {"metric": "Avg.Gap"})
    assert alone["setting"] == "0.1"


def test_signal_checks_fail_with_the_setting_to_change():
    refs = pd.concat([_vision_rows(100, 0.08, 0.10), _vision_rows(0, 0.08, 0.11)])
    with pytest.raises(SignalError, match="train_subset"):
        vision_signal(refs, 100)
    ok = vision_signal(pd.concat([_vision_rows(100, 0.05, 0.12, auc=0.7), _vision_rows(0, 0.05, 0.11)]), 100)
    assert ok["cells"][0]["ua_gap_mean"] == pytest.approx(0.065)
    # the same mean of 6.5 points, but seed 0 has a gap of 4: every seed needs the gap, not the mean
    with pytest.raises(SignalError, match=r"seed\(s\) 0 \(4\.00\)"):
        vision_signal(pd.concat([_vision_rows(100, 0.05, 0.14), _vision_rows(0, 0.07, 0.11)]), 100)
    assert ok["cells"][0]["gap_metrics"] == ["UA", "RA", "TA", "MIA-Efficacy"]  # decided on the selection seed
    assert gap_metrics({"MIA-AUC": 0.59}) == ["UA", "RA", "TA"]
    def llm(fq_finetuned):  # one replicate per seed, its Finetuned and Retain rows
        return pd.DataFrame([{"split": "forget10", "label": label, "setting": "reference", "seed": seed, "forget_quality": fq}
                             for seed, fq_f in fq_finetuned.items() for label, fq in [("Finetuned", fq_f), ("Retain", 0.8)]])
    assert llm_signal(llm({100: 1e-4, 0: 5e-3}))["splits"][0]["fq_finetuned_max"] == 5e-3
    # every replicate must separate the two: replicate 0's Finetuned is already "forgotten" by the KS test
    with pytest.raises(SignalError, match=r"seed\(s\) 0 \(FQ\(Finetuned\) = 0\.087.*Drop the split from llm.splits"):
        llm_signal(llm({100: 1e-4, 0: 0.087}))


def test_fronts_hypervolume_and_dominance_by_hand():
    refs = {"Original": {"UA": 0.05, "TA": 0.90}, "Retrain": {"UA": 0.12, "TA": 0.88}}
    # reference point: x = -|5 - 12| = -7 points, y = 0.9 x 90 = 81
    assert reference_point("vision", refs) == pytest.approx((-7.0, 81.0))
    rows = pd.DataFrame({"UA": [0.12, 0.10], "TA": [0.85, 0.89], "status": "ok"})
    xy = AXES["vision"].coords("vision", rows, refs)
    np.testing.assert_allclose(xy, [[0.0, 85.0], [-2.0, 89.0]])
    # a dominates one of b's two points
    assert dominated_share(np.array([[0.0, 86.0]]), xy) == 0.5
    llm_refs = {"Finetuned": {"model_utility": 0.6}}
    assert collapsed("llm", pd.DataFrame({"status": ["ok", "ok", "diverged"], "model_utility": [0.29, 0.31, np.nan]}),
                     llm_refs).tolist() == [True, False, False]


def test_fronts_table_and_selected_rows():
    refs = pd.concat([_vision_rows(100), _vision_rows(0)])
    refs.loc[refs["label"] == "Original", "TA"] = 0.90
    sweep = _sweep(100, {("1", 0.5): (0.12, 0.98, 0.85, 0.2), ("1", 1.0): (0.10, 0.98, 0.89, 0.2)})
    runs = _sweep(0, {("1", 0.5): (0.12, 0.98, 0.85, 0.2), ("1", 1.0): (0.30, 0.5, 0.5, 0.2)})
    selected = [{"label": "GA", "setting": "1", "checkpoint": 0.5, "cell": {"dataset": "d", "scenario": "random"}}]
    table = fronts_table("vision", sweep, runs, refs, selected, ["dataset", "scenario"], ["GA"], subject="OFMU")
    # reference (-7, 81): (0, 85) and (-2, 89) -> 7 x 4 + 5 x 4 = 48
    assert table["HV (selection seed)"].item() == pytest.approx(48.0)
    assert table["HV of selected setting (reported seeds)"].item() == "28.0000"  # (0, 85) alone: 7 x 4
    assert at_selected(runs, selected)["checkpoint"].tolist() == [0.5]


def test_train_subset_is_fixed_and_the_split_indexes_it():
    from ofmu.vision import api as V

    data = V.load_data("digits")
    a, b = V.train_subset(data, 500), V.train_subset(data, 500, seed=0)
    assert len(a.train_y) == 500 and torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, data.test_y)
    # the subset is drawn, not the first 500 images, and keeps every class
    assert not torch.equal(a.train_x, data.train_x[:500]) and len(torch.unique(a.train_y)) == 10
    split = V.forget_split(a, "class", 0, forget_class=3)
    assert (a.train_y[split.forget] == 3).all() and len(split.forget) + len(split.retain) == 500
    assert V.train_subset(data, None) is data


def test_classwise_ta_leaves_the_forgotten_class_out():
    """SalUn's protocol: TA (and the MIA's non-members) without the forgotten class's test images; by hand."""
    from ofmu.vision import api as V

    data = V.load_data("digits")
    model = V.new_model(data, "small_cnn", 0, width=4).eval()
    split = V.forget_split(data, "class", 0, forget_class=3)
    with torch.no_grad():
        pred = model(data.test_x).argmax(1)
    keep = data.test_y != 3
    hand = (pred[keep] == data.test_y[keep]).float().mean().item()
    metrics = V.evaluate(model, data, split, seed=0, names=("TA", "MIA-AUC"))
    assert metrics["TA"] == pytest.approx(hand, abs=1e-6) and metrics["TA"] != pytest.approx(
        (pred == data.test_y).float().mean().item(), abs=1e-6)
    random = V.evaluate(model, data, V.forget_split(data, "random", 0), seed=0, names=("TA",))
    assert random["TA"] == pytest.approx((pred == data.test_y).float().mean().item(), abs=1e-6)


def test_ta_on_a_fixed_test_subset_by_hand():
    from ofmu.seeds import derive_seed
    from ofmu.vision import api as V

    data = V.load_data("digits")
    model = V.new_model(data, "small_cnn", 0, width=4).eval()
    with torch.no_grad():
        pred = model(data.test_x).argmax(1)
    keep = torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(derive_seed(0, "test_subset")))[:100]
    hand = (pred[keep] == data.test_y[keep]).float().mean().item()
    for seed in (0, 1):  # the same subset whatever the run seed
        split = V.forget_split(data, "random", seed)
        assert V.evaluate(model, data, split, seed=seed, names=("TA",), test_max_samples=100)["TA"] == pytest.approx(hand, abs=1e-6)


def test_a_model_whose_outputs_are_not_finite_is_a_diverged_row():
    """Finite weights, non-finite evaluation (a collapsed LLM's MU): that checkpoint is 'diverged', the run goes on."""
    from ofmu.core.ofmu import NonFiniteError
    from ofmu.unlearning.cells import Domain, Evaluation, Run, run_method

    model, forget, retain, task = _tiny_problem()

    class Tiny(Domain):
        name, cell_keys, metric_columns = "tiny", (), ("acc",)
        calls = 0

        def cell(self):
            return {}

        def start_model(self):
            return model

        def task(self):
            return task

        def loaders(self, seed, batch_size):
            return _tiny_problem()[1:3]

        def evaluate(self, m, detail=True):
            Tiny.calls += 1
            if Tiny.calls == 2:
                raise NonFiniteError("MU inputs not finite")
            return Evaluation({"acc": 0.5})

    rows = run_method(Tiny(), Run("GradDiff", make_method("GradDiff", "vision").hparams, 0), epochs=2, batch_size=8,
                      checkpoints=(0.25, 0.5, 1.0)).rows
    assert rows["status"].tolist() == ["ok", "diverged", "ok"] and rows["checkpoint"].tolist() == [0.25, 0.5, 1.0]


def test_vision_outputs_that_overflow_raise_non_finite():
    """Finite weights, outputs that overflow to NaN: predict says so (the runner then writes a diverged row)."""
    from ofmu.core.ofmu import NonFiniteError
    from ofmu.vision.metrics import predict

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.fill_(3e38)  # finite, but x @ W overflows to inf and softmax to NaN
    with pytest.raises(NonFiniteError, match="not finite"):
        predict(model, torch.ones(5, 4), torch.zeros(5, dtype=torch.long))


def test_grid_edges_name_the_swept_keys_at_an_end_of_their_range():
    from ofmu.unlearning.comparison import grid_edges

    sweep = pd.DataFrame({"hparams": [json.dumps({"lr": lr, "beta": b, "inner_steps": 3}) for lr in (1e-3, 1e-2, 1e-1)
                                      for b in (0.1, 0.5)]})
    assert grid_edges(sweep, {"lr": 1e-2, "beta": 0.5, "inner_steps": 3}) == "beta highest"  # T is not swept
    assert grid_edges(sweep, {"lr": 1e-3, "beta": 0.1, "inner_steps": 3}) == "beta lowest, lr lowest"
    one_beta = sweep[sweep["hparams"].str.contains('"beta": 0.1')]
    assert grid_edges(one_beta, {"lr": 1e-2, "beta": 0.1, "inner_steps": 3}) == "interior"
