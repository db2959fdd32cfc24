"""The one style table: method/series -> colour, label, order; figure sizes. Every figure uses it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402

SINGLE = (4.2, 3.2)  # one panel
ROW = (12.0, 3.4)  # a row of three panels
DPI = 150

# (label, colour) in legend order; unknown names fall back to matplotlib's cycle
SERIES: dict[str, tuple[str, str]] = {
    # unlearning methods
    "Original": ("Original", "#7f7f7f"),
    "Finetuned": ("Finetuned", "#7f7f7f"),
    "Retain": ("Retain", "#000000"),
    "Retrain": ("Retrain", "#000000"),
    "OFMU": ("OFMU", "#d62728"),
    "OFMU_beta0": ("OFMU (beta=0)", "#ff9896"),
    "OFMU_exact": ("OFMU (exact derivatives)", "#8b0000"),
    "FT": ("FT", "#8c564b"),
    "GA": ("GA", "#1f77b4"),
    "GradDiff": ("GradDiff", "#2ca02c"),
    "Scalarized": ("Scalarized", "#9467bd"),
    "IU": ("IU", "#bcbd22"),
    "RL": ("RL", "#17becf"),
    "l1-sparse": ("l1-sparse", "#e377c2"),
    "SalUn": ("SalUn", "#aec7e8"),
    "BLUR": ("BLUR", "#ffbb78"),
    "PDU": ("PDU", "#98df8a"),
    "NPO": ("NPO", "#ff7f0e"),
    "SimNPO": ("SimNPO", "#c5b0d5"),
    "RMU": ("RMU", "#c49c94"),
    "IdkDPO": ("IdkDPO", "#f7b6d2"),
    # theory problem families
    "quadratic_strong": ("quadratic, strongly convex", "#1f77b4"),
    "quadratic_convex": ("quadratic, merely convex", "#2ca02c"),
    "logistic_ridge": ("ridge-logistic", "#d62728"),
    "logistic_tail": ("logistic with an exponential tail (merely convex)", "#9467bd"),
}


def label(name: str) -> str:
    return SERIES.get(name, (name, None))[0]


def colour(name: str) -> str | None:
    return SERIES.get(name, (name, None))[1]


def order(names) -> list[str]:
    keys = list(SERIES)
    return sorted(names, key=lambda n: (keys.index(n) if n in keys else len(keys), n))


def new_figure(ncols: int = 1, size=None):
    fig, axes = plt.subplots(1, ncols, figsize=size or (SINGLE if ncols == 1 else (4.0 * ncols, 3.4)),
                             squeeze=False)
    return fig, axes[0]


def save(fig, path, tight: bool = True) -> None:
    """Save atomically (temp file, then rename) and close. ``tight=False`` keeps a layout set by the caller."""
    from ofmu.io import atomic_path

    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=str(path).rsplit(".", 1)[-1])
    plt.close(fig)
