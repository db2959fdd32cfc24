"""Thin adapter: the robustness attacks of every selected method and reference model (relearning, quantization;
ofmu.llm.attacks) on the reported replicates -> tab12 + fig14, and the records both are computed from."""
import pandas as pd

from ofmu.io import write_csv_atomic
from ofmu.llm.attacks import attack_columns, attack_summary
from ofmu.logs import log_to
from ofmu.plotting.llm import plot_attacks
from ofmu.tables import read_results, summary_table, write_table

with log_to(snakemake.log[0]):
    records = read_results(snakemake.input.attacks)
    records = records[records["seed"].isin(snakemake.params.seeds)]  # the reported replicates only
    write_csv_atomic(snakemake.output.rows, records)
    summary = attack_summary(records)
    table = summary_table(summary, ["label"], attack_columns(summary, records), snakemake.params.order, spread="split")
    write_table(table, snakemake.output.table[0][: -len(".csv")],
                "Robustness of forgetting: each method at its selected setting and checkpoint, and the reference models. "
                "Relearning: AdamW fine-tuning on a seeded quarter of the forget rows (the same rows for every model); "
                "'unseen' = the other forget rows, whose recovery shows knowledge hidden rather than removed; Retain "
                "(never trained on D_f) relearned the same way is the baseline. Fine-tuning on retain rows only: the "
                "forget answers' probability afterwards. Quantization: every weight matrix rounded to 8 / 4 bits per "
                "output channel. Mean ± std over the reported seeds (replicates); FQ: median.")
    plot_attacks(records, snakemake.output.figure)
    print(table.to_string())
