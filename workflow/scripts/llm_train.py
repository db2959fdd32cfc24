"""Thin adapter: the full model (full_r<k>) or a retain-only model (retain_<split>_r<k>) of replicate s<seed>."""
import re
from pathlib import Path

from ofmu.llm.domain import train_model_files
from ofmu.logs import log_to
from ofmu.unlearning.cells import use_threads

with log_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    split, model = re.fullmatch(r"(?:full|retain_(forget\d+))_r(\d+)", snakemake.wildcards.model).groups()
    print(train_model_files(snakemake.params.cfg, Path(snakemake.input.meta).parent,
                            Path(snakemake.output.weights).parent, split, int(snakemake.wildcards.seed), int(model)))
