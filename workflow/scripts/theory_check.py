"""Thin adapter: check one claim over all its runs; fails the rule (and the pipeline) if a check fails."""
from ofmu.logs import log_to
from ofmu.theory.stage import check_claim_files

with log_to(snakemake.log[0]):
    verdicts = check_claim_files(snakemake.wildcards.claim, snakemake.params.spec, list(snakemake.input.runs),
                                 snakemake.output.verdicts)
    print(verdicts.to_string(index=False))
