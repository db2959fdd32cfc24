# LLM stage (TOFU protocol on a generated fictitious-author corpus), one replicate per seed (selection and reported:
# results/llm/s<seed>/): corpus + tokenizer -> full model and retain-only models per split (cached) -> FQ references
# and the Finetuned / Retain rows per (split, seed) -> sweep +
# selection (comparison.smk) -> one job per (split, method): its selected setting on every reported seed -> Table 1
# analog, hard probes, fronts, OFMU diagnostics; Figure 1 analog (one job per method; extended tier). Each
# job's params hold only what it reads.


rule llm_corpus:
    priority: 10  # the LLM chain is the default tier's critical path: start it first
    output:
        meta=llm_corpus("{seed}"),
    params:
        cfg=pick(LLM, "corpus", "vocab_size", *LLM_PRETRAINED, *LLM_DATASET),
    log:
        "logs/llm/corpus_s{seed}.log",
    benchmark:
        "results/benchmarks/llm_corpus/s{seed}.tsv"
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/llm_corpus.py"


rule llm_train:
    priority: 10  # the LLM chain is the default tier's critical path: start it first
    input:
        meta=llm_corpus("{seed}"),
    output:
        weights="results/llm/s{seed}/models/{model}/model.safetensors",
    params:
        cfg=pick(LLM, "train", "model", "device"),
    log:
        "logs/llm/train_s{seed}_{model}.log",
    benchmark:
        "results/benchmarks/llm_train/s{seed}_{model}.tsv"
    conda:
        "../../environment.yml"
    wildcard_constraints:
        model=r"full_r\d+|retain_forget\d+_r\d+",
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("train", "llm"),
    script:
        "../scripts/llm_train.py"


rule llm_fq_references:
    priority: 10  # the LLM chain is the default tier's critical path: start it first
    input:
        meta=llm_corpus("{seed}"),
        retain=lambda w: llm_retain_weights(w.split, w.seed),
    output:
        refs=llm_fq_references("{split}", "{seed}"),
    params:
        cfg=pick(LLM, *LLM_EVAL),
    log:
        "logs/llm/fq_references_{split}_s{seed}.log",
    benchmark:
        "results/benchmarks/llm_fq_references/{split}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("evaluate", "llm"),
    script:
        "../scripts/llm_references.py"


rule llm_references:
    priority: 10  # the LLM chain is the default tier's critical path: start it first
    input:
        meta=llm_corpus("{seed}"),
        full=lambda w: llm_full_weights(w.seed),
        retain=lambda w: llm_retain_weights(w.split, w.seed),
        refs=llm_fq_references("{split}", "{seed}"),
    output:
        rows="results/llm/runs/{split}/reference/s{seed}.csv",
        samples="results/llm/runs/{split}/reference/s{seed}.samples.csv",
        probes="results/llm/runs/{split}/reference/s{seed}.probes.csv",
        **attack_records("results/llm/runs/{split}/reference/s{seed}.attacks.csv"),
    params:
        domain="llm",
        cfg=pick(LLM, *LLM_EVAL),
    log:
        "logs/llm/references_{split}_s{seed}.log",
    benchmark:
        "results/benchmarks/llm_references/{split}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("evaluate", "llm"),
    script:
        "../scripts/unlearn_references.py"


rule llm_run:
    input:
        unpack(lambda w: reported_inputs("llm", w.split)),
        selected="results/llm/selected/{split}/{label}.json",
    output:
        rows="results/llm/runs/{split}/{label}.csv",
        samples="results/llm/runs/{split}/{label}.samples.csv",
        probes="results/llm/runs/{split}/{label}.probes.csv",
        diagnostics="results/llm/runs/{split}/{label}.diagnostics.csv",
        **attack_records("results/llm/runs/{split}/{label}.attacks.csv"),
    params:
        domain="llm",
        cfg=pick(LLM, *LLM_EVAL),
        budget=canonical(LLM.get("unlearn")),
        checkpoints=sorted(LLM.get("checkpoints", [1.0])),
        seeds=LLM["seeds"],
    log:
        "logs/llm/run_{split}_{label}.log",
    benchmark:
        "results/benchmarks/llm_run/{split}_{label}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("unlearn", "llm"),
    script:
        "../scripts/unlearn_run.py"


