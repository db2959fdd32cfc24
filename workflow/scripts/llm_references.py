"""Thin adapter: FQ / privleak references of one split of one replicate (seed) from its retain-only models."""
from pathlib import Path

from ofmu.llm.domain import reference_files
from ofmu.logs import log_to
from ofmu.unlearning.cells import use_threads

with log_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    reference_files(snakemake.params.cfg, Path(snakemake.input.meta).parent, snakemake.wildcards.split,
                    [Path(p).parent for p in snakemake.input.retain], snakemake.output.refs)
