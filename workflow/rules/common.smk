# Shared helpers: config validation (schema, then every method / variant / setting key / claim override
# checked by ofmu.plan, so a dry run fails on them), the params of each job, target lists. No rules here.
from pathlib import Path

from snakemake.utils import validate

from ofmu.plan import canonical, cell_path, check_config, pick, stage_cells, stage_sweeps
from ofmu.unlearning.settings import method_settings, sensitivity_grid

validate(config, schema="../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)  # repo root (the Snakefile's folder); results go to the working directory
THEORY = config["theory"]
VISION = config.get("vision", {})
LLM = config.get("llm", {})
CLAIMS_FILE = str(REPO / THEORY["claims_file"])
check_config(config, CLAIMS_FILE)

UNLEARNING_STAGES = [stage for stage in ("vision", "llm") if stage in config["stages"]]
STAGE_CONFIG = {"vision": VISION, "llm": LLM}
# {stage: {label: {"method", "points": {setting id: complete settings}}}}: the grids of config/methods/<Method>.yaml,
# the only settings a sweep job gets; a reported run gets the selected one (results/<stage>/selected/...)
SWEEPS = {stage: stage_sweeps(stage, STAGE_CONFIG[stage]) for stage in UNLEARNING_STAGES}
# {stage: {cell path: cell}}: vision "<dataset>/<scenario>", LLM "<split>"
CELLS = {stage: {cell_path(c): c for c in stage_cells(stage, STAGE_CONFIG[stage])} for stage in UNLEARNING_STAGES}

# Cluster resources per kind of job (runtime in minutes, mem_mb in MiB), read by executors such as SLURM's
# (workflow/profiles/slurm; site specifics like partition and account live there only). CPU tiers: the default
# tier's measured maxima (results/benchmarks: <= 3.5 min and <= 1.4 GB RSS per job) with >= 4x slack. The paper
# tier (tier: paper, device cuda) trains ResNet-18 / Llama models: hours, more memory, and one GPU for every job
# that runs a model on its stage's device.
JOB_RESOURCES = {  # kind: (CPU tiers, paper tier)
    "light": ({"runtime": 10, "mem_mb": 2000}, {"runtime": 30, "mem_mb": 8000}),  # tables, figures, checks
    "theory": ({"runtime": 10, "mem_mb": 2000}, {"runtime": 10, "mem_mb": 2000}),
    "train": ({"runtime": 20, "mem_mb": 4000}, {"runtime": 720, "mem_mb": 32000}),
    "evaluate": ({"runtime": 20, "mem_mb": 4000}, {"runtime": 120, "mem_mb": 32000}),
    "unlearn": ({"runtime": 30, "mem_mb": 4000}, {"runtime": 720, "mem_mb": 32000}),
}


def job_resources(kind, stage=None):
    """The resources of one rule: its kind's runtime and memory for this tier, plus gpu=1 where the job runs
    a model on a CUDA device (stage "vision" or "llm"; "wildcard" for rules with a {stage} wildcard)."""
    cpu_tier, paper_tier = JOB_RESOURCES[kind]
    resources = dict(paper_tier if config.get("tier") == "paper" else cpu_tier)
    on_gpu = lambda name: str(STAGE_CONFIG.get(name, {}).get("device", "cpu")).startswith("cuda")  # noqa: E731
    if stage == "wildcard":
        if any(on_gpu(name) for name in UNLEARNING_STAGES):
            resources["gpu"] = lambda w: int(on_gpu(w.stage))
    elif stage is not None and on_gpu(stage):
        resources["gpu"] = 1
    return resources


# one figure per claim: fig<N>_<slug>; numbers are fixed so papers can cite them
THEORY_FIGURES = {
    "C1": "fig1_penalty_consistency",
    "C2": "fig2_convex_outer_rate",
    "C3": "fig3_strongly_convex_linear_rate",
    "C4": "fig4_finite_inner_steps",
    "C5": "fig5_nonconvex_stationarity",
    "C6": "fig13_growing_penalty",
}
CLAIM_OF_FIGURE = {figure: claim for claim, figure in THEORY_FIGURES.items()}
TABLE_EXTS = ["csv", "md", "tex", "html"]
# `snakemake --report report.html`: every figure and table (its html) is marked for the report, grouped by stage,
# with a caption from workflow/report/ (what it shows, the config and rule it came from, the README's verdict)
REPORT_CATEGORY = {"theory": "1. Theory", "vision": "2. Vision", "llm": "3. LLM",
                   "sensitivity": "4. OFMU sensitivity (both stages)", "fidelity": "5. First-order fidelity",
                   "provenance": "6. Provenance", "verdict": "0. Verdict (OFMU against each baseline, computed)"}


def in_report(path, caption, group, subcategory=None):
    """``path`` marked for the report under ``group`` (a REPORT_CATEGORY key, or a function of the wildcards
    giving one), captioned by workflow/report/<caption>.rst."""
    category = (lambda w: REPORT_CATEGORY[group(w)]) if callable(group) else REPORT_CATEGORY[group]
    return report(path, caption=f"../report/{caption}.rst", category=category, subcategory=subcategory)


def table_files(stem, caption, group):
    """A table's files, csv first (the scripts take the stem from it); the html (caption + table) is the
    report's copy."""
    return [f"{stem}.{ext}" for ext in TABLE_EXTS if ext != "html"] + [in_report(f"{stem}.html", caption, group, "tables")]


def source_rows(table, part="rows"):
    """The committed rows a table is computed from (paper_tables/data/<table>.<part>.csv): small CSVs from which
    tests/unit/test_committed_tables.py recomputes every committed table by a route of its own."""
    return f"paper_tables/data/{table}.{part}.csv"


def claim_spec_of(claim):
    """The claim's spec with this config's overrides applied: what that claim's jobs depend on."""
    from ofmu.theory.stage import claim_spec

    return canonical(claim_spec(CLAIMS_FILE, claim, THEORY.get("overrides")))


def theory_run_files(claim):
    return expand("results/theory/runs/{claim}/{family}.csv", claim=claim, family=claim_spec_of(claim)["families"])


def theory_targets():
    return [f"figures/{THEORY_FIGURES[c]}.png" for c in THEORY["claims"]] + expand(
        "paper_tables/tab1_theory_claims.{ext}", ext=TABLE_EXTS
    )


# ---- vision: what each job reads of the stage config ------------------------------------------------------
VISION_DATA = ("data_root", "data_cache", "train_subset", "forget_fraction", "forget_class")
VISION_MODEL = ("model", "model_kwargs", "device")
VISION_EVAL = ("mia_max_samples", "retain_eval_samples", "test_eval_samples")
# the Original and Retrain models are trained by the Retrain method: its file's settings are theirs too
RETRAIN_SETTINGS = canonical(method_settings("Retrain", "vision")) if "vision" in config["stages"] else {}


def vision_cfg(*keys, train=False):
    """Params function: the job's part of the vision config. forget_fraction only where the forget set uses
    it (random forgetting), forget_class only class-wise; with ``train``, Retrain's settings too."""

    def params(w):
        unused = {"forget_fraction"} if w.get("scenario") != "random" else {"forget_class"}
        used = [k for k in keys if k not in unused]
        cfg = pick(VISION, *used)
        if train:
            cfg["retrain_settings"] = RETRAIN_SETTINGS
        return canonical(cfg)

    return params



VISION_TABLES = {"random": "tab2_vision_random", "class": "tab3_vision_classwise"}
SCENARIO_OF_TABLE = {table: scenario for scenario, table in VISION_TABLES.items()}


# where the first-order OFMU is compared with the exact one along a run (extended tier): random forgetting when
# configured, the first dataset in sorted order, the selection seed (independent of how the config lists them)
def fidelity_cell():
    scenario = "random" if "random" in VISION["datasets"] else sorted(VISION["datasets"])[0]
    return {"dataset": sorted(VISION["datasets"][scenario])[0], "scenario": scenario, "seed": VISION["selection_seed"]}


FIDELITY_CELL = fidelity_cell() if "vision" in config["stages"] else {}


# ---- both unlearning stages: sweep (selection seed) -> select -> reported runs, sensitivity -------------------
def all_seeds(stage):
    return [STAGE_CONFIG[stage]["selection_seed"], *STAGE_CONFIG[stage]["seeds"]]


def job_cfg(stage, cell):
    """The part of the stage config a run job reads."""
    if stage == "vision":
        return vision_cfg(*VISION_DATA, *VISION_MODEL, *VISION_EVAL)(CELLS[stage][cell])
    return pick(LLM, *LLM_EVAL)


def start_inputs(stage, cell, seed):
    """The files a run job on (stage, cell, seed) starts from."""
    if stage == "vision":
        return {"original": f"results/vision/models/{CELLS[stage][cell]['dataset']}/original_s{seed}.safetensors"}
    return {"meta": llm_corpus(seed), "full": llm_full_weights(seed), "refs": llm_fq_references(cell, seed)}


def reference_file(stage, cell, seed):
    """The reference rows of a cell and seed (Original + Retrain; Finetuned + Retain of the replicate)."""
    return f"results/{stage}/runs/{cell}/reference/s{seed}.csv"


def reference_files(stage, seeds=None):
    return sorted({reference_file(stage, cell, seed) for cell in CELLS[stage] for seed in (seeds or all_seeds(stage))})


def sweep_files(stage, suffix=".csv"):
    return [f"results/{stage}/sweeps/{cell}/{label}{suffix}" for cell in CELLS[stage] for label in SWEEPS[stage]]


def selected_files(stage):
    return [f"results/{stage}/selected/{cell}/{label}.json" for cell in CELLS[stage] for label in SWEEPS[stage]]


def run_files(stage, suffix=".csv", cells=None):
    """The reported runs: one file per (cell, method) holding every reported seed."""
    return [f"results/{stage}/runs/{cell}/{label}{suffix}" for cell in (cells or CELLS[stage]) for label in SWEEPS[stage]]


def reported_inputs(stage, cell):
    """What a reported-run job starts from on every reported seed, named ``<name>_s<seed>``: vision one Original
    per seed, the LLM one replicate per seed (its corpus, Finetuned model and FQ references)."""
    return {f"{name}_s{seed}": path for seed in STAGE_CONFIG[stage]["seeds"]
            for name, path in start_inputs(stage, cell, seed).items()}


def sensitivity_cell(stage):
    return cell_path(canonical_cell(stage, STAGE_CONFIG[stage]["sensitivity"]["cell"]))


def canonical_cell(stage, cell):
    keys = ("dataset", "scenario") if stage == "vision" else ("split",)
    return {k: cell[k] for k in keys}


def sensitivity_files(stage):
    sens = STAGE_CONFIG[stage].get("sensitivity")
    if not sens:
        return []
    return [f"results/{stage}/sensitivity/{sensitivity_cell(stage)}/s{seed}.csv" for seed in sens["seeds"]]


def sensitivity_selected(stage):
    return [f"results/{stage}/selected/{sensitivity_cell(stage)}/OFMU.json"]


def stage_labels(stage):
    """Row order of a stage's tables: references, then methods and variants in config order."""
    references = ["Retrain", "Original"] if stage == "vision" else ["Finetuned", "Retain"]
    return references + list(SWEEPS[stage])


def vision_targets():
    tables = [f"paper_tables/{VISION_TABLES[sc]}{kind}.{ext}" for sc in VISION["datasets"] for kind in ["", "_costs"]
              for ext in TABLE_EXTS]
    return tables + ["figures/fig6_vision_fronts.png", "figures/fig7_vision_ofmu_diagnostics.png"]


# ---- LLM --------------------------------------------------------------------------------------------------
# a pretrained start model (llm.model.pretrained) is read beyond training: its tokenizer by the corpus job, its
# trainable blocks and attention by the unlearning jobs; a from-scratch GPT-2's spec only by training
LLM_PRETRAINED = ("model",) if "pretrained" in (LLM.get("model") or {}) else ()
# real TOFU (llm.dataset) instead of the generated corpus: the corpus job copies the splits it needs
LLM_DATASET = ("dataset", "splits") if LLM.get("dataset") else ()
# the robustness attacks (llm.attacks) run where a model's detail evaluation runs: its reported runs, its references
LLM_ATTACKS = ("attacks",) if LLM.get("attacks") else ()
LLM_EVAL = ("eval", "device", *LLM_PRETRAINED, *LLM_ATTACKS)


def llm_setting():
    """What the LLM stage runs on, in words: the opening of its table captions."""
    if not (LLM_DATASET or LLM_PRETRAINED):
        return "TOFU-protocol analog on the generated fictitious-author corpus (small GPT-2, CPU scale)"
    data = f"the TOFU-format dataset {LLM['dataset']}" if LLM_DATASET else "the generated fictitious-author corpus"
    model = LLM.get("model") or {}
    start = (f"the pretrained {model['pretrained']}" + (f" (top {model['trainable_blocks']} blocks trained)"
                                                      if model.get("trainable_blocks") else "")
             if LLM_PRETRAINED else "a small GPT-2 trained from scratch")
    return f"TOFU protocol on {data}, fine-tuned from {start}"


def attack_records(path):
    """The attack records of a run or reference job, next to its rows, when llm.attacks is configured."""
    return {"attacks": path} if LLM_ATTACKS else {}


# A replicate per seed (the selection seed and every reported one): its own corpus (other authors and facts, the
# corpus seed = the seed), its own Finetuned model and retain-only models, so the spread over the reported seeds
# includes data and model, not only batch order (issue 19).
def llm_corpus(seed):
    return f"results/llm/s{seed}/corpus/corpus.json"


def llm_fq_references(split, seed):
    return f"results/llm/s{seed}/references/{split}.json"


def llm_retain_weights(split, seed):
    return [f"results/llm/s{seed}/models/retain_{split}_r{k}/model.safetensors" for k in LLM["reference_seeds"]]


def llm_full_weights(seed):
    return f"results/llm/s{seed}/models/full_r{LLM['model_seed']}/model.safetensors"


def llm_targets():
    names = ["tab4_llm_tofu", *([] if LLM_DATASET else ["tab5_llm_hard_probes"])]  # real TOFU has no probes
    tables = [f"paper_tables/{t}.{ext}" for t in names for ext in TABLE_EXTS]
    if LLM_ATTACKS:
        tables += [f"paper_tables/tab12_llm_attacks.{ext}" for ext in TABLE_EXTS]
    figures = ["fig9_llm_fronts", "fig10_llm_ofmu_diagnostics", *(["fig14_llm_attacks"] if LLM_ATTACKS else [])]
    if LLM.get("sample_costs"):  # the Figure 1 analog: extended tier
        figures.append("fig8_llm_difficulty_vs_utility")
    return tables + [f"figures/{f}.png" for f in figures]


def comparison_targets():
    """Per stage: the selected settings, the fronts' summary, the signal checks; OFMU's sensitivity."""
    targets = [f"paper_tables/tab8_{stage}_selection.{ext}" for stage in UNLEARNING_STAGES for ext in TABLE_EXTS]
    targets += [f"paper_tables/tab9_{stage}_fronts.{ext}" for stage in UNLEARNING_STAGES for ext in TABLE_EXTS]
    targets += [f"paper_tables/tab11_{stage}_equal_compute.{ext}" for stage in UNLEARNING_STAGES for ext in TABLE_EXTS]
    targets += [f"results/{stage}/signal.json" for stage in UNLEARNING_STAGES]
    if any(sensitivity_files(stage) for stage in UNLEARNING_STAGES):
        targets += ["figures/fig12_ofmu_sensitivity.png", *expand("paper_tables/tab6_ofmu_sensitivity.{ext}", ext=TABLE_EXTS)]
    return targets


FIDELITY_TARGETS = ["figures/fig11_first_order_fidelity.png",
                    *[f"paper_tables/tab7_first_order_fidelity.{ext}" for ext in TABLE_EXTS]]


def fidelity_runs():
    """The first-order-vs-exact fidelity runs: only where the stage sets fidelity_iterations (extended tier)."""
    return [f"results/{stage}/first_order_fidelity.csv" for stage in UNLEARNING_STAGES
            if STAGE_CONFIG[stage].get("fidelity_iterations")]


def all_targets():
    targets = list(FIDELITY_TARGETS) if fidelity_runs() else []  # a copy: += below must not grow the constant
    if "theory" in config["stages"]:
        targets += theory_targets()
    if "vision" in config["stages"]:
        targets += vision_targets()
    if "llm" in config["stages"]:
        targets += llm_targets()
    return targets + comparison_targets() + verdict_targets() + ["paper_tables/provenance.json"]


def verdict_inputs():
    """The source rows the verdict reads, per unlearning stage: the per-seed rows of the stage's main tables
    (tab2/tab3, tab4) and the per-seed hypervolumes (tab9)."""
    inputs = {}
    if "vision" in UNLEARNING_STAGES:
        inputs["vision_rows"] = [source_rows(VISION_TABLES[sc]) for sc in VISION["datasets"]]
    if "llm" in UNLEARNING_STAGES:
        inputs["llm_rows"] = [source_rows("tab4_llm_tofu")]
    for stage in UNLEARNING_STAGES:
        inputs[f"{stage}_hv"] = [source_rows(f"tab9_{stage}_fronts", "hv")]
    return inputs


def verdict_targets():
    """tab10 and the verdict's words, where the config declares a verdict (and has an unlearning stage)."""
    if not (config.get("verdict") and UNLEARNING_STAGES):
        return []
    return [*expand("paper_tables/tab10_verdict.{ext}", ext=TABLE_EXTS), "paper_tables/verdict.md"]