rule llm_sample_costs:
    input:
        unpack(lambda w: {k: v for k, v in start_inputs("llm", LLM["sample_costs"]["split"], LLM["selection_seed"]).items() if k != "refs"}),
    output:
        costs="results/llm/sample_costs/{method}.csv",
    params:
        cfg=canonical({"device": LLM["device"], "batch_size": LLM["unlearn"]["batch_size"],
                       "sample_costs": {k: v for k, v in (LLM.get("sample_costs") or {}).items() if k != "methods"}}),
        settings=lambda w: canonical(method_settings(w.method, "llm")),
        seed=LLM.get("selection_seed"),  # its replicate
    log:
        "logs/llm/sample_costs_{method}.log",
    benchmark:
        "results/benchmarks/llm_sample_costs/{method}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("evaluate", "llm"),
    script:
        "../scripts/llm_sample_costs.py"


rule llm_tables:
    input:
        signal="results/llm/signal.json",
        references=reference_files("llm"),
        runs=run_files("llm"),
        selected=selected_files("llm"),
        reference_probes=[f.replace(".csv", ".probes.csv") for f in reference_files("llm")],
        probes=run_files("llm", ".probes.csv"),
    output:
        tofu=table_files("paper_tables/tab4_llm_tofu", "tab4_llm_tofu", "llm"),
        tofu_rows=source_rows("tab4_llm_tofu"),
        # the hard probes are the generated corpus' (paraphrased, two-hop, German questions): real TOFU has none
        **({} if LLM_DATASET else {"probes": table_files("paper_tables/tab5_llm_hard_probes", "tab5_llm_hard_probes", "llm"),
                                   "probe_rows": source_rows("tab5_llm_hard_probes")}),
    params:
        order=stage_labels("llm"),
        setting=llm_setting(),
    log:
        "logs/tables/llm_tables.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/llm_tables.py"


rule llm_attack_outputs:
    input:
        attacks=[f.replace(".csv", ".attacks.csv") for f in reference_files("llm", LLM["seeds"]) + run_files("llm")],
    output:
        table=table_files("paper_tables/tab12_llm_attacks", "tab12_llm_attacks", "llm"),
        rows=source_rows("tab12_llm_attacks"),
        figure=in_report("figures/fig14_llm_attacks.png", "fig14_llm_attacks", "llm", "figures"),
    params:
        order=stage_labels("llm"),
        seeds=LLM["seeds"],
    log:
        "logs/tables/llm_attacks.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/llm_attack_outputs.py"


rule llm_figures:
    input:
        signal="results/llm/signal.json",
        references=reference_files("llm"),
        sweeps=sweep_files("llm"),
        selected=selected_files("llm"),
        runs=run_files("llm"),
        diagnostics=run_files("llm", ".diagnostics.csv"),
    output:
        fronts=in_report("figures/fig9_llm_fronts.png", "fig9_llm_fronts", "llm", "figures"),
        diagnostics=in_report("figures/fig10_llm_ofmu_diagnostics.png", "fig10_llm_ofmu_diagnostics", "llm", "figures"),
    params:
        seed=LLM["selection_seed"],
        seeds=LLM["seeds"],
    log:
        "logs/figures/llm_figures.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/llm_figures.py"


rule llm_difficulty_figure:
    input:
        costs=expand("results/llm/sample_costs/{method}.csv", method=(LLM.get("sample_costs") or {}).get("methods", [])),
    output:
        in_report("figures/fig8_llm_difficulty_vs_utility.png", "fig8_llm_difficulty_vs_utility", "llm", "figures"),
    log:
        "logs/figures/llm_difficulty.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/llm_difficulty_figure.py"


rule llm_first_order_fidelity:
    input:
        unpack(lambda w: start_inputs("llm", max(LLM["splits"]), LLM["selection_seed"])),
    output:
        "results/llm/first_order_fidelity.csv",
    params:
        domain="llm",
        cell={"split": max(LLM["splits"])} if LLM else {},  # the largest forget set, whatever the order
        seed=LLM.get("selection_seed"),  # its replicate, as vision's fidelity cell
        cfg=pick(LLM, *LLM_EVAL),
        settings=canonical(method_settings("OFMU", "llm")),
        batch_size=LLM["unlearn"]["batch_size"],
        iterations=LLM.get("fidelity_iterations"),
        problem=f"llm: {max(LLM['splits'])} (GPT-2)" if LLM else "",
    log:
        "logs/llm/first_order_fidelity.log",
    benchmark:
        "results/benchmarks/llm_first_order_fidelity.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    resources:
        **job_resources("unlearn", "llm"),
    script:
        "../scripts/first_order_fidelity.py"
