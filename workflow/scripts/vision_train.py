"""Thin adapter: train the original model (rule vision_original) or Retrain (rule vision_retrain)."""
from ofmu.logs import log_to
from ofmu.unlearning.cells import use_threads
from ofmu.vision.domain import train_reference_checkpoint

with log_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    meta = train_reference_checkpoint(snakemake.params.cfg, snakemake.wildcards.dataset,
                                      int(snakemake.wildcards.seed), snakemake.output[0],
                                      scenario=snakemake.wildcards.get("scenario"))
    print(meta)
