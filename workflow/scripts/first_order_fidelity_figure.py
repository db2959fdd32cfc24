"""Thin adapter: float64 V-curves + the stages' float32 runs -> fig11 and tab7."""
import pandas as pd

from ofmu.logs import log_to
from ofmu.plotting.fidelity import plot_fidelity
from ofmu.tables import write_table
from ofmu.unlearning.fidelity import fidelity_table, summarize, v_curves

with log_to(snakemake.log[0]):
    runs = [pd.read_csv(path) for path in snakemake.input.runs]
    summary = summarize(pd.concat([pd.DataFrame(v_curves()), *runs], ignore_index=True))
    step = snakemake.params.fd_step
    plot_fidelity(summary, None if step == "auto" else float(step), snakemake.output.figure)
    write_table(fidelity_table(summary, step), snakemake.output.table[0][: -len(".csv")],
                "First-order OFMU against autograd's exact derivatives: relative error and cosine of grad F "
                "(float64: the 'auto' step on smooth test problems; float32: every outer iteration of an OFMU run "
                f"on the stage's own model, at the configured fd_step {step}, central differences at the same "
                "step, and the inner ascent step's difference).")
