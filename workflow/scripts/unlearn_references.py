"""Thin adapter (both stages): the reference rows of one cell and seed (Original + Retrain; Finetuned + Retain)."""
from ofmu.logs import log_to
from ofmu.unlearning.cells import domain_class, run_references, use_threads, write_result

with log_to(snakemake.log[0]):
    p, w, out = snakemake.params, snakemake.wildcards, snakemake.output
    use_threads(snakemake.threads)
    Domain = domain_class(p.domain)
    seed = int(w.seed)
    domain = Domain.from_files(p.cfg, {k: w[k] for k in Domain.cell_keys}, seed, dict(snakemake.input.items()))
    result = run_references(domain)
    write_result(result, out.rows, {name: out[name] for name in out.keys() if name != "rows"},
                 {"seed": seed, "config": p.cfg})
    print(result.rows.T.to_string())
