# First-order OFMU against the exact one: float64 V-curves (computed here, seconds) and the float32 runs
# of the stages (rules vision_first_order_fidelity, llm_first_order_fidelity) -> fig11 and tab7.


rule first_order_fidelity_figure:
    input:
        runs=fidelity_runs(),
    output:
        figure=in_report("figures/fig11_first_order_fidelity.png", "fig11_first_order_fidelity", "fidelity", "figures"),
        table=table_files("paper_tables/tab7_first_order_fidelity", "tab7_first_order_fidelity", "fidelity"),
    params:
        fd_step=canonical(method_settings("OFMU", None)["fd_step"]),
    log:
        "logs/figures/first_order_fidelity.log",
    conda:
        "../../environment.yml"
    resources:
        **job_resources("light"),
    script:
        "../scripts/first_order_fidelity_figure.py"
