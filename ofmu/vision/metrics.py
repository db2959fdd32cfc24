"""Vision unlearning metrics (SalUn / OpenUnlearning conventions, shared/paper-notes.md section 6).

All accuracies and MIA-Efficacy are fractions in [0, 1] (tables multiply by 100); RTE is in seconds.
  UA   = 1 - accuracy on D_f                 RA = accuracy on D_r            TA = test accuracy
  MIA-Efficacy = share of D_f that an SVC, trained on the true-label confidence with retain examples as
                 members (1) and test examples as non-members (0), predicts to be non-members.
  Avg.Gap      = mean over (UA, RA, TA, MIA-Efficacy) of |metric - metric of Retrain|
  MIA-AUC      = ROC AUC of the MIA's feature between D_r and test data (does the attack have signal?)
  RTE          = wall seconds of the unlearning run

Every metric is registered in ``ofmu.registry.METRICS`` with one signature, ``fn(inputs: MetricInputs)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ofmu.registry import METRICS

GAP_METRICS = ("UA", "RA", "TA", "MIA-Efficacy")


@dataclass
class SetPredictions:
    """Per-example results of a model on one set."""

    correct: np.ndarray  # bool
    confidence: np.ndarray  # softmax probability of the true label

    def __post_init__(self) -> None:
        if len(self.correct) == 0:
            raise ValueError("cannot evaluate on an empty set")
        if len(self.correct) != len(self.confidence):
            raise ValueError("correct and confidence differ in length")


@dataclass
class MetricInputs:
    """What the metrics read: predictions on D_f, D_r and the test set; wall time; the Retrain reference."""

    forget: SetPredictions
    retain: SetPredictions
    test: SetPredictions
    wall_seconds: float | None = None
    reference: dict[str, float] | None = None  # Retrain's metrics, for Avg.Gap
    seed: int = 0  # for the balanced subsample of the MIA's training set
    mia_max_samples: int | None = None  # cap per class of the SVC's training set (None: as large as balance allows)
    cache: dict = field(default_factory=dict, repr=False)


def even_batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of ceil(n / batch_size) batches whose sizes differ by at most one (no tiny remainder: BLAS
    picks other kernels, and other round-off, for matrices of a few rows)."""
    count = -(-n // batch_size)
    bounds = [n * j // count for j in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str | torch.device = "cpu",
            batch_size: int = 128) -> SetPredictions:
    """Correctness and true-label confidence of ``model`` (in eval mode) on (x, y).

    Batches of ~128 keep a small CNN's activations in cache (1.2x faster than 1024 on CPU, the same numbers:
    a row's values do not depend on the other rows of its batch).
    """
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty set")
    was_training = model.training
    model.eval()
    correct, conf = [], []
    try:
        for i, j in even_batches(len(x), batch_size):
            xb, yb = x[i:j].to(device), y[i:j].to(device)
            probs = torch.softmax(model(xb).float(), dim=1)
            correct.append((probs.argmax(1) == yb).cpu())
            conf.append(probs.gather(1, yb[:, None]).squeeze(1).cpu())
    finally:
        model.train(was_training)
    conf = torch.cat(conf).numpy()
    if not np.all(np.isfinite(conf)):  # finite weights whose outputs overflow: the run diverged all the same
        from ofmu.core.ofmu import NonFiniteError

        raise NonFiniteError(f"{int((~np.isfinite(conf)).sum())} of {len(conf)} confidences are not finite")
    return SetPredictions(torch.cat(correct).numpy(), conf)


def accuracy(p: SetPredictions) -> float:
    return float(np.mean(p.correct))


@METRICS.register("UA")
def unlearning_accuracy(inputs: MetricInputs) -> float:
    return 1.0 - accuracy(inputs.forget)


@METRICS.register("RA")
def retain_accuracy(inputs: MetricInputs) -> float:
    return accuracy(inputs.retain)


@METRICS.register("TA")
def test_accuracy(inputs: MetricInputs) -> float:
    return accuracy(inputs.test)


def svc_mia_efficacy(conf_retain: np.ndarray, conf_test: np.ndarray, conf_forget: np.ndarray, seed: int,
                     max_samples: int | None = None) -> float:
    """SalUn's SVC_MIA forget efficacy.

    The SVC (RBF kernel, C = 3, gamma = "auto", as in SalUn's evaluation/SVC_MIA.py) is trained on a
    balanced set: SalUn takes the first |test| retain examples as members; here a seeded random subset of
    the same size (the retain order is arbitrary in both). ``max_samples`` optionally caps each class (SVC
    training is quadratic: 10k + 10k points take ~5 s on 2 cores).
    """
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    n = min(len(conf_retain), len(conf_test))
    if max_samples is not None:
        n = min(n, int(max_samples))
    if n < 1:
        raise ValueError("the MIA needs at least one retain and one test example")
    members = rng.choice(conf_retain, size=n, replace=False) if n < len(conf_retain) else conf_retain
    non_members = rng.choice(conf_test, size=n, replace=False) if n < len(conf_test) else conf_test
    x = np.concatenate([members, non_members]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(1.0 - rbf_svc_predict(clf, np.asarray(conf_forget, dtype=np.float64)).mean())


def rbf_svc_predict(clf, x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``clf.predict(x[:, None])``; for a fitted binary RBF SVC on one feature (gamma "auto" = 1) faster.

    libsvm evaluates the decision function point by point, as long as the fit itself; here it is one vectorized
    sum over the support vectors (from sklearn's public ``dual_coef_``, ``support_vectors_``, ``intercept_``).
    Points whose decision value is within round-off of 0 get libsvm's own label, so every label is libsvm's.
    """
    fitted = getattr(clf, "support_vectors_", np.zeros((0, 0)))
    if not (fitted.ndim == 2 and fitted.shape[1] == 1 and len(getattr(clf, "classes_", ())) == 2
            and getattr(clf, "kernel", None) == "rbf" and getattr(clf, "gamma", None) == "auto"):
        return clf.predict(x[:, None])  # any other classifier: its own prediction
    sv, coef, b = clf.support_vectors_[:, 0], clf.dual_coef_[0], float(clf.intercept_[0])
    decision = np.concatenate([np.exp(-(x[i:i + chunk, None] - sv[None, :]) ** 2) @ coef + b
                               for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0)
    labels = clf.classes_[(decision > 0).astype(int)]  # sklearn's binary rule
    near_zero = np.flatnonzero(np.abs(decision) <= 1e-9 * (np.abs(coef).sum() + abs(b)))
    if len(near_zero):
        labels[near_zero] = clf.predict(x[near_zero, None])
    return labels


@METRICS.register("MIA-Efficacy")
def mia_efficacy(inputs: MetricInputs) -> float:
    if "MIA-Efficacy" not in inputs.cache:
        inputs.cache["MIA-Efficacy"] = svc_mia_efficacy(
            inputs.retain.confidence, inputs.test.confidence, inputs.forget.confidence, inputs.seed,
            inputs.mia_max_samples)
    return inputs.cache["MIA-Efficacy"]


@METRICS.register("MIA-AUC")
def mia_auc(inputs: MetricInputs) -> float:
    """Whether the MIA has signal at all: ROC AUC of the attack's feature (true-label confidence) between
    D_r (members) and test data (non-members). The SVC sees only this one feature, so no attack of its kind
    separates members better than a threshold on it; 0.5 = no signal."""
    from sklearn.metrics import roc_auc_score

    conf = np.concatenate([inputs.retain.confidence, inputs.test.confidence])
    member = np.concatenate([np.ones(len(inputs.retain.confidence)), np.zeros(len(inputs.test.confidence))])
    return float(roc_auc_score(member, conf))


def avg_gap(values: dict[str, float], reference: dict[str, float], metrics=GAP_METRICS) -> float:
    """Mean absolute difference to the reference (Retrain) over ``metrics`` (UA, RA, TA, MIA-Efficacy; the
    pipeline leaves out a metric without signal, see ``ofmu.unlearning.signal``)."""
    missing = [k for k in metrics if k not in values or k not in reference]
    if missing:
        raise ValueError(f"Avg.Gap needs {list(metrics)} for both the model and Retrain; missing {missing}")
    return float(np.mean([abs(values[k] - reference[k]) for k in metrics]))


@METRICS.register("Avg.Gap")
def avg_gap_metric(inputs: MetricInputs) -> float:
    if inputs.reference is None:
        raise ValueError("Avg.Gap needs the Retrain model's metrics: pass reference=<Retrain metrics>")
    return avg_gap({k: METRICS.get(k)(inputs) for k in GAP_METRICS}, inputs.reference)


@METRICS.register("RTE")
def run_time_efficiency(inputs: MetricInputs) -> float:
    if inputs.wall_seconds is None:
        raise ValueError("RTE needs the wall time of the unlearning run: pass wall_seconds")
    return float(inputs.wall_seconds)


def compute_metrics(inputs: MetricInputs, names: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """The named metrics (default: every metric whose inputs are present)."""
    if names is None:
        names = [*GAP_METRICS]
        if inputs.reference is not None:
            names.append("Avg.Gap")
        if inputs.wall_seconds is not None:
            names.append("RTE")
    return {name: METRICS.get(name)(inputs) for name in names}
