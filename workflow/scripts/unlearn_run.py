"""Thin adapter (both stages): a method at its selected setting (results/<stage>/selected/...) on one cell and
every reported seed, evaluated at every checkpoint (per-item tables at the selected one) -> rows + tables.
One process for the seeds: the start-up (imports, data) is paid once; a changed setting reruns them all anyway."""
import json
import re
from pathlib import Path

import pandas as pd

from ofmu.logs import log_to
from ofmu.unlearning.cells import CellResult, Run, domain_class, run_method, use_threads, write_result

with log_to(snakemake.log[0]):
    p, w, out = snakemake.params, snakemake.wildcards, snakemake.output
    use_threads(snakemake.threads)
    selected = json.loads(Path(snakemake.input.selected).read_text())
    Domain = domain_class(p.domain)
    cell = {k: w[k] for k in Domain.cell_keys}
    parts = []
    for seed in p.seeds:
        # per-seed inputs are named <name>_s<seed> (vision: its Original; LLM: its replicate's corpus, model, references)
        named = {k: re.fullmatch(r"(.+)_s(\d+)", k) for k in snakemake.input.keys() if k != "selected"}
        inputs = {k: snakemake.input[k] for k, m in named.items() if m is None}
        inputs.update({m[1]: snakemake.input[k] for k, m in named.items() if m and int(m[2]) == int(seed)})
        domain = Domain.from_files(p.cfg, cell, int(seed), inputs)
        run = Run(selected["method"], selected["settings"], int(seed), selected["setting"], w.label)
        parts.append(run_method(domain, run, device=p.cfg["device"], checkpoints=tuple(p.checkpoints),
                                detail_at=selected["checkpoint"], **p.budget))
    result = CellResult(pd.concat([r.rows for r in parts], ignore_index=True),
                        {name: pd.concat([r.tables[name] for r in parts], ignore_index=True) for name in parts[0].tables})
    write_result(result, out.rows, {name: out[name] for name in out.keys() if name != "rows"},
                 {"seeds": list(p.seeds), "label": w.label, "selected": selected, "budget": p.budget,
                  "checkpoints": p.checkpoints, "config": p.cfg})
    print(result.rows.T.to_string())
