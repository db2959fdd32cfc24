# Vision stage: Original (training subset) and Retrain (D_r only) cached as safetensors per seed (the selection
# seed and the reported ones) -> their reference rows per (dataset, scenario, seed) -> sweep + selection
# (comparison.smk) -> one job per (dataset, scenario, method): its selected setting on every reported seed -> tables
# (random, class-wise) and figures. Each job's params hold only what it reads: editing one method's file
# reruns that method's jobs and what reads them; a model's training depends on its own settings only.


rule vision_original:
    output:
        "results/vision/models/{dataset}/original_s{seed}.safetensors",
    params:
        cfg=vision_cfg("data_root", "data_cache", "train_subset", *VISION_MODEL, "train", train=True),
    log:
        "logs/vision/original_{dataset}_s{seed}.log",
    benchmark:
        "results/benchmarks/vision_original/{dataset}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    resources:
        **job_resources("train", "vision"),
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
    resources:
        **job_resources("train", "vision"),
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
    resources:
        **job_resources("evaluate", "vision"),
    script:
        "../scripts/unlearn_references.py"


rule vision_run:
    input:
        unpack(lambda w: reported_inputs("vision", f"{w.dataset}/{w.scenario}")),
        selected="results/vision/selected/{dataset}/{scenario}/{label}.json",
    output:
        rows="results/vision/runs/{dataset}/{scenario}/{label}.csv",
        diagnostics="results/vision/runs/{dataset}/{scenario}/{label}.diagnostics.csv",
    params:
        domain="vision",
        cfg=vision_cfg(*VISION_DATA, *VISION_MODEL, *VISION_EVAL),
        budget=canonical(VISION.get("unlearn")),
        checkpoints=sorted(VISION.get("checkpoints", [1.0])),
        seeds=VISION["seeds"],
    log:
        "logs/vision/run_{dataset}_{scenario}_{label}.log",
    benchmark:
        "results/benchmarks/vision_run/{dataset}_{scenario}_{label}.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    resources:
        **job_resources("unlearn", "vision"),
    script:
        "../scripts/unlearn_run.py"


rule vision_table:
    input:
        signal="results/vision/signal.json",
        references=lambda w: reference_files("vision"),
        runs=lambda w: run_files("vision", cells=[c for c in CELLS["vision"] if c.endswith(SCENARIO_OF_TABLE[w.table])]),
        selected=selected_files("vision"),
    output:
        table=table_files("paper_tables/{table}", "vision_table", "vision"),
        costs=table_files("paper_tables/{table}_costs", "vision_costs", "vision"),
        data=source_rows("{table}"),
    params:
        scenario=lambda w: SCENARIO_OF_TABLE[w.table],
        order=stage_labels("vision"),
        seeds=VISION["seeds"],
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(VISION_TABLES.values()),
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/vision_tables.py"


rule vision_figures:
    input:
        signal="results/vision/signal.json",
        references=reference_files("vision"),
        sweeps=sweep_files("vision"),
        selected=selected_files("vision"),
        runs=run_files("vision"),
        diagnostics=run_files("vision", ".diagnostics.csv"),
    output:
        fronts=in_report("figures/fig6_vision_fronts.png", "fig6_vision_fronts", "vision", "figures"),
        diagnostics=in_report("figures/fig7_vision_ofmu_diagnostics.png", "fig7_vision_ofmu_diagnostics", "vision",
                              "figures"),
    params:
        seed=VISION["selection_seed"],
        seeds=VISION["seeds"],
    log:
        "logs/figures/vision_figures.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
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
        iterations=VISION.get("fidelity_iterations"),
        problem=f"vision: {FIDELITY_CELL['dataset']} {FIDELITY_CELL['scenario']} ({VISION['model']})",
    log:
        "logs/vision/first_order_fidelity.log",
    benchmark:
        "results/benchmarks/vision_first_order_fidelity.tsv"
    conda:
        "../../environment.yml"
    threads: VISION.get("threads", 1)
    resources:
        **job_resources("unlearn", "vision"),
    script:
        "../scripts/first_order_fidelity.py"
