"""Thin adapter: the generated TOFU-format corpus and its BPE tokenizer of one replicate (corpus seed = {seed})."""
from pathlib import Path

from ofmu.llm.domain import corpus_files
from ofmu.logs import log_to

with log_to(snakemake.log[0]):
    print(corpus_files(snakemake.params.cfg, Path(snakemake.output.meta).parent, int(snakemake.wildcards.seed)))
