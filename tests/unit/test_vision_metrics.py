"""Each vision metric against a hand computation on a tiny case."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ofmu.registry import METRICS
from ofmu.vision import metrics as M


def _inputs(**kw):
    forget = M.SetPredictions(np.array([True, False, False, True]), np.array([0.9, 0.2, 0.3, 0.8]))
    retain = M.SetPredictions(np.array([True, True, True, False, True]), np.full(5, 0.9))
    test = M.SetPredictions(np.array([True, False]), np.array([0.7, 0.1]))
    return M.MetricInputs(forget=forget, retain=retain, test=test, **kw)


def test_accuracy_metrics_by_hand():
    inputs = _inputs()
    assert METRICS.get("UA")(inputs) == pytest.approx(1 - 2 / 4)
    assert METRICS.get("RA")(inputs) == pytest.approx(4 / 5)
    assert METRICS.get("TA")(inputs) == pytest.approx(1 / 2)


def test_predict_correctness_and_true_label_confidence():
    # identity "model": the logits are the inputs themselves
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([0, 1, 2])
    pred = M.predict(nn.Identity(), x, y, batch_size=2)
    assert pred.correct.tolist() == [True, False, False]  # row 3: argmax of a tie is the first index (0)
    expected = [math.exp(2) / (math.exp(2) + 2), math.e / (1 + math.e + math.exp(3)), 1 / 3]
    assert pred.confidence == pytest.approx(expected, rel=1e-6)


def test_mia_efficacy_on_separated_clusters():
    # members (retain) are confident, non-members (test) are not; forget: one confident, two not
    rng = np.random.default_rng(0)
    retain = 0.95 + 0.04 * rng.random(40)
    test = 0.10 + 0.05 * rng.random(40)
    forget = np.array([0.97, 0.12, 0.13])
    assert M.svc_mia_efficacy(retain, test, forget, seed=0) == pytest.approx(2 / 3)
    inputs = M.MetricInputs(forget=M.SetPredictions(np.ones(3, bool), forget),
                            retain=M.SetPredictions(np.ones(40, bool), retain),
                            test=M.SetPredictions(np.ones(40, bool), test))
    assert METRICS.get("MIA-Efficacy")(inputs) == pytest.approx(2 / 3)


def test_mia_trains_on_balanced_sets(monkeypatch):
    seen = {}

    class RecordingSVC:
        def __init__(self, **kw):
            seen["kw"] = kw

        def fit(self, x, y):
            seen["counts"] = (int((y == 1).sum()), int((y == 0).sum()))
            return self

        def predict(self, x):
            return np.ones(len(x))  # everything called a member -> efficacy 0

    import sklearn.svm

    monkeypatch.setattr(sklearn.svm, "SVC", RecordingSVC)
    eff = M.svc_mia_efficacy(np.linspace(0, 1, 50), np.linspace(0, 1, 12), np.zeros(5), seed=1)
    assert seen["counts"] == (12, 12) and eff == 0.0
    assert seen["kw"] == {"C": 3, "gamma": "auto", "kernel": "rbf"}  # SalUn's SVC settings
    M.svc_mia_efficacy(np.linspace(0, 1, 50), np.linspace(0, 1, 12), np.zeros(5), seed=1, max_samples=7)
    assert seen["counts"] == (7, 7)


def test_avg_gap_and_rte_by_hand():
    ref = {"UA": 0.5, "RA": 0.9, "TA": 0.4, "MIA-Efficacy": 0.0}
    values = {"UA": 0.25, "RA": 0.8, "TA": 0.5, "MIA-Efficacy": 0.2}
    assert M.avg_gap(values, ref) == pytest.approx((0.25 + 0.1 + 0.1 + 0.2) / 4)
    inputs = _inputs(reference={"UA": 0.5, "RA": 0.8, "TA": 0.5, "MIA-Efficacy": 0.0}, wall_seconds=12.5)
    mia = METRICS.get("MIA-Efficacy")(inputs)
    # UA, RA, TA of _inputs equal the reference exactly, so the gap is the MIA term alone
    assert METRICS.get("Avg.Gap")(inputs) == pytest.approx(abs(mia) / 4)
    assert METRICS.get("RTE")(inputs) == 12.5
    assert set(M.compute_metrics(inputs)) == {"UA", "RA", "TA", "MIA-Efficacy", "Avg.Gap", "RTE"}


def test_metric_input_errors_name_the_fix():
    with pytest.raises(ValueError, match="reference=<Retrain metrics>"):
        METRICS.get("Avg.Gap")(_inputs())
    with pytest.raises(ValueError, match="wall_seconds"):
        METRICS.get("RTE")(_inputs())
    with pytest.raises(ValueError, match="missing"):
        M.avg_gap({"UA": 0.1}, {"UA": 0.2})
    with pytest.raises(ValueError, match="empty"):
        M.SetPredictions(np.array([], bool), np.array([]))
