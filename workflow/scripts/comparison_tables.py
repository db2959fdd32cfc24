"""Thin adapter (both stages): the selected settings (tab8) and the trade-off fronts' summary (tab9)."""
import json
from pathlib import Path

from ofmu.logs import log_to
from ofmu.tables import read_results, write_table
from ofmu.unlearning.cells import domain_class
from ofmu.unlearning.comparison import fronts_table, selection_table

stem = lambda outputs: outputs[0][: -len(".csv")]  # noqa: E731
SELECTION = ("Selected setting per method and cell, chosen on the selection seed {seed} alone by the rule written "
             "in config (column 'rule') before the run, over every grid point of config/methods/<Method>.yaml and "
             "every checkpoint (fraction of the budget of passes over the forget set).")
FRONTS = ("Trade-off fronts ({axes}; both maximized). HV = area the front dominates above the reference point "
          "(the start model's forgetting, 90% of its utility): larger is better, 0 = no point forgets more than "
          "doing nothing while keeping 90% of the utility. 'HV (selection seed)': every grid point and checkpoint; "
          "'HV of selected setting': its checkpoints on each reported seed, mean ± std. 'share dominated by OFMU': "
          "share of the method's front points that a point of OFMU's front weakly dominates; 'share of OFMU "
          "dominated': the reverse.")
AXES = {"vision": "x = -|UA - UA(Retrain)| in points, y = TA in %", "llm": "x = log10 FQ, y = MU"}

with log_to(snakemake.log[0]):
    p, inp = snakemake.params, snakemake.input
    keys = list(domain_class(p.domain).cell_keys)
    selected = [json.loads(Path(f).read_text()) for f in inp.selected]
    write_table(selection_table(selected, keys, percent=p.domain == "vision"), stem(snakemake.output.selection),
                SELECTION.format(seed=p.seed))
    table = fronts_table(p.domain, read_results(inp.sweeps), read_results(inp.runs), read_results(inp.references),
                         selected, keys, p.order)
    write_table(table, stem(snakemake.output.fronts), FRONTS.format(axes=AXES[p.domain]))
    print(table.to_string())
