"""The verdict, computed: OFMU against each baseline on each cell's headline metrics, as paired differences over
the reported seeds, with intervals, effect sizes and decisions corrected for multiplicity (issue 19).

Pairing. In both stages a reported seed fixes everything a run starts from: vision, the seed's own Original,
Retrain and forget set; LLM, the seed's replicate: its own corpus, Finetuned and retain-only models and batch order.
So OFMU's and a baseline's (or a reference's) runs of one seed form a pair, and the comparison is a one-sample test
on the per-seed differences d_s = OFMU_s - baseline_s.

Per (stage, cell, metric, baseline):
  mean difference, its 95% paired t-interval (mean +- t_{0.975, n-1} sd / sqrt n), the effect size
  d_z = mean / sd, the two-sided paired t-test's p, and the TOST equivalence test's p against the margin the
  config declares before the run (H0: |true difference| >= margin).
Multiplicity: Holm over every tested comparison of the table (one family per tier), separately for the
difference tests and the equivalence tests (statsmodels' multipletests).
Words: "better" / "worse" (Holm-adjusted t-test p < alpha; by the metric's direction), else "equivalent within
+-margin" (Holm-adjusted TOST p < alpha), else "no detectable difference". Differences with no spread (the same
on every seed: FQ moves in KS steps, so ties happen) have no t-test: "identical on every seed (untested)" and
they are left out of the Holm family. A seed where either run diverged has no pair (the hypervolume of a seed with no finished checkpoint
is not written, ``ofmu.unlearning.comparison.selected_hv``); the pairs used are counted in every row, and a
comparison with fewer than MIN_SEEDS pairs is "too few pairs", untested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests



@dataclass(frozen=True)
class Metric:
    """A headline metric: the column it is read from, how it is shown, and which direction is better."""

    key: str          # config key (verdict.margins.<stage>.<key>)
    title: str
    unit: str
    higher_is_better: bool


# the headline numbers of each stage (README "How methods are compared"): vision, the Avg. Gap to Retrain
# (tab2/tab3) and the hypervolume of the selected setting's checkpoints (tab9); LLM, FQ on a log scale and MU
# (tab4) and the same hypervolume
METRICS = {
    "vision": [Metric("avg_gap", "Avg. Gap", "points", False), Metric("hv", "HV of selected setting", "points^2", True)],
    "llm": [Metric("log10_fq", "log10 FQ", "decades", True), Metric("model_utility", "MU", "", True),
            Metric("hv", "HV of selected setting", "decades x MU", True)],
}
MIN_SEEDS = 3  # a paired t-interval on fewer than 3 differences has 1 degree of freedom or none
TARGETS = {"vision": "Retrain", "llm": "Retain"}  # what every method aims at: not a baseline


def metric_rows(stage: str, rows: pd.DataFrame, hv: pd.DataFrame, cell_keys: Sequence[str]) -> pd.DataFrame:
    """Long rows (stage, cell, label, seed, metric, value) of the reported runs at their selected checkpoint
    (``rows``: the tab2/tab3 or tab4 source rows, references included) and of the per-seed hypervolumes
    (``hv``: tab9's source rows). Diverged runs give no value; the target (Retrain / Retain) is no baseline."""
    rows = rows[(rows["status"] == "ok") & (rows["label"] != TARGETS[stage])]
    cell = rows[list(cell_keys)].astype(str).agg("/".join, axis=1)
    if stage == "vision":
        values = {"avg_gap": 100 * rows["Avg.Gap"].astype(float)}
    else:
        values = {"log10_fq": np.log10(rows["forget_quality"].astype(float).clip(lower=1e-30)),
                  "model_utility": rows["model_utility"].astype(float)}
    long = [pd.DataFrame({"stage": stage, "cell": cell, "label": rows["label"], "seed": rows["seed"],
                          "metric": key, "value": v}) for key, v in values.items()]
    if len(hv):
        long.append(pd.DataFrame({"stage": stage, "cell": hv[list(cell_keys)].astype(str).agg("/".join, axis=1),
                                  "label": hv["label"], "seed": hv["seed"], "metric": "hv",
                                  "value": hv["hv"].astype(float)}))
    return pd.concat(long, ignore_index=True)


def pairs(values: pd.DataFrame, subject: str = "OFMU") -> pd.DataFrame:
    """Per (stage, cell, metric, baseline, seed): the subject's and the baseline's value and their difference, on
    the seeds both have a value for."""
    out = []
    for (stage, cell, metric), g in values.groupby(["stage", "cell", "metric"], sort=False):
        mine = g[g["label"] == subject].set_index("seed")["value"]
        for label, b in g[g["label"] != subject].groupby("label", sort=False):
            theirs = b.set_index("seed")["value"]
            for seed in sorted(mine.index.intersection(theirs.index)):
                out.append({"stage": stage, "cell": cell, "metric": metric, "baseline": label, "seed": seed,
                            subject: mine[seed], "baseline value": theirs[seed],
                            "difference": mine[seed] - theirs[seed]})
    return pd.DataFrame(out)


def paired_test(d: np.ndarray, margin: float, confidence: float = 0.95) -> dict[str, float]:
    """Mean, t-interval, d_z, two-sided t-test p and TOST p (margin +-``margin``) of paired differences ``d``."""
    d = np.asarray(d, dtype=float)
    n, mean = len(d), float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if n > 1 else float("nan")
    if n < MIN_SEEDS:  # no decision is made on it: no p-value either (it stays out of the Holm family)
        return {"n": n, "mean": mean, "low": np.nan, "high": np.nan, "d_z": np.nan, "p": np.nan, "p_tost": np.nan}
    se = sd / np.sqrt(n)
    if sd <= 1e-12 * max(1.0, float(np.abs(d).max())):
        # the same difference on every seed (FQ moves in KS steps, so ties happen; round-off at 1e-17 is no
        # spread either): no t-test
        return {"n": n, "mean": mean, "low": mean, "high": mean, "d_z": np.nan, "p": np.nan, "p_tost": np.nan}
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    # TOST: both one-sided nulls (difference <= -margin, difference >= +margin) must be rejected
    p_low = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
    p_high = float(stats.ttest_1samp(d, margin, alternative="less").pvalue)
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half, "d_z": mean / sd, "p": p,
            "p_tost": max(p_low, p_high)}


