# Theory stage: cvxpy references -> real solvers at geometric checkpoints -> rate fits and bound checks.
# theory_check FAILS the pipeline when any claim check fails.


rule theory_run:
    output:
        rows="results/theory/runs/{claim}/{family}.csv",
        sidecar="results/theory/runs/{claim}/{family}.json",
    params:
        spec=lambda w: claim_spec_of(w.claim),
        seeds=THEORY["seeds"],
    conda:
        "../../environment.yml"
    log:
        "logs/theory/run_{claim}_{family}.log",
    benchmark:
        "results/benchmarks/theory_run/{claim}_{family}.tsv"
    wildcard_constraints:
        claim="C[0-9]+",
    threads: 1
    resources:
        **job_resources("theory"),
    script:
        "../scripts/theory_run.py"


rule theory_check:
    input:
        runs=lambda w: theory_run_files(w.claim),
    output:
        verdicts="results/theory/checks/{claim}.csv",
    params:
        spec=lambda w: claim_spec_of(w.claim),
    conda:
        "../../environment.yml"
    log:
        "logs/theory/check_{claim}.log",
    benchmark:
        "results/benchmarks/theory_check/{claim}.tsv"
    resources:
        **job_resources("light"),
    script:
        "../scripts/theory_check.py"


rule theory_figure:
    input:
        runs=lambda w: theory_run_files(CLAIM_OF_FIGURE[w.figure]),
        verdicts=lambda w: f"results/theory/checks/{CLAIM_OF_FIGURE[w.figure]}.csv",
    output:
        figure=in_report("figures/{figure}.png", "theory_figure", "theory", "figures"),
    params:
        spec=lambda w: claim_spec_of(CLAIM_OF_FIGURE[w.figure]),
        claim=lambda w: CLAIM_OF_FIGURE[w.figure],
    conda:
        "../../environment.yml"
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(THEORY_FIGURES.values()),
    resources:
        **job_resources("light"),
    script:
        "../scripts/theory_figure.py"


rule theory_table:
    input:
        verdicts=expand("results/theory/checks/{claim}.csv", claim=THEORY["claims"]),
    output:
        table=table_files("paper_tables/tab1_theory_claims", "theory_table", "theory"),
        data=source_rows("tab1_theory_claims"),
    conda:
        "../../environment.yml"
    log:
        "logs/tables/tab1_theory_claims.log",
    resources:
        **job_resources("light"),
    script:
        "../scripts/theory_table.py"
