"""Thin adapter (both stages): one method with one setting on one cell and seed -> one row + its tables."""
from ofmu.logs import log_to
from ofmu.unlearning.cells import Run, domain_class, run_method, use_threads, write_result

with log_to(snakemake.log[0]):
    p, w, out = snakemake.params, snakemake.wildcards, snakemake.output
    use_threads(snakemake.threads)
    Domain = domain_class(p.domain)
    domain = Domain.from_files(p.cfg, {k: w[k] for k in Domain.cell_keys}, int(w.seed), dict(snakemake.input.items()))
    result = run_method(domain, Run(w.method, dict(p.settings), int(w.seed), w.setting), device=p.cfg["device"], **p.budget)
    write_result(result, out.rows, {name: out[name] for name in out.keys() if name != "rows"},
                 {"seed": int(w.seed), "method": w.method, "setting": w.setting, "settings": p.settings,
                  "budget": p.budget, "config": p.cfg})
    print(result.rows.T.to_string())
