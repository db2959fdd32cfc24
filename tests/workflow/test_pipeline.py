"""The Snakemake pipeline: lint, dry run, schema errors naming the key, and the smoke tier end to end."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake_runs import snakemake

REPO = Path(__file__).resolve().parents[2]


def _snakemake(workdir, *args, config=None, env=None):
    return snakemake(workdir, *args, config=config, env=env)


def _planned(out) -> dict[str, int]:
    """{rule: job count} from a dry run's "Job stats" table (empty when nothing is to be done)."""
    text = out.stdout + out.stderr
    if "Job stats:" not in text:
        return {}
    jobs = {}
    for line in text.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def _planned_jobs(out) -> list[str]:
    """The "rule wildcards" of every planned job of a dry run, one string each."""
    text, jobs = out.stdout + out.stderr, []
    for block in re.split(r"\n(?:local)?rule ", text)[1:]:  # "localrule" when the job would run on this machine
        rule = block.split(":")[0].strip()
        wildcards = next((l.split("wildcards:")[1].strip() for l in block.splitlines() if "wildcards:" in l), "")
        jobs.append(f"{rule} {wildcards}".strip())
    return jobs


def _config_with(tmp_path, change):
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    change(cfg)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_lint_is_clean(tmp_path):
    out = _snakemake(tmp_path, "--lint")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_default_tier_dry_run_plans_every_figure_and_table(tmp_path):
    out = _snakemake(tmp_path, "-n", "--quiet", "rules")
    assert out.returncode == 0, out.stderr
    plan = out.stdout + out.stderr
    for rule in ["theory_run", "theory_check", "theory_figure", "theory_table", "provenance"]:
        assert rule in plan


def _job_resources(out) -> dict[str, set[str]]:
    """{rule: the resource lines of its planned jobs} from a dry run's job list."""
    jobs = {}
    for block in re.split(r"\n(?:local)?rule ", out.stdout + out.stderr)[1:]:
        name = block.split(":", 1)[0]
        found = re.search(r"resources: (.*)", block)
        jobs.setdefault(name, set()).add(found.group(1) if found else "")
    return jobs


def test_rules_declare_cluster_resources_and_the_paper_tier_asks_for_gpus(tmp_path):
    # every job carries runtime and memory for an executor such as SLURM; only the paper tier (device cuda)
    # asks for a GPU, and only for jobs that run a model on the GPU stage
    default = _job_resources(_snakemake(tmp_path, "-n"))
    default.pop("all")  # the target rule runs nothing
    lacking = {rule: rs for rule, rs in default.items() if not all("runtime=" in r and "mem_mb=" in r for r in rs)}
    assert default and not lacking, lacking
    assert not any("gpu" in r for rs in default.values() for r in rs)
    # the paper tier downloads its model and data: planned as on a machine with network
    paper = _job_resources(_snakemake(tmp_path, "-n", config=REPO / "config" / "paper.yaml", env={"HF_HUB_OFFLINE": "0"}))
    for rule in ["vision_original", "vision_retrain", "llm_train", "sweep", "vision_run", "llm_run"]:
        assert all("gpu=1" in r and "runtime=720" in r for r in paper[rule]), (rule, paper[rule])
    for rule in ["theory_run", "theory_table", "select", "comparison_tables"]:
        assert all("gpu" not in r for r in paper[rule]), (rule, paper[rule])


def test_the_paper_tier_plans_a_pretrained_llama_on_real_tofu_and_offline_names_the_missing_model(tmp_path):
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["llm"]
    assert paper["dataset"] == "locuslab/TOFU" and paper["model"]["pretrained"] == "meta-llama/Llama-3.2-1B-Instruct"
    online = _snakemake(tmp_path, "-n", "--quiet", "rules", config=REPO / "config" / "paper.yaml",
                        env={"HF_HUB_OFFLINE": "0"})
    assert online.returncode == 0, online.stderr
    planned = _planned(online)
    # 4 replicates (selection + 3 reported): a Finetuned model and 3 retain models per split (forget01/05/10) each
    assert planned["llm_corpus"] == 4 and planned["llm_train"] == 4 * (1 + 3 * 3), planned
    offline = _snakemake(tmp_path, "-n", config=REPO / "config" / "paper.yaml")
    assert offline.returncode != 0
    assert "'meta-llama/Llama-3.2-1B-Instruct' is a hub id, HF_HUB_OFFLINE=1 is set" in offline.stderr + offline.stdout


def test_unknown_config_key_is_named(tmp_path):
    cfg = _config_with(tmp_path, lambda c: c["theory"].update(seedz=[1]))
    out = _snakemake(tmp_path, "-n", config=cfg)
    assert out.returncode != 0
    assert "seedz" in out.stderr + out.stdout


