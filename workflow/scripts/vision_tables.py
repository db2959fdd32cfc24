"""Thin adapter: Table 2 analog (random forgetting) or the class-wise table, mean ± std over seeds."""
from ofmu.logs import log_to
from ofmu.tables import read_results, write_table
from ofmu.vision.domain import vision_table

CAPTION = ("{what} on {datasets} (small CNN, CPU scale): UA = 1 - acc(D_f), RA = acc(D_r), TA = test "
           "accuracy, MIA-Efficacy, Avg. Gap to Retrain over the four (all %), RTE = wall seconds of the "
           "unlearning run, peak memory above the starting resident size; mean ± std over seeds. "
           "Lower Avg. Gap is better.")
WHAT = {"random": "Random forgetting (10% of D)", "class": "Class-wise forgetting (one class)"}

with log_to(snakemake.log[0]):
    frame = read_results([*snakemake.input.references, *snakemake.input.runs])
    datasets = ", ".join(frame["dataset"].unique())
    write_table(vision_table(frame, snakemake.params.order), snakemake.output[0][: -len(".csv")],
                CAPTION.format(what=WHAT[snakemake.params.scenario], datasets=datasets))
