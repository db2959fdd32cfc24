# OFMU reproducible paper artifact. `snakemake --cores all` runs the default (CPU, offline) tier:
# theory checks, then the unlearning stages enabled in config["stages"], then every figure and table.
# Tiers: --configfile config/smoke.yaml (tests, seconds) | config/config.yaml (default, <= 30 min on 2 cores) |
# config/extended.yaml (what does not fit the default: more cells, methods, fidelity, Figure 1) | config/paper.yaml (GPU).
import os

# offline unless the caller says otherwise: no hub on these machines, so a lookup fails at once instead of after a
# 50 s timeout. The paper tier downloads Llama and locuslab/TOFU: `HF_HUB_OFFLINE=0 snakemake --configfile
# config/paper.yaml` (or `make HF_HUB_OFFLINE=0 ...`) on a machine with network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# The default tier's config is read only when no --configfile is given: a user's config REPLACES it (a key it
# omits gets the schema's default, never the default tier's value); --config KEY=VALUE still edits either.
if not workflow.config_settings.configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


wildcard_constraints:
    seed=r"\d+",
    scenario="random|class",
    dataset="[a-z0-9_]+",
    split=r"forget\d+",
    method="[^/]+",
    stage="vision|llm",
    cell=r"[a-z0-9_]+/(random|class)|forget\d+",
    label=r"(?!reference\b)[^/.]+",  # a method or variant; never the reference rows' folder


# `snakemake --report report.html` after a run (same --configfile): every figure and table with its caption
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/theory.smk"


# a stage's rules exist only when the stage runs: a config may leave out the sections of stages it skips
if "vision" in config["stages"]:

    include: "workflow/rules/vision.smk"


if "llm" in config["stages"]:

    include: "workflow/rules/llm.smk"


if UNLEARNING_STAGES:

    include: "workflow/rules/comparison.smk"


if fidelity_runs():

    include: "workflow/rules/fidelity.smk"


include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
