"""The computed verdict (ofmu/unlearning/verdict.py) against independent computations: statsmodels' own paired
t-interval and TOST, Holm by hand, decisions on constructed cases; and the dry-run errors of its config."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

from ofmu.plan import ConfigError, check_config
from ofmu.unlearning.verdict import metric_rows, paired_test, pairs, verdict_table

REPO = Path(__file__).resolve().parents[2]
MARGINS = {"vision": {"avg_gap": 0.5, "hv": 5.0}, "llm": {"log10_fq": 0.5, "model_utility": 0.01, "hv": 0.005}}


def test_paired_statistics_equal_statsmodels_route():
    rng = np.random.default_rng(0)
    a, b = rng.normal(2.0, 1.0, 10), rng.normal(1.5, 1.0, 10)
    got = paired_test(a - b, margin=0.3)
    low, high = DescrStatsW(a - b).tconfint_mean(alpha=0.05)
    assert (got["low"], got["high"]) == pytest.approx((low, high), rel=1e-12)
    assert got["p_tost"] == pytest.approx(ttost_paired(a, b, -0.3, 0.3)[0], rel=1e-10)
    assert got["p"] == pytest.approx(DescrStatsW(a - b).ttest_mean(0.0)[1], rel=1e-10)
    d = a - b
    assert got["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))


def _vision_rows(gaps: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "scenario": "random", "seed": s, "label": label, "status": "ok",
                          "Avg.Gap": g / 100} for label, values in gaps.items() for s, g in enumerate(values)])


def test_decisions_holm_and_directions():
    gaps = {"OFMU": [1.0, 1.1, 0.9, 1.0, 1.05],
            "A": [3.0, 3.2, 2.9, 3.1, 3.0],        # OFMU clearly smaller Avg. Gap: better
            "B": [1.02, 1.08, 0.93, 0.99, 1.04],   # within 0.5 points on every seed, small spread: equivalent
            "C": [0.2, 2.5, 0.1, 2.2, 0.4],        # noisy: no detectable difference
            "D": [0.1, 0.15, 0.05, 0.12, 0.1],     # OFMU clearly larger: worse
            "Retrain": [0.0] * 5}                  # the target: never a baseline
    table = verdict_table(pairs(metric_rows("vision", _vision_rows(gaps), pd.DataFrame(), ["dataset", "scenario"])),
                          MARGINS, 0.05)
    decisions = dict(zip(table["baseline"], table["decision"]))
    assert decisions == {"A": "OFMU better", "B": "equivalent within ±0.5", "C": "no detectable difference",
                         "D": "OFMU worse"}
    # Holm by hand: sort the raw p-values, multiply the k-th smallest by (m - k), running maximum, cap at 1
    p = table["p"].to_numpy()
    order = np.argsort(p)
    adjusted = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    expected = np.empty_like(adjusted)
    expected[order] = adjusted
    assert table["p (Holm)"].to_numpy() == pytest.approx(expected)


def test_pairs_are_per_replicate_and_diverged_seeds_drop():
    rows = pd.DataFrame([{"split": "f", "seed": s, "label": "OFMU", "status": st, "forget_quality": fq,
                          "model_utility": 0.5} for s, st, fq in [(0, "ok", 1e-3), (1, "ok", 1e-2), (2, "diverged", np.nan),
                                                                   (3, "ok", 1e-4)]]
                        # each replicate's own Finetuned model; seed 7 has no OFMU run: no pair
                        + [{"split": "f", "seed": s, "label": "Finetuned", "status": "ok", "forget_quality": fq,
                            "model_utility": 0.6} for s, fq in [(0, 1e-5), (1, 1e-6), (2, 1e-5), (3, 1e-5), (7, 1e-5)]])
    p = pairs(metric_rows("llm", rows, pd.DataFrame(), ["split"]))
    fq = p[(p["metric"] == "log10_fq") & (p["baseline"] == "Finetuned")]
    assert list(fq["seed"]) == [0, 1, 3]  # the diverged seed has no pair
    assert fq["difference"].to_numpy() == pytest.approx([2.0, 4.0, 1.0])  # log10 FQ - log10 FQ(Finetuned) of the seed


def _config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("change, named", [
    (lambda c: c["verdict"]["margins"]["vision"].pop("avg_gap"), ["verdict.margins.vision.avg_gap", "missing"]),
    (lambda c: c["verdict"]["margins"]["llm"].update(model_utility=0), ["verdict.margins.llm.model_utility", "> 0"]),
    (lambda c: c["verdict"]["margins"]["llm"].update(hv=-1.0), ["verdict.margins.llm.hv"]),
    (lambda c: c["verdict"]["margins"]["llm"].update(fq=0.5), ["verdict.margins.llm", "unknown metrics", "fq"]),
    (lambda c: c["verdict"].update(alpha=1.5), ["verdict.alpha"]),
    (lambda c: c["vision"].update(seeds=[0, 1]), ["vision.seeds", "too few", ">= 3"]),
])
def test_the_dry_run_names_verdict_errors(change, named):
    cfg = copy.deepcopy(_config())
    change(cfg)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, REPO / "theory" / "claims.yaml")
    for text in named:
        assert text in str(err.value), (text, str(err.value))


def test_the_default_config_declares_a_valid_verdict():
    check_config(_config(), REPO / "theory" / "claims.yaml")


def test_no_spread_is_reported_untested_and_left_out_of_holm():
    gaps = {"OFMU": [1.0, 1.1, 0.9], "A": [1.0, 1.1, 0.9], "B": [3.0, 3.3, 2.8]}
    table = verdict_table(pairs(metric_rows("vision", _vision_rows(gaps), pd.DataFrame(), ["dataset", "scenario"])),
                          MARGINS, 0.05)
    a, b = (table[table["baseline"] == x].iloc[0] for x in "AB")
    assert a["decision"] == "identical on every seed (untested)" and np.isnan(a["p (Holm)"])
    assert b["p (Holm)"] == pytest.approx(b["p"])  # a family of one tested comparison


def test_too_few_pairs_are_untested_and_a_diverged_seed_has_no_hypervolume():
    from ofmu.unlearning.comparison import selected_hv

    gaps = {"OFMU": [1.0, 1.1], "A": [3.0, 3.3]}  # 2 seeds: below MIN_SEEDS
    table = verdict_table(pairs(metric_rows("vision", _vision_rows(gaps), pd.DataFrame(), ["dataset", "scenario"])),
                          MARGINS, 0.05)
    assert table["decision"].iloc[0] == "too few pairs (2)" and np.isnan(table["p (Holm)"].iloc[0])
    # a reported seed whose selected setting diverged at every checkpoint gets no HV row (not a 0 paired in)
    refs = pd.DataFrame([{"split": "f", "seed": 0, "label": lab, "setting": "reference", "status": "ok",
                          "forget_quality": fq, "model_utility": 0.6} for lab, fq in [("Finetuned", 1e-5), ("Retain", 0.9)]])
    runs = pd.DataFrame([{"split": "f", "seed": seed, "label": "OFMU", "setting": "s", "checkpoint": c, "status": st,
                          "forget_quality": 1e-3 if st == "ok" else np.nan, "model_utility": 0.59 if st == "ok" else np.nan}
                         for seed, st in [(0, "ok"), (1, "diverged")] for c in (0.5, 1.0)])
    hv = selected_hv("llm", runs, refs, [{"label": "OFMU", "setting": "s", "cell": {"split": "f"}}], ["split"])
    assert list(hv["seed"]) == [0]
    # by hand: one point (log10 1e-3 = -3, 0.59) against the reference (log10 1e-5 = -5, 0.9 x 0.6 = 0.54)
    assert hv["hv"].iloc[0] == pytest.approx(2 * 0.05)
