"""Thin adapter (both stages): first-order vs exact grad F at every outer iteration of an OFMU run."""
import pandas as pd

from ofmu.io import write_csv_atomic
from ofmu.logs import log_to
from ofmu.unlearning.cells import domain_class, use_threads
from ofmu.unlearning.fidelity import along_run

with log_to(snakemake.log[0]):
    p = snakemake.params
    use_threads(snakemake.threads)
    domain = domain_class(p.domain).from_files(p.cfg, dict(p.cell), int(p.seed), dict(snakemake.input.items()))
    forget, retain = domain.loaders(int(p.seed), int(p.batch_size))
    rows = along_run(domain.start_model(), forget, retain, domain.task(), dict(p.settings), int(p.iterations), p.problem)
    write_csv_atomic(snakemake.output[0], pd.DataFrame(rows))
