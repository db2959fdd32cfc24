"""Thin adapter: trade-off fronts per (dataset, scenario) and OFMU's per-iteration diagnostics (vision)."""
import json
from pathlib import Path

from ofmu.logs import log_to
from ofmu.plotting.comparison import plot_fronts
from ofmu.plotting.unlearning import plot_ofmu_diagnostics, selected_steps
from ofmu.tables import read_results

with log_to(snakemake.log[0]):
    inp = snakemake.input
    selected = [json.loads(Path(f).read_text()) for f in inp.selected]
    runs = read_results(inp.runs)
    plot_fronts("vision", read_results(inp.sweeps), runs, read_results(inp.references), selected,
                ["dataset", "scenario"], snakemake.output.fronts,
                f"Vision trade-off fronts: every grid point x checkpoint on the selection seed {snakemake.params.seed}, "
                "the staircase each method's front dominates above the HV reference (dashed/dotted),\nits selected "
                f"setting, and that setting on each of the {len(snakemake.params.seeds)} reported seeds (open "
                "circles); best = top left (Retrain's star)")
    plot_ofmu_diagnostics(read_results(inp.diagnostics), snakemake.output.diagnostics, ["dataset", "scenario"],
                          "OFMU diagnostics on the vision stage (selected setting, reported seeds)",
                          selected_steps(runs, selected))
