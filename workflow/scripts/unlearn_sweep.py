"""Thin adapter (both stages): every point of a grid on one cell and seed, each evaluated at the checkpoints.
Rule sweep: a method's sweep grid on the selection seed. Rule sensitivity: OFMU one setting at a time around
its selected point (results/<stage>/selected/<cell>/OFMU.json) on a reported seed."""
import json
from pathlib import Path

from ofmu.logs import log_to
from ofmu.unlearning.cells import check_sweep_budget, domain_class, run_sweep, use_threads, write_result
from ofmu.unlearning.settings import sensitivity_points

with log_to(snakemake.log[0]):
    p, w, out = snakemake.params, snakemake.wildcards, snakemake.output
    use_threads(snakemake.threads)
    Domain = domain_class(p.domain)
    if "selected" in snakemake.input.keys():  # sensitivity
        selected = json.loads(Path(snakemake.input.selected).read_text())
        label, method, seed = "OFMU", selected["method"], int(w.seed)
        points = sensitivity_points(selected["settings"], p.grid)
    else:
        label, method, seed, points = w.label, p.method, int(p.seed), p.points
    cell = dict(zip(Domain.cell_keys, w.cell.split("/")))
    inputs = {k: v for k, v in snakemake.input.items() if k != "selected"}
    domain = Domain.from_files(p.cfg, cell, seed, inputs)
    if "selected" not in snakemake.input.keys():  # the grid's budget; the sensitivity varies T on purpose
        check_sweep_budget(domain, method, points, seed, **p.budget, min_steps=p.signal.get("min_steps", 0),
                           min_outer_iterations=p.signal.get("min_outer_iterations", 0))
    result = run_sweep(domain, label, method, {k: dict(v) for k, v in points.items()}, seed,
                       device=p.cfg["device"], checkpoints=tuple(p.checkpoints), **p.budget)
    write_result(result, out.rows, {"diagnostics": out.diagnostics},
                 {"seed": seed, "label": label, "method": method, "points": points, "budget": p.budget,
                  "checkpoints": p.checkpoints, "config": p.cfg})
    print(result.rows[["setting", "checkpoint", "status", *Domain.metric_columns]].to_string())
