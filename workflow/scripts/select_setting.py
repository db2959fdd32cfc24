"""Thin adapter (both stages): the selection rule on one method's selection-seed sweep -> selected.json.
Reads only the sweep (selection seed) and that seed's reference rows: no reported seed enters."""
from ofmu.io import write_json_atomic
from ofmu.logs import log_to
from ofmu.tables import read_results
from ofmu.unlearning.cells import domain_class
from ofmu.unlearning.comparison import select_setting

with log_to(snakemake.log[0]):
    p, w = snakemake.params, snakemake.wildcards
    refs = read_results([snakemake.input.references])
    record = select_setting(p.domain, read_results([snakemake.input.sweep]), refs[refs["seed"] == p.seed], p.rule,
                            p.signal)
    record["cell"] = dict(zip(domain_class(p.domain).cell_keys, w.cell.split("/")))
    write_json_atomic(snakemake.output[0], record)
    print(record)
