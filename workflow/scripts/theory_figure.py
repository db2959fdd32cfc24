"""Thin adapter: draw the figure of one theory claim from its run rows and verdicts."""
import pandas as pd

from ofmu.logs import log_to
from ofmu.plotting.theory import plot_claim

with log_to(snakemake.log[0]):
    rows = pd.concat([pd.read_csv(p, dtype={"group": str}).fillna({"group": ""}) for p in snakemake.input.runs])
    verdicts = pd.read_csv(snakemake.input.verdicts, dtype={"group": str}).fillna({"group": ""})
    spec = snakemake.params.spec
    plot_claim(snakemake.params.claim, spec["title"], rows, verdicts, snakemake.output.figure, floor=spec["floor"])
