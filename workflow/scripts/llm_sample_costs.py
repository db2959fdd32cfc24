"""Thin adapter: Figure 1 analog data of one method (per-sample difficulty vs utility loss)."""
from pathlib import Path

from ofmu.llm.domain import run_sample_costs
from ofmu.logs import log_to
from ofmu.unlearning.cells import use_threads

with log_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    run_sample_costs(snakemake.params.cfg, Path(snakemake.input.meta).parent, Path(snakemake.input.full).parent,
                     snakemake.wildcards.method, dict(snakemake.params.settings), snakemake.output.costs,
                     int(snakemake.params.seed))