def test_wrong_type_is_named_with_the_expected_type(tmp_path):
    cfg = _config_with(tmp_path, lambda c: c["theory"].update(seeds="zero"))
    out = _snakemake(tmp_path, "-n", config=cfg)
    assert out.returncode != 0
    text = out.stderr + out.stdout
    assert "seeds" in text and "array" in text


def test_a_theory_only_config_needs_no_stage_sections(tmp_path):
    cfg = _config_with(tmp_path, lambda c: [c.pop("vision"), c.pop("llm"), c.update(stages=["theory"])])
    out = _snakemake(tmp_path, "-n", config=cfg)
    assert out.returncode == 0, out.stderr[-2000:]
    assert set(_planned(out)) == {"theory_run", "theory_check", "theory_figure", "theory_table", "provenance", "all"}


def test_a_configfile_replaces_the_default_tier_and_an_omitted_scenario_schedules_nothing(tmp_path):
    cfg = _config_with(tmp_path, lambda c: c["vision"]["datasets"].pop("class"))
    jobs = _planned(_snakemake(tmp_path, "-n", config=cfg))
    assert jobs["vision_run"] == 11 and jobs["vision_table"] == 1  # random only: 11 methods x 1 dataset x 1 seed
    assert jobs["sweep"] == 11 + 11 and jobs["select"] == 11 + 11  # a sweep per method and cell (vision + llm)
    cfg = _config_with(tmp_path, lambda c: c["llm"].update(variants={}))
    assert _planned(_snakemake(tmp_path, "-n", config=cfg))["llm_run"] == 10  # no OFMU_beta0


@pytest.mark.parametrize("change, named", [
    (lambda c: c["vision"]["methods"].append("GradAscent"), ["GradAscent", "valid methods", "GradDiff"]),
    (lambda c: c["llm"]["methods"].append("SalUn"), ["SalUn", "does not run in the llm stage"]),
    (lambda c: c["llm"]["variants"].update(OFMU_b={"method": "OFMU", "hparams": {"bta": 0}}),
     ["OFMU_b", "bta", "valid", "beta"]),
    (lambda c: c["llm"]["variants"].update(X={"method": "OFMX"}), ["variants.X", "OFMX", "valid methods"]),
    (lambda c: c["theory"]["overrides"].update(C9={"max_iter": 3}), ["C9", "valid claims", "C1"]),
    (lambda c: c["theory"]["overrides"]["C2"].update(max_iters=3), ["C2", "max_iters", "its keys"]),
    (lambda c: c["theory"]["overrides"]["C2"].update(tol="abc"), ["C2", "'tol' = 'abc'", "finite number"]),
    (lambda c: c["theory"].update(claims_file="theory/nope.yaml"), ["theory.claims_file", "does not exist", "git checkout"]),
    (lambda c: c["llm"].update(splits=["forget10", "forget05"]), ["forget05", "forget_percents"]),
    (lambda c: c["vision"]["datasets"].update({"class": []}), ["class", "non-empty"]),
    (lambda c: c["llm"]["variants"].update(OFMU_x={"method": "OFMU", "hparams": {"outer_grad": "exakt"}}),
     ["OFMU_x", "outer_grad", "exact"]),
    (lambda c: c["vision"]["methods"].append("Retrain"), ["Retrain is the reference"]),
    (lambda c: c["llm"]["variants"]["OFMU_beta0"]["hparams"].update(beta=True), ["'beta'", "must be a number"]),
    (lambda c: c["llm"]["variants"].update(Retain={"method": "GA"}), ["variants.Retain", "name is taken"]),
    (lambda c: c["llm"]["variants"].update(OFMU_fd={"method": "OFMU", "hparams": {"fd_step": 0.0}}),
     ["OFMU_fd", "'fd_step'", "> 0"]),
    (lambda c: c["llm"]["variants"].update(OFMU_d={"method": "OFMU", "hparams": {"derivatives": "second_order"}}),
     ["OFMU_d", "'derivatives'", "first_order"]),
    (lambda c: c["vision"].update(selection_seed=0), ["vision.selection_seed", "also a reported seed"]),
    (lambda c: c["llm"]["selection"].update(metric="accuracy"), ["llm.selection", "accuracy", "valid"]),
    (lambda c: c["vision"].pop("selection"), ["selection", "required"]),
    # equal trials: a sample too small to try every value of a key; a grid smaller than the sample
    # (the smoke tier's grids: each key cut to its 2 end points)
    (lambda c: c["vision"]["sweep"].update(points=1), ["vision.sweep", "FT.yaml", "'lr'", "sampling budget must be >= 2"]),
    (lambda c: c["llm"]["sweep"].update(points=3), ["llm.sweep.points", "grid of GA has 2 point(s)", "GA.yaml"]),
    (lambda c: c["vision"]["methods"].remove("GradDiff"), ["vision.methods", "gradient budget", "tab11_vision"]),
])
def test_dry_run_names_every_bad_setting_with_the_valid_choices(tmp_path, change, named):
    out = _snakemake(tmp_path, "-n", config=_config_with(tmp_path, change))
    assert out.returncode != 0
    for text in named:
        assert text in out.stdout + out.stderr, (text, (out.stdout + out.stderr)[-2000:])


