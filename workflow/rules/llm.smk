# LLM stage (TOFU protocol on a generated fictitious-author corpus): corpus + tokenizer -> full model and
# retain-only models per split (cached) -> FQ references and the Finetuned / Retain rows per split -> one job
# per (split, method, setting, seed) -> Table 1 analog, hard probes, ablation; Figure 1 analog (one job per
# method), FQ-vs-MU trade-off, OFMU diagnostics. Each job's params hold only what it reads.


rule llm_corpus:
    output:
        meta="results/llm/corpus/corpus.json",
    params:
        cfg=pick(LLM, "corpus", "vocab_size"),
    log:
        "logs/llm/corpus.log",
    benchmark:
        "results/benchmarks/llm_corpus/corpus.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/llm_corpus.py"


rule llm_train:
    input:
        meta="results/llm/corpus/corpus.json",
    output:
        weights="results/llm/models/{model}/model.safetensors",
    params:
        cfg=pick(LLM, "train", "model", "device"),
    log:
        "logs/llm/train_{model}.log",
    benchmark:
        "results/benchmarks/llm_train/{model}.tsv"
    conda:
        "../../environment.yml"
    wildcard_constraints:
        model=r"full_s\d+|retain_forget\d+_s\d+",
    threads: LLM.get("threads", 1)
    script:
        "../scripts/llm_train.py"


rule llm_fq_references:
    input:
        meta="results/llm/corpus/corpus.json",
        retain=lambda w: llm_retain_weights(w.split),
    output:
        refs="results/llm/references/{split}.json",
    params:
        cfg=pick(LLM, *LLM_EVAL),
    log:
        "logs/llm/fq_references_{split}.log",
    benchmark:
        "results/benchmarks/llm_fq_references/{split}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    script:
        "../scripts/llm_references.py"


rule llm_references:
    input:
        meta="results/llm/corpus/corpus.json",
        full=llm_full_weights() if LLM else [],
        retain=lambda w: llm_retain_weights(w.split),
        refs="results/llm/references/{split}.json",
    output:
        rows="results/llm/runs/{split}/reference.csv",
        samples="results/llm/runs/{split}/reference.samples.csv",
        probes="results/llm/runs/{split}/reference.probes.csv",
    params:
        domain="llm",
        cfg=pick(LLM, *LLM_EVAL, "model_seed", "reference_seeds"),
    log:
        "logs/llm/references_{split}.log",
    benchmark:
        "results/benchmarks/llm_references/{split}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    script:
        "../scripts/unlearn_references.py"


rule llm_run:
    input:
        meta="results/llm/corpus/corpus.json",
        full=llm_full_weights() if LLM else [],
        refs="results/llm/references/{split}.json",
    output:
        rows="results/llm/runs/{split}/{method}/{setting}/s{seed}.csv",
        samples="results/llm/runs/{split}/{method}/{setting}/s{seed}.samples.csv",
        probes="results/llm/runs/{split}/{method}/{setting}/s{seed}.probes.csv",
        diagnostics="results/llm/runs/{split}/{method}/{setting}/s{seed}.diagnostics.csv",
    params:
        domain="llm",
        cfg=pick(LLM, *LLM_EVAL),
        budget=canonical(LLM.get("unlearn")),
        settings=lambda w: LLM_RUNS[(w.method, w.setting)],
    log:
        "logs/llm/run_{split}_{method}_{setting}_s{seed}.log",
    benchmark:
        "results/benchmarks/llm_run/{split}_{method}_{setting}_s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    script:
        "../scripts/unlearn_run.py"


rule llm_sample_costs:
    input:
        meta="results/llm/corpus/corpus.json",
        full=llm_full_weights() if LLM else [],
    output:
        costs="results/llm/sample_costs/{method}.csv",
    params:
        cfg=canonical({"device": LLM["device"], "batch_size": LLM["unlearn"]["batch_size"],
                       "sample_costs": {k: v for k, v in LLM["sample_costs"].items() if k != "methods"}}),
        settings=lambda w: canonical(method_settings(w.method, "llm")),
    log:
        "logs/llm/sample_costs_{method}.log",
    benchmark:
        "results/benchmarks/llm_sample_costs/{method}.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    script:
        "../scripts/llm_sample_costs.py"


rule llm_tables:
    input:
        references=llm_reference_files(),
        runs=llm_run_files(),
        reference_probes=llm_reference_files(".probes.csv"),
        probes=llm_run_files(".probes.csv"),
    output:
        tofu=expand("paper_tables/tab4_llm_tofu.{ext}", ext=TABLE_EXTS),
        probes=expand("paper_tables/tab5_llm_hard_probes.{ext}", ext=TABLE_EXTS),
        ablation=expand("paper_tables/tab6_llm_ablation.{ext}", ext=TABLE_EXTS),
    params:
        order=["Finetuned", "Retain", *[m if s == "default" else s for m, s in LLM_RUNS]],
        variants=sorted(LLM.get("variants") or {}),
    log:
        "logs/tables/llm_tables.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/llm_tables.py"


rule llm_figures:
    input:
        references=llm_reference_files(),
        runs=llm_run_files(),
        costs=expand("results/llm/sample_costs/{method}.csv", method=LLM["sample_costs"]["methods"]) if LLM else [],
        diagnostics=llm_run_files(".diagnostics.csv"),
    output:
        difficulty="figures/fig8_llm_difficulty_vs_utility.png",
        tradeoff="figures/fig9_llm_fq_mu_tradeoff.png",
        diagnostics="figures/fig10_llm_ofmu_diagnostics.png",
    log:
        "logs/figures/llm_figures.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/llm_figures.py"


rule llm_first_order_fidelity:
    input:
        meta="results/llm/corpus/corpus.json",
        full=llm_full_weights() if LLM else [],
        refs=f"results/llm/references/{max(LLM['splits'])}.json" if LLM else [],
    output:
        "results/llm/first_order_fidelity.csv",
    params:
        domain="llm",
        cell={"split": max(LLM["splits"])} if LLM else {},  # the largest forget set, whatever the order
        seed=0,
        cfg=pick(LLM, *LLM_EVAL),
        settings=canonical(method_settings("OFMU", "llm")),
        batch_size=LLM["unlearn"]["batch_size"],
        iterations=LLM.get("fidelity_iterations", 12),
        problem=f"llm: {max(LLM['splits'])} (GPT-2)" if LLM else "",
    log:
        "logs/llm/first_order_fidelity.log",
    benchmark:
        "results/benchmarks/llm_first_order_fidelity.tsv"
    conda:
        "../../environment.yml"
    threads: LLM.get("threads", 1)
    script:
        "../scripts/first_order_fidelity.py"
