# Vision stage: Original (full training set) and Retrain (D_r only) cached as safetensors -> their reference
# rows per (dataset, scenario, seed) -> one job per (dataset, scenario, method, setting, seed) -> tables
# (random, class-wise) and figures. Each job's params hold only what it reads: editing one method's file
# reruns that method's jobs and what reads them; a model's training depends on its own settings only.


rule vision_original:
    output:
        "results/vision/models/{dataset}/original_s{seed}.safetensors",
    params:
        cfg=vision_cfg("data_root", "data_cache", *VISION_MODEL, "train", train=True),
    log:
        "logs/vision/original_{dataset}_s{seed}.log",
    benchmark:
        "results/benchmarks/vision_original/{dataset}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    script:
        "../scripts/vision_train.py"


rule vision_retrain:
    output:
        "results/vision/models/{dataset}/retrain_{scenario}_s{seed}.safetensors",
    params:
        cfg=vision_cfg(*VISION_DATA, *VISION_MODEL, "train", train=True),
    log:
        "logs/vision/retrain_{dataset}_{scenario}_s{seed}.log",
    benchmark:
        "results/benchmarks/vision_retrain/{dataset}_{scenario}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    script:
        "../scripts/vision_train.py"


rule vision_references:
    input:
        original="results/vision/models/{dataset}/original_s{seed}.safetensors",
        retrain="results/vision/models/{dataset}/retrain_{scenario}_s{seed}.safetensors",
    output:
        rows="results/vision/runs/{dataset}/{scenario}/reference/s{seed}.csv",
    params:
        domain="vision",
        cfg=vision_cfg(*VISION_DATA, *VISION_MODEL, *VISION_EVAL),
    log:
        "logs/vision/references_{dataset}_{scenario}_s{seed}.log",
    benchmark:
        "results/benchmarks/vision_references/{dataset}_{scenario}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    script:
        "../scripts/unlearn_references.py"


rule vision_run:
    input:
        original="results/vision/models/{dataset}/original_s{seed}.safetensors",
    output:
        rows="results/vision/runs/{dataset}/{scenario}/{method}/{setting}/s{seed}.csv",
        diagnostics="results/vision/runs/{dataset}/{scenario}/{method}/{setting}/s{seed}.diagnostics.csv",
    params:
        domain="vision",
        cfg=vision_cfg(*VISION_DATA, *VISION_MODEL, *VISION_EVAL),
        budget=canonical(VISION.get("unlearn")),
        settings=lambda w: VISION_RUNS[(w.method, w.setting)],
    log:
        "logs/vision/run_{dataset}_{scenario}_{method}_{setting}_s{seed}.log",
    benchmark:
        "results/benchmarks/vision_run/{dataset}_{scenario}_{method}_{setting}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    script:
        "../scripts/unlearn_run.py"


rule vision_table:
    input:
        references=lambda w: vision_reference_files([SCENARIO_OF_TABLE[w.table]]),
        runs=lambda w: vision_run_files(".csv", [SCENARIO_OF_TABLE[w.table]]),
    output:
        expand("paper_tables/{{table}}.{ext}", ext=TABLE_EXTS),
    params:
        scenario=lambda w: SCENARIO_OF_TABLE[w.table],
        order=["Retrain", "Original", *[m if s == "default" else s for m, s in VISION_RUNS]],
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(VISION_TABLES.values()),
    conda:
        "../../environment.yml"
    script:
        "../scripts/vision_tables.py"


rule vision_figures:
    input:
        references=vision_reference_files(),
        runs=vision_run_files(".csv"),
        diagnostics=vision_run_files(".diagnostics.csv"),
    output:
        tradeoff="figures/fig6_vision_tradeoff.png",
        diagnostics="figures/fig7_vision_ofmu_diagnostics.png",
    log:
        "logs/figures/vision_figures.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/vision_figures.py"


rule vision_first_order_fidelity:
    input:
        original=f"results/vision/models/{FIDELITY_CELL['dataset']}/original_s{FIDELITY_CELL['seed']}.safetensors",
    output:
        "results/vision/first_order_fidelity.csv",
    params:
        domain="vision",
        cell=canonical({k: FIDELITY_CELL[k] for k in ("dataset", "scenario")}),
        seed=FIDELITY_CELL["seed"],
        cfg=vision_cfg(*VISION_DATA, *VISION_MODEL, *VISION_EVAL)(FIDELITY_CELL),
        settings=canonical(method_settings("OFMU", "vision")),
        batch_size=VISION["unlearn"]["batch_size"],
        iterations=VISION["fidelity_iterations"],
        problem=f"vision: {FIDELITY_CELL['dataset']} {FIDELITY_CELL['scenario']} ({VISION['model']})",
    log:
        "logs/vision/first_order_fidelity.log",
    benchmark:
        "results/benchmarks/vision_first_order_fidelity.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    script:
        "../scripts/first_order_fidelity.py"
