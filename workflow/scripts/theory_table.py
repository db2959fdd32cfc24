"""Thin adapter: the claims table (predicted vs fitted rate, worst bound ratio, pass/fail), and the check rows it
is computed from (paper_tables/data/, committed: tests recompute the table from them)."""
import pandas as pd

from ofmu.logs import log_to
from ofmu.plotting.theory import claims_table
from ofmu.io import write_csv_atomic
from ofmu.tables import write_table

with log_to(snakemake.log[0]):
    verdicts = pd.concat([pd.read_csv(p, dtype={"group": str}).fillna({"group": ""})
                          for p in snakemake.input.verdicts], ignore_index=True)
    write_csv_atomic(snakemake.output.data, verdicts)
    stem = snakemake.output.table[0][: -len(".csv")]
    write_table(claims_table(verdicts), stem,
                "Theory claims verified against cvxpy references (theory/THEOREMS.md): one row per (claim, family, "
                "quantity, group) over the seeds, each a check that can fail: predicted vs fitted rate, the largest "
                "ratio of measured to the explicit-constant bound (or to the exact prediction), and the status.")
