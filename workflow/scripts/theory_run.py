"""Thin adapter: run one theory claim on one problem family for every configured seed."""
from ofmu.logs import log_to
from ofmu.theory.stage import run_claim_to_csv

with log_to(snakemake.log[0]):
    run_claim_to_csv(snakemake.wildcards.claim, snakemake.params.spec, snakemake.wildcards.family,
                     list(snakemake.params.seeds), snakemake.output.rows)
