# Provenance of the committed outputs: code commit, config hash, wall time per rule (from benchmark files).


rule provenance:
    input:
        outputs=lambda w: [t for t in all_targets() if t != "paper_tables/provenance.json"],
    output:
        in_report("paper_tables/provenance.json", "provenance", "provenance"),
    params:
        config=canonical(config),
        benchmarks_dir="results/benchmarks",
    conda:
        "../../environment.yml"
    log:
        "logs/provenance.log",
    resources:
        **job_resources("light"),
    script:
        "../scripts/provenance.py"
