# Shared helpers: config validation (schema, then every method / variant / setting key / claim override
# checked by ofmu.plan, so a dry run fails on them), the params of each job, target lists. No rules here.
from pathlib import Path

from snakemake.utils import validate

from ofmu.plan import canonical, check_config, pick, stage_runs
from ofmu.unlearning.settings import method_settings

validate(config, schema="../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)  # repo root (the Snakefile's folder); results go to the working directory
THEORY = config["theory"]
VISION = config.get("vision", {})
LLM = config.get("llm", {})
CLAIMS_FILE = str(REPO / THEORY["claims_file"])
check_config(config, CLAIMS_FILE)

# {(method, setting id): complete settings}: the only settings a run job gets (config/methods/<Method>.yaml)
VISION_RUNS = stage_runs("vision", VISION) if "vision" in config["stages"] else {}
LLM_RUNS = stage_runs("llm", LLM) if "llm" in config["stages"] else {}

# one figure per claim: fig<N>_<slug>; numbers are fixed so papers can cite them
THEORY_FIGURES = {
    "C1": "fig1_penalty_consistency",
    "C2": "fig2_convex_outer_rate",
    "C3": "fig3_strongly_convex_linear_rate",
    "C4": "fig4_finite_inner_steps",
    "C5": "fig5_nonconvex_stationarity",
}
CLAIM_OF_FIGURE = {figure: claim for claim, figure in THEORY_FIGURES.items()}
TABLE_EXTS = ["csv", "md", "tex"]


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
VISION_DATA = ("data_root", "data_cache", "forget_fraction")
VISION_MODEL = ("model", "model_kwargs", "device")
VISION_EVAL = ("mia_max_samples", "retain_eval_samples")
# the Original and Retrain models are trained by the Retrain method: its file's settings are theirs too
RETRAIN_SETTINGS = canonical(method_settings("Retrain", "vision")) if "vision" in config["stages"] else {}


def vision_cfg(*keys, train=False):
    """Params function: the job's part of the vision config. forget_fraction only where the forget set uses
    it (random forgetting; class-wise forgets a whole class); with ``train``, Retrain's settings too."""

    def params(w):
        used = [k for k in keys if not (k == "forget_fraction" and w.get("scenario") != "random")]
        cfg = pick(VISION, *used)
        if train:
            cfg["retrain_settings"] = RETRAIN_SETTINGS
        return canonical(cfg)

    return params



VISION_TABLES = {"random": "tab2_vision_random", "class": "tab3_vision_classwise"}
SCENARIO_OF_TABLE = {table: scenario for scenario, table in VISION_TABLES.items()}


# where the first-order OFMU is compared with the exact one along a run: random forgetting when configured, the
# first dataset and seed in sorted order (independent of how the config lists them)
def fidelity_cell():
    scenario = "random" if "random" in VISION["datasets"] else sorted(VISION["datasets"])[0]
    return {"dataset": sorted(VISION["datasets"][scenario])[0], "scenario": scenario, "seed": min(VISION["seeds"])}


FIDELITY_CELL = fidelity_cell() if "vision" in config["stages"] else {}


def vision_cells(scenarios=None):
    """(dataset, scenario, seed) for every configured cell (of ``scenarios``, default all)."""
    return [(d, scenario, seed) for scenario, datasets in VISION["datasets"].items() for d in datasets
            for seed in VISION["seeds"] if scenarios is None or scenario in scenarios]


def vision_run_files(suffix=".csv", scenarios=None):
    return [f"results/vision/runs/{d}/{sc}/{m}/{s}/s{seed}{suffix}" for d, sc, seed in vision_cells(scenarios)
            for m, s in VISION_RUNS]


def vision_reference_files(scenarios=None):
    return [f"results/vision/runs/{d}/{sc}/reference/s{seed}.csv" for d, sc, seed in vision_cells(scenarios)]


def vision_targets():
    tables = [f"paper_tables/{VISION_TABLES[sc]}.{ext}" for sc in VISION["datasets"] for ext in TABLE_EXTS]
    return tables + ["figures/fig6_vision_tradeoff.png", "figures/fig7_vision_ofmu_diagnostics.png"]


# ---- LLM --------------------------------------------------------------------------------------------------
LLM_EVAL = ("eval", "device")


def llm_retain_weights(split):
    return [f"results/llm/models/retain_{split}_s{s}/model.safetensors" for s in LLM["reference_seeds"]]


def llm_full_weights():
    return f"results/llm/models/full_s{LLM['model_seed']}/model.safetensors"


def llm_run_files(suffix=".csv"):
    return [f"results/llm/runs/{split}/{m}/{s}/s{seed}{suffix}" for split in LLM["splits"] for m, s in LLM_RUNS
            for seed in LLM["seeds"]]


def llm_reference_files(suffix=".csv"):
    return [f"results/llm/runs/{split}/reference{suffix}" for split in LLM["splits"]]


def llm_targets():
    tables = [f"paper_tables/{t}.{ext}" for t in ["tab4_llm_tofu", "tab5_llm_hard_probes", "tab6_llm_ablation"]
              for ext in TABLE_EXTS]
    figures = ["fig8_llm_difficulty_vs_utility", "fig9_llm_fq_mu_tradeoff", "fig10_llm_ofmu_diagnostics"]
    return tables + [f"figures/{f}.png" for f in figures]


FIDELITY_TARGETS = ["figures/fig11_first_order_fidelity.png",
                    *[f"paper_tables/tab7_first_order_fidelity.{ext}" for ext in TABLE_EXTS]]


def fidelity_runs():
    return [f"results/{stage}/first_order_fidelity.csv" for stage in ("vision", "llm") if stage in config["stages"]]


def all_targets():
    targets = list(FIDELITY_TARGETS) if fidelity_runs() else []  # a copy: += below must not grow the constant
    if "theory" in config["stages"]:
        targets += theory_targets()
    if "vision" in config["stages"]:
        targets += vision_targets()
    if "llm" in config["stages"]:
        targets += llm_targets()
    return targets + ["paper_tables/provenance.json"]
