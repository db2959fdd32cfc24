# Both unlearning stages alike (README "How methods are compared"):
#   sweep       every grid point of a method (config/methods/<Method>.yaml, `sweep`) on the selection seed, each
#               evaluated at the stage's checkpoints -> one job per (stage, cell, method)
#   select      the stage's selection rule on those rows alone (never a reported seed) -> selected/<label>.json
#   signal      can the setup tell forgotten from not forgotten? (fails naming the setting to change)
#   sensitivity OFMU one setting at a time around its selected point, on the configured cell and seeds
#   tables      selected settings (tab8), fronts (tab9), equal passes vs equal gradients (tab11), sensitivity
#               (tab6 + fig12)
#   verdict     OFMU minus each baseline per cell and headline metric, paired over the reported seeds, with
#               intervals and Holm-corrected decisions (tab10 + verdict.md, which the README quotes)
# The reported runs (one job per cell and method: its selected setting on every reported seed) are the stages'
# own rules (their per-item tables differ): vision_run, llm_run.


rule sweep:
    priority: 5  # before the vision models that no sweep waits for
    input:
        unpack(lambda w: start_inputs(w.stage, w.cell, STAGE_CONFIG[w.stage]["selection_seed"])),
    output:
        rows="results/{stage}/sweeps/{cell}/{label}.csv",
        diagnostics="results/{stage}/sweeps/{cell}/{label}.diagnostics.csv",
    params:
        domain=lambda w: w.stage,
        cfg=lambda w: job_cfg(w.stage, w.cell),
        budget=lambda w: canonical(STAGE_CONFIG[w.stage]["unlearn"]),
        checkpoints=lambda w: sorted(STAGE_CONFIG[w.stage]["checkpoints"]),
        seed=lambda w: STAGE_CONFIG[w.stage]["selection_seed"],
        method=lambda w: SWEEPS[w.stage][w.label]["method"],
        points=lambda w: SWEEPS[w.stage][w.label]["points"],
        signal=lambda w: canonical(STAGE_CONFIG[w.stage].get("signal", {})),
    log:
        "logs/{stage}/sweep_{cell}_{label}.log",
    benchmark:
        "results/benchmarks/{stage}_sweep/{cell}_{label}.tsv"
    conda:
        "../../environment.yml"
    threads: lambda w: STAGE_CONFIG[w.stage].get("threads", 1)
    resources:
        **job_resources("unlearn", "wildcard"),
    script:
        "../scripts/unlearn_sweep.py"


rule select:
    input:
        sweep="results/{stage}/sweeps/{cell}/{label}.csv",
        references=lambda w: reference_file(w.stage, w.cell, STAGE_CONFIG[w.stage]["selection_seed"]),
    output:
        "results/{stage}/selected/{cell}/{label}.json",
    params:
        domain=lambda w: w.stage,
        rule=lambda w: canonical(STAGE_CONFIG[w.stage]["selection"]),
        signal=lambda w: canonical(STAGE_CONFIG[w.stage].get("signal") or {}),
        seed=lambda w: STAGE_CONFIG[w.stage]["selection_seed"],
    log:
        "logs/{stage}/select_{cell}_{label}.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/select_setting.py"


rule signal:
    input:
        references=lambda w: reference_files(w.stage),
    output:
        "results/{stage}/signal.json",
    params:
        domain=lambda w: w.stage,
        signal=lambda w: canonical(STAGE_CONFIG[w.stage].get("signal") or {}),
        seed=lambda w: STAGE_CONFIG[w.stage]["selection_seed"],
    log:
        "logs/{stage}/signal.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/signal_check.py"


rule sensitivity:
    input:
        unpack(lambda w: start_inputs(w.stage, w.cell, int(w.seed))),
        selected="results/{stage}/selected/{cell}/OFMU.json",
    output:
        rows="results/{stage}/sensitivity/{cell}/s{seed}.csv",
        diagnostics="results/{stage}/sensitivity/{cell}/s{seed}.diagnostics.csv",
    params:
        domain=lambda w: w.stage,
        cfg=lambda w: job_cfg(w.stage, w.cell),
        budget=lambda w: canonical(STAGE_CONFIG[w.stage]["unlearn"]),
        checkpoints=lambda w: sorted(STAGE_CONFIG[w.stage]["checkpoints"]),
        grid=canonical(sensitivity_grid("OFMU")),
    log:
        "logs/{stage}/sensitivity_{cell}_s{seed}.log",
    benchmark:
        "results/benchmarks/{stage}_sensitivity/{cell}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: lambda w: STAGE_CONFIG[w.stage].get("threads", 1)
    resources:
        **job_resources("unlearn", "wildcard"),
    script:
        "../scripts/unlearn_sweep.py"


rule comparison_tables:
    input:
        signal="results/{stage}/signal.json",
        sweeps=lambda w: sweep_files(w.stage),
        selected=lambda w: selected_files(w.stage),
        references=lambda w: reference_files(w.stage),
        runs=lambda w: run_files(w.stage),
    output:
        selection=table_files("paper_tables/tab8_{stage}_selection", "tab8_selection", lambda w: w.stage),
        fronts=table_files("paper_tables/tab9_{stage}_fronts", "tab9_fronts", lambda w: w.stage),
        equal_compute=table_files("paper_tables/tab11_{stage}_equal_compute", "tab11_equal_compute", lambda w: w.stage),
        # the rows both tables are computed from (committed; tests/unit/test_committed_tables.py recomputes them)
        sweep_rows=source_rows("tab8_{stage}_selection", "sweep"),
        selected_rows=source_rows("tab8_{stage}_selection", "selected"),
        run_rows=source_rows("tab9_{stage}_fronts", "runs"),
        reference_rows=source_rows("tab9_{stage}_fronts", "references"),
        hv_rows=source_rows("tab9_{stage}_fronts", "hv"),
    params:
        domain=lambda w: w.stage,
        order=lambda w: list(SWEEPS[w.stage]),
        seed=lambda w: STAGE_CONFIG[w.stage]["selection_seed"],
    log:
        "logs/tables/{stage}_comparison.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/comparison_tables.py"


rule sensitivity_outputs:
    input:
        unpack(lambda w: {f"{stage}_{kind}": files(stage) for stage in UNLEARNING_STAGES if sensitivity_files(stage)
                          for kind, files in (("runs", sensitivity_files), ("references", reference_files),
                                              ("selected", sensitivity_selected))}),
    output:
        figure=in_report("figures/fig12_ofmu_sensitivity.png", "fig12_ofmu_sensitivity", "sensitivity", "figures"),
        table=table_files("paper_tables/tab6_ofmu_sensitivity", "tab6_ofmu_sensitivity", "sensitivity"),
        rows=source_rows("tab6_ofmu_sensitivity"),
        reference_rows=source_rows("tab6_ofmu_sensitivity", "references"),
    log:
        "logs/figures/ofmu_sensitivity.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/sensitivity_outputs.py"


rule verdict:
    input:
        **verdict_inputs(),
    output:
        table=table_files("paper_tables/tab10_verdict", "tab10_verdict", "verdict"),
        pairs=source_rows("tab10_verdict", "pairs"),
        words=in_report("paper_tables/verdict.md", "verdict_words", "verdict"),
    params:
        verdict=canonical(config.get("verdict") or {}),
        stages=UNLEARNING_STAGES,
    log:
        "logs/tables/verdict.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/verdict.py"
