"""Thin adapter: the Figure 1 analog (difficulty of a forget sample vs the utility cost of forgetting it)."""
from ofmu.logs import log_to
from ofmu.plotting.llm import plot_difficulty
from ofmu.tables import read_results

with log_to(snakemake.log[0]):
    plot_difficulty(read_results(snakemake.input.costs), snakemake.output[0])