def verdict_table(paired: pd.DataFrame, margins: Mapping[str, Mapping[str, float]], alpha: float,
                  subject: str = "OFMU") -> pd.DataFrame:
    """One row per (stage, cell, metric, baseline): the paired statistics, Holm-adjusted p-values over the whole
    table, and the decision in words."""
    info = {(s, m.key): m for s, ms in METRICS.items() for m in ms}
    rows = []
    for (stage, cell, metric, baseline), g in paired.groupby(["stage", "cell", "metric", "baseline"], sort=False):
        m = info[(stage, metric)]
        margin = float(margins[stage][metric])
        rows.append({"stage": stage, "cell": cell, "metric": m.title, "unit": m.unit,
                     "better": "higher" if m.higher_is_better else "lower", "baseline": baseline,
                     "margin": margin, **paired_test(g["difference"].to_numpy(), margin)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for col, adjusted in (("p", "p (Holm)"), ("p_tost", "p equivalence (Holm)")):
        ok = table[col].notna()
        table[adjusted] = np.nan
        if ok.any():
            table.loc[ok, adjusted] = multipletests(table.loc[ok, col].to_numpy(), method="holm")[1]
    table["decision"] = [_decision(r, alpha, subject) for _, r in table.iterrows()]
    return table


def _decision(row: pd.Series, alpha: float, subject: str) -> str:
    if row["n"] < MIN_SEEDS:
        return f"too few pairs ({row['n']})"
    if pd.isna(row["p"]):  # no spread: a fact about these seeds, not a test (3 equal values prove no equivalence)
        return "identical on every seed (untested)" if row["mean"] == 0 else "the same difference on every seed (untested)"
    if row["p (Holm)"] < alpha:
        ahead = (row["mean"] > 0) == (row["better"] == "higher")
        return f"{subject} better" if ahead else f"{subject} worse"
    if row["p equivalence (Holm)"] < alpha:
        return f"equivalent within ±{row['margin']:g}"
    return "no detectable difference"


def formatted(table: pd.DataFrame, subject: str = "OFMU") -> pd.DataFrame:
    """The verdict table as printed: difference and interval to 3 significant digits, p-values to 2."""
    g3 = lambda v: "-" if pd.isna(v) else f"{v:.3g}"  # noqa: E731
    g2 = lambda v: "-" if pd.isna(v) else f"{v:.2g}"  # noqa: E731
    return pd.DataFrame({
        "stage": table["stage"], "cell": table["cell"], "metric": table["metric"], "better": table["better"],
        "baseline": table["baseline"], "pairs (seeds)": table["n"].astype(int),
        f"{subject} - baseline (mean)": table["mean"].map(g3),
        "95% t-interval": [f"[{g3(lo)}, {g3(hi)}]" for lo, hi in zip(table["low"], table["high"])],
        "d_z": table["d_z"].map(g3), "p": table["p"].map(g2), "p (Holm)": table["p (Holm)"].map(g2),
        "margin": table["margin"].map(lambda v: f"±{v:g}"),
        "p equivalence (Holm)": table["p equivalence (Holm)"].map(g2), "decision": table["decision"]})


def verdict_block(table: pd.DataFrame, alpha: float, subject: str = "OFMU") -> str:
    """The verdict in words, one bullet per (stage, cell, metric): which baselines fall under each decision.
    The README and the report quote this text; a test keeps them equal."""
    n = table["n"]
    tested = int(table["p"].notna().sum())
    lines = [f"{subject} against each baseline, paired over the reported seeds "
             f"({n.min() if n.min() == n.max() else f'{n.min()}-{n.max()}'} pairs per comparison; 95% t-intervals; "
             f"Holm over the {tested} tested comparisons of {len(table)} at alpha = {alpha:g}; "
             f"`paper_tables/tab10_verdict`):", ""]
    order = ["better", "worse", "equivalent", "no detectable", "identical", "same difference", "too few"]
    for (stage, cell, metric), g in table.groupby(["stage", "cell", "metric"], sort=False):
        parts = []
        for word in order:
            hit = g[g["decision"].str.contains(word)]
            if len(hit):
                decision = hit["decision"].iloc[0]
                names = ", ".join(f"{b} ({_signed(v)})" for b, v in zip(hit["baseline"], hit["mean"]))
                parts.append(f"{decision}: {names}")
        unit = g["unit"].iloc[0]
        lines.append(f"- {stage} {cell}, {metric} ({g['better'].iloc[0]} is better; {subject} - baseline"
                     f"{' in ' + unit if unit else ''}): " + "; ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def _signed(v: float) -> str:
    return f"{v:+.3g}"
