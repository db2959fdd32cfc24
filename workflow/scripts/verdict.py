"""Thin adapter: the computed verdict (tab10 + verdict.md, which the README quotes) from the committed source
rows of tab2/tab3/tab4 and tab9 (ofmu/unlearning/verdict.py says how)."""
import pandas as pd

from ofmu.io import write_csv_atomic, write_text_atomic
from ofmu.logs import log_to
from ofmu.tables import read_results, write_table
from ofmu.unlearning.cells import domain_class
from ofmu.unlearning.verdict import formatted, metric_rows, pairs, verdict_block, verdict_table

CAPTION = ("The verdict, computed: OFMU minus each baseline on each cell's headline metrics, paired over the reported "
           "seeds (same seed = same start model, forget set and batches), mean, 95% paired t-interval, effect size "
           "d_z = mean/sd, two-sided paired t-test p, and the TOST equivalence p against the margin declared in the "
           "config (verdict.margins) before the run; p-values Holm-corrected over all tested rows (alpha {alpha:g}; a row with no spread or fewer than 3 pairs is untested). "
           "Decision: better/worse (Holm p < alpha, by the metric's direction), else equivalent within the margin "
           "(Holm TOST p < alpha), else no detectable difference. Source rows: paper_tables/data/.")

with log_to(snakemake.log[0]):
    p, inp = snakemake.params, snakemake.input
    values = pd.concat([metric_rows(stage, read_results(inp[f"{stage}_rows"]), read_results(inp[f"{stage}_hv"]),
                                    domain_class(stage).cell_keys) for stage in p.stages], ignore_index=True)
    paired = pairs(values)
    table = verdict_table(paired, p.verdict["margins"], p.verdict["alpha"])
    write_csv_atomic(snakemake.output.pairs, paired)
    write_table(formatted(table), snakemake.output.table[0][: -len(".csv")], CAPTION.format(alpha=p.verdict["alpha"]))
    write_text_atomic(snakemake.output.words, verdict_block(table, p.verdict["alpha"]))
    print(formatted(table).to_string())
