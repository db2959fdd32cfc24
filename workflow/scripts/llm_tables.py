"""Thin adapter: Table 1 analog and the hard-probe table: each method at its selected setting and checkpoint,
mean ± std over the reported seeds (never the selection seed); the rows both are computed from (paper_tables/data/)."""
import json
from pathlib import Path

import pandas as pd

from ofmu.llm.domain import probe_table, tofu_table
from ofmu.io import write_csv_atomic
from ofmu.logs import log_to
from ofmu.tables import read_results, write_table
from ofmu.unlearning.comparison import at_selected, collapsed, references_of

stem = lambda outputs: outputs[0][: -len(".csv")]  # noqa: E731

with log_to(snakemake.log[0]):
    inp, order = snakemake.input, snakemake.params.order
    selected = [json.loads(Path(f).read_text()) for f in inp.selected]
    runs = at_selected(read_results(inp.runs), selected)
    refs = read_results(inp.references)
    refs = refs[refs["seed"].isin(runs["seed"].unique())]  # the reported replicates: the selection one is not shown
    flags = [collapsed("llm", r, references_of(refs[(refs["split"] == split) & (refs["seed"] == seed)]))
             for (split, seed), r in runs.groupby(["split", "seed"])]
    rows = pd.concat([refs.assign(collapsed=False), runs.assign(collapsed=pd.concat(flags))], ignore_index=True)
    write_csv_atomic(snakemake.output.tofu_rows, rows)
    write_table(tofu_table(rows, order), stem(snakemake.output.tofu),
                f"{snakemake.params.setting}: "
                "forget quality (FQ, median KS p-value against several retain-only models), model utility "
                "(MU, harmonic mean of 9), forget truth ratio (FTR); each method at the setting and checkpoint "
                "selected on the selection seed (tab8), mean ± std over the reported seeds, each a replicate (its own "
                "corpus, Finetuned and retain-only models); 'collapsed' = MU under half of Finetuned's. Finetuned = "
                "the replicate's model before unlearning; Retain = one of its retain-only models scored against the "
                "other ones.")
    if "probes" in snakemake.output.keys():  # the generated corpus' probes (a TOFU dataset has none)
        probes = read_results([*inp.reference_probes, *inp.probes])
        probes = probes[probes["seed"].isin(runs["seed"].unique())]
        write_csv_atomic(snakemake.output.probe_rows, probes)
        write_table(probe_table(probes, order), stem(snakemake.output.probes),
                    "Hard in-scope probes on the forget facts (each method at its selected setting and checkpoint): "
                    "paraphrased question, two-hop question, German question; FTR = mean min(TR, 1/TR), prob = answer "
                    "probability; mean ± std over the forget splits and reported seeds (replicates).")
