"""Thin adapter: trade-off fronts per (dataset, scenario) and OFMU's per-iteration diagnostics (vision)."""
import json
from pathlib import Path

from ofmu.logs import log_to
from ofmu.plotting.comparison import plot_fronts
from ofmu.plotting.unlearning import plot_ofmu_diagnostics
from ofmu.tables import read_results

with log_to(snakemake.log[0]):
    inp = snakemake.input
    selected = [json.loads(Path(f).read_text()) for f in inp.selected]
    plot_fronts("vision", read_results(inp.sweeps), read_results(inp.runs), read_results(inp.references), selected,
                ["dataset", "scenario"], snakemake.output.fronts,
                "Vision trade-off fronts: every grid point x checkpoint on the selection seed, each method's Pareto "
                "front (line), its selected setting;\nbest = top left (Retrain's star)")
    plot_ofmu_diagnostics(read_results(inp.diagnostics), snakemake.output.diagnostics, ["dataset", "scenario"],
                          "OFMU diagnostics on the vision stage (selected setting, reported seeds)")
