"""Thin adapter: Table 1 analog, hard-probe table, ablation table (mean ± std over seeds)."""
from ofmu.llm.domain import probe_table, tofu_table
from ofmu.logs import log_to
from ofmu.tables import read_results, write_table

stem = lambda outputs: outputs[0][: -len(".csv")]  # noqa: E731

with log_to(snakemake.log[0]):
    rows = read_results([*snakemake.input.references, *snakemake.input.runs])
    probes = read_results([*snakemake.input.reference_probes, *snakemake.input.probes])
    order = snakemake.params.order
    write_table(tofu_table(rows, order), stem(snakemake.output.tofu),
                "TOFU-protocol analog on the generated fictitious-author corpus (small GPT-2, CPU scale): "
                "forget quality (FQ, median KS p-value against several retain-only models), model utility "
                "(MU, harmonic mean of 9), forget truth ratio (FTR); mean ± std over seeds. Finetuned = the "
                "model before unlearning; Retain = a retain-only model against the other retain models "
                "(both evaluated once per split).")
    write_table(probe_table(probes, order), stem(snakemake.output.probes),
                "Hard in-scope probes on the forget facts: paraphrased question, two-hop question, German "
                "question; FTR = mean min(TR, 1/TR), prob = answer probability; mean ± std over the forget splits "
                "and seeds (seeds = distinct run seeds; Finetuned and Retain are evaluated once per split).")
    ablation = [m for m in [*snakemake.params.variants, "Scalarized", "OFMU"] if m in set(rows["label"])]
    write_table(tofu_table(rows, ablation), stem(snakemake.output.ablation),
                "Ablation: OFMU without the similarity penalty (beta = 0), the scalarized weighted sum "
                "L_r - lambda L_f, and full OFMU, at the same budget of forget-set passes.")