@pytest.mark.parametrize("grid, named", [("[0.0, 1.0e-3]", "not positive"), ("[]", "empty")])
def test_dry_run_names_a_bad_sweep_grid(tmp_path, grid, named):
    methods = tmp_path / "methods"
    shutil.copytree(REPO / "config" / "methods", methods)
    path = methods / "GradDiff.yaml"
    path.write_text(path.read_text().replace("lr: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]", f"lr: {grid}"))
    out = _snakemake(tmp_path, "-n", config=REPO / "config" / "smoke.yaml", env={"OFMU_METHODS_DIR": str(methods)})
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "GradDiff.yaml (sweep.vision).lr" in text and named in text, text[-2000:]


@pytest.mark.slow
def test_smoke_tier_runs_end_to_end_and_a_failing_claim_fails_the_pipeline(tmp_path, smoke_run):
    work, out = smoke_run
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for n in range(1, 14):
        figs = list((work / "figures").glob(f"fig{n}_*.png"))
        assert len(figs) == 1 and figs[0].stat().st_size > 10_000, n
    table = pd.read_csv(work / "paper_tables" / "tab1_theory_claims.csv")
    assert set(table["claim"]) == {"C1", "C2", "C3", "C4", "C5", "C6"} and (table["status"] == "PASS").all()
    prov = json.loads((work / "paper_tables" / "provenance.json").read_text())
    assert prov["config"]["tier"] == "smoke" and "theory_run" in prov["wall_seconds_per_rule"]
    assert (work / "paper_tables" / "tab1_theory_claims.tex").read_text().startswith("\\begin{table}")
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["vision"]
    for table in ["tab2_vision_random", "tab3_vision_classwise"]:
        vt = pd.read_csv(work / "paper_tables" / f"{table}.csv")
        assert set(vt["label"]) == {"Original", "Retrain", *smoke["methods"]}
        gap = vt.loc[vt["label"] == "Retrain", "Avg. Gap"].astype(str).str.split(" ").str[0].astype(float)
        assert (gap == 0).all()  # Retrain is its own reference
    llm = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["llm"]
    tofu = pd.read_csv(work / "paper_tables" / "tab4_llm_tofu.csv")
    assert list(tofu["label"]) == ["Finetuned", "Retain", *llm["methods"], *llm["variants"]]
    assert {f"{s} {m}" for s in llm["splits"] for m in ["FQ median [range]", "MU", "FTR"]} <= set(tofu.columns)
    sens = pd.read_csv(work / "paper_tables" / "tab6_ofmu_sensitivity.csv")
    # one setting changed at a time; the variation equal to the selected value is skipped (T = 1 or 5, by the selection)
    assert {"selected", "beta=0"} <= set(sens["OFMU setting"]) and set(sens["stage"]) == {"vision", "llm"}
    assert len({"inner_steps=1", "inner_steps=5"} & set(sens["OFMU setting"])) >= 1
    selection = pd.read_csv(work / "paper_tables" / "tab8_vision_selection.csv")
    assert len(selection) == len(smoke["methods"]) * 2  # every method on both cells
    fronts = pd.read_csv(work / "paper_tables" / "tab9_llm_fronts.csv")
    assert set(fronts["method"]) == {*llm["methods"], *llm["variants"]}

    # the Original and Retrain of every seed are trained on the same fixed training subset
    from ofmu.vision.models import checkpoint_metadata

    models = sorted((work / "results" / "vision" / "models").rglob("*.safetensors"))
    assert len(models) == 3 * (len(smoke["seeds"]) + 1)  # Original, Retrain random, Retrain class per seed
    assert {checkpoint_metadata(m)["n_train"] for m in models} == {str(smoke["train_subset"])}

    # reported runs: the core columns, every checkpoint, the selected setting; the reference rows of every seed
    runs = sorted((work / "results" / "vision" / "runs").rglob("*.csv"))
    cells = pd.concat([pd.read_csv(p) for p in runs if p.name.count(".") == 1], ignore_index=True)
    core = ["domain", "dataset", "scenario", "seed", "method", "setting", "label", "checkpoint", "status", "wall_seconds"]
    assert list(cells.columns[:len(core)]) == core
    n_cells = sum(len(v) for v in smoke["datasets"].values())
    refs = cells[cells["setting"] == "reference"]
    assert len(refs) == 2 * n_cells * (len(smoke["seeds"]) + 1)  # Original and Retrain per cell and seed (+ selection)
    cells = cells[cells["setting"] != "reference"]
    assert len(cells) == len(smoke["methods"]) * n_cells * len(smoke["seeds"]) * len(smoke["checkpoints"])
    assert set(cells["seed"]) == set(smoke["seeds"])  # never the selection seed
    for _, row in cells.drop_duplicates(["dataset", "scenario", "label"]).iterrows():
        chosen = json.loads((work / "results" / "vision" / "selected" / row["dataset"] / row["scenario"]
                             / f"{row['label']}.json").read_text())
        assert row["setting"] == chosen["setting"] and chosen["seed"] == smoke["selection_seed"]
    # every method that draws from D_f used the same budget of passes (OFMU may stop one step short,
    # a step costing T + 1 forget batches); FT and l1-sparse never draw from D_f
    passes = cells[cells["checkpoint"] == 1.0].dropna(subset=["forget_passes"])
    drawn = passes[passes["forget_passes"] > 0]
    epochs = smoke["unlearn"]["epochs"]
    assert (drawn["forget_passes"] <= epochs + 1e-9).all()
    others = drawn[drawn["method"] != "OFMU"]["forget_passes"]
    assert (others >= epochs - 1e-9).all()
    # OFMU's last step (T + 1 <= 3 batches) may not fit: on the smoke cells' 5-batch passes that leaves >= 0.6
    assert (drawn[drawn["method"] == "OFMU"]["forget_passes"] >= 0.6 * epochs - 1e-9).all()
    assert set(passes[passes["forget_passes"] == 0]["method"]) <= {"FT", "l1-sparse", "IU"}

    # the reported seeds never enter the selection: the select job reads the selection seed's sweep and
    # references, no file of a reported seed (the job's inputs, as the dry run plans it)
    smoke_file = REPO / "config" / "smoke.yaml"
    out = _snakemake(work, "-n", "-f", "results/vision/selected/digits/random/GA.json", config=smoke_file)
    blocks = [b for b in re.split(r"\n(?:local)?rule ", out.stdout + out.stderr) if b.startswith("select:")]
    assert len(blocks) == 1, out.stdout[-2000:]
    inputs = next(l for l in blocks[0].splitlines() if l.strip().startswith("input:"))
    seed = smoke["selection_seed"]
    assert "sweeps/digits/random/GA.csv" in inputs and f"reference/s{seed}.csv" in inputs, inputs
    assert not any(f"s{s}." in inputs for s in smoke["seeds"]), inputs

    # jobs at the grain of the work: reordered keys rerun nothing; one edited method file reruns that method's
    # jobs and what reads them, no model training
    smoke_cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(_reversed(smoke_cfg), sort_keys=False))
    assert _planned(_snakemake(work, "-n", config=reordered)) == {}
    methods = tmp_path / "methods"
    shutil.copytree(REPO / "config" / "methods", methods)
    ofmu = (methods / "OFMU.yaml").read_text().replace("inner_steps: 3 ", "inner_steps: 2 ")
    (methods / "OFMU.yaml").write_text(ofmu)
    out = _snakemake(work, "-n", config=REPO / "config" / "smoke.yaml", env={"OFMU_METHODS_DIR": str(methods)})
    planned = _planned(out)
    assert not {"vision_original", "vision_retrain", "llm_train", "vision_references", "llm_references"} & set(planned)
    runs = [j for j in _planned_jobs(out) if j.startswith(("sweep", "select", "vision_run", "llm_run", "llm_sample_costs"))]
    assert runs and all("=OFMU" in j for j in runs), runs
    # Retrain's file holds the optimizer of the Original and Retrain models: editing it retrains them
    retrain = (REPO / "config" / "methods" / "Retrain.yaml").read_text().replace("momentum: 0.9 ", "momentum: 0.8 ")
    (methods / "Retrain.yaml").write_text(retrain)
    planned = _planned(_snakemake(work, "-n", config=REPO / "config" / "smoke.yaml", env={"OFMU_METHODS_DIR": str(methods)}))
    n_seeds = len(smoke["seeds"]) + 1
    assert planned["vision_original"] == n_seeds and planned["vision_retrain"] == 2 * n_seeds and "llm_train" not in planned

    # an impossible tolerance on a tight claim must stop the pipeline and leave no verdict behind
    bad = tmp_path / "bad"
    shutil.copytree(work / "results", bad / "results")
    cfg = _config_with(tmp_path, lambda c: c["theory"]["overrides"]["C1"].update(tol=1e-6))
    out = _snakemake(bad, "--forcerun", "theory_check", config=cfg)
    assert out.returncode != 0
    assert not (bad / "results" / "theory" / "checks" / "C1.csv").exists()
    assert "claim C1 failed" in (bad / "logs" / "theory" / "check_C1.log").read_text()


def _reversed(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    return value
