"""The vision stage: datasets, models, metrics (UA, RA, TA, MIA-Efficacy), its API and its Domain.

Importing the package registers its datasets, models and metrics in ``ofmu.registry``.
    api      load_data, forget_split, train_original/train_retrain, unlearn, evaluate (the whole flow)
    domain   VisionDomain for the one cell runner (``ofmu.unlearning.cells``), reference checkpoints
"""

from ofmu.vision import data, metrics, models  # noqa: F401  (registration side effects)
