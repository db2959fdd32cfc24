"""Thin adapter (both stages): the selected settings (tab8), the trade-off fronts' summary (tab9) and equal passes
vs equal gradient evaluations (tab11), with the
rows they are computed from (paper_tables/data/: the selection seed's sweep, the selections, the reported runs of
the selected settings, the references, and the per-seed hypervolumes that the verdict reads)."""
import json
from pathlib import Path

import pandas as pd

from ofmu.io import write_csv_atomic
from ofmu.logs import log_to
from ofmu.tables import read_results, write_table
from ofmu.unlearning.cells import domain_class
from ofmu.unlearning.comparison import equal_compute_table, fronts_table, selected_hv, selection_table

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
EQUAL = ("Each method's selected setting on the reported seeds at equal passes over D_f (its selected checkpoint: the "
         "budget of every other table) and at equal gradient evaluations (counted): the gradient budget is GradDiff's "
         "count over the whole pass budget (one gradient per forget batch); a method that costs more per batch is read "
         "at its latest checkpoint within that budget. Descriptive, no test: the verdict (tab10) is at equal passes.")
AXES = {"vision": "x = -|UA - UA(Retrain)| in points, y = TA in %", "llm": "x = log10 FQ, y = MU"}

with log_to(snakemake.log[0]):
    p, inp = snakemake.params, snakemake.input
    keys = list(domain_class(p.domain).cell_keys)
    selected = [json.loads(Path(f).read_text()) for f in inp.selected]
    write_table(selection_table(selected, keys, percent=p.domain == "vision"), stem(snakemake.output.selection),
                SELECTION.format(seed=p.seed))
    sweeps, runs, references = read_results(inp.sweeps), read_results(inp.runs), read_results(inp.references)
    hv = selected_hv(p.domain, runs, references, selected, keys)  # tab9's column and the verdict's rows: once
    table = fronts_table(p.domain, sweeps, runs, references, selected, keys, p.order, hv=hv)
    write_table(table, stem(snakemake.output.fronts), FRONTS.format(axes=AXES[p.domain]))
    write_table(equal_compute_table(p.domain, runs, references, selected, keys),
                stem(snakemake.output.equal_compute), EQUAL)
    out = snakemake.output
    chosen = pd.Series(False, index=runs.index)
    for s in selected:
        chosen |= (runs["label"] == s["label"]) & (runs["setting"] == s["setting"])
    write_csv_atomic(out.sweep_rows, sweeps)
    flat = lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v  # noqa: E731
    write_csv_atomic(out.selected_rows, pd.DataFrame([{**s["cell"], **{k: flat(v) for k, v in s.items() if k != "cell"}}
                                                      for s in selected]))
    write_csv_atomic(out.run_rows, runs[chosen])
    write_csv_atomic(out.reference_rows, references)
    write_csv_atomic(out.hv_rows, hv)
    print(table.to_string())
