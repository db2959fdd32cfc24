"""Thin adapter: UA-vs-RA trade-off per (dataset, scenario) and OFMU's per-iteration diagnostics."""
from ofmu.logs import log_to
from ofmu.plotting.unlearning import plot_ofmu_diagnostics, plot_tradeoff
from ofmu.tables import read_results

with log_to(snakemake.log[0]):
    frame = read_results([*snakemake.input.references, *snakemake.input.runs])
    plot_tradeoff(frame, snakemake.output.tradeoff, ["dataset", "scenario"], "RA", "UA", "RA: accuracy on D_r (%)",
                  "UA: 1 - accuracy on D_f (%)", target="Retrain", start="Original", scale=100,
                  title="Forgetting vs utility (mean ± std over seeds); the goal is the Retrain star")
    plot_ofmu_diagnostics(read_results(snakemake.input.diagnostics), snakemake.output.diagnostics,
                          ["dataset", "scenario"], "OFMU diagnostics on the vision stage")
