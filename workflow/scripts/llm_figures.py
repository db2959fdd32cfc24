"""Thin adapter: Figure 1 analog, FQ-vs-MU trade-off, OFMU diagnostics of the LLM stage."""
from ofmu.logs import log_to
from ofmu.plotting.llm import plot_difficulty
from ofmu.plotting.unlearning import plot_ofmu_diagnostics, plot_tradeoff
from ofmu.tables import read_results

with log_to(snakemake.log[0]):
    plot_difficulty(read_results(snakemake.input.costs), snakemake.output.difficulty)
    frame = read_results([*snakemake.input.references, *snakemake.input.runs])
    plot_tradeoff(frame, snakemake.output.tradeoff, ["split"], "model_utility", "forget_quality",
                  "model utility (MU)", "forget quality (FQ, log)", target="Retain", start="Finetuned", ylog=True,
                  title="FQ vs MU (mean ± std of MU over seeds); the goal is the Retain star: high on both")
    plot_ofmu_diagnostics(read_results(snakemake.input.diagnostics), snakemake.output.diagnostics, ["split"],
                          "OFMU diagnostics on the LLM stage")
