"""Thin adapter: OFMU's one-at-a-time sensitivity around its selected setting (fig12, tab6), both stages, at
the selected checkpoint, and the rows tab6 is computed from."""
import json
from pathlib import Path

import pandas as pd

from ofmu.io import write_csv_atomic
from ofmu.logs import log_to
from ofmu.plotting.comparison import plot_sensitivity
from ofmu.tables import read_results, write_table
from ofmu.unlearning.comparison import sensitivity_table

with log_to(snakemake.log[0]):
    inp = snakemake.input
    frames, tables = {}, []
    for stage in ("vision", "llm"):
        if f"{stage}_runs" not in inp.keys():
            continue
        selected = json.loads(Path(inp[f"{stage}_selected"][0]).read_text())
        rows = read_results(inp[f"{stage}_runs"])
        rows = rows[rows["checkpoint"] == selected["checkpoint"]]
        references = read_results(inp[f"{stage}_references"])
        frames[stage] = (rows, references)
        tables.append(sensitivity_table(stage, rows, references, selected))
    # the rows tab6 is computed from (paper_tables/data/; tests/unit/test_committed_tables.py recomputes it)
    write_csv_atomic(snakemake.output.rows, pd.concat([r.assign(stage=s) for s, (r, _) in frames.items()], ignore_index=True))
    write_csv_atomic(snakemake.output.reference_rows,
                     pd.concat([refs.assign(stage=s) for s, (_, refs) in frames.items()], ignore_index=True))
    write_table(pd.concat(tables, ignore_index=True), snakemake.output.table[0][: -len(".csv")],
                "OFMU's sensitivity (the paper's ablations): one setting changed at a time around the selected "
                "setting ('selected'), same budget, at the selected checkpoint; beta=0 is OFMU without the "
                "similarity term (the Scalarized weighted sum is a method of its own in tab2-tab4). Front "
                "coordinates as drawn in fig12: forgetting (x) = vision |UA - UA(Retrain)| in points (lower is better), LLM FQ (higher is better); utility (y) = vision TA in %, LLM MU, "
                "mean ± std over the seeds run; collapsed = utility under half the start model's.")
    plot_sensitivity(frames, snakemake.output.figure,
                     "OFMU sensitivity: one setting changed at a time around the selected one (mean over seeds; bars: range "
                     "over seeds)")
