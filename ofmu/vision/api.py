"""High-level API of the vision stage, called by the workflow scripts (which only read config and write files).

    data   = load_data("fashion_mnist")                              # or mnist, digits, cifar10, cifar100
    split  = forget_split(data, "random", seed=0, fraction=0.1)      # or "class", forget_class=3
    orig   = train_original(data, "small_cnn", seed=0, epochs=2)     # UnlearnResult; orig.model
    gold   = train_retrain(data, split, "small_cnn", seed=0, epochs=2)
    model  = copy_model(orig.model)
    res    = unlearn(model, data, split, "OFMU", epochs=2, seed=0)  # res.model, res.history, res.wall_seconds
    ref    = evaluate(gold.model, data, split, seed=0)
    row    = evaluate(res.model, data, split, seed=0, reference=ref, wall_seconds=res.wall_seconds)

Seeds: one run seed drives everything (forget set, model init, batch order, random labels) through
distinct named streams (``ofmu.seeds.derive_seed``), so changing one component does not shift the others.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ofmu.vision.data import ForgetSplit, ImageData, TensorLoader, cifar_augment, load_dataset, make_forget_split
from ofmu.unlearning.loop import ClassificationTask, UnlearnResult, run_unlearning
from ofmu.seeds import derive_seed
from ofmu.unlearning.methods import make_method
from ofmu.vision.metrics import MetricInputs, compute_metrics, predict
from ofmu.vision.models import build_model

def load_data(dataset: str, **kwargs: Any) -> ImageData:
    """A registered dataset by name; kwargs: root, cache_dir, allow_download, (CIFAR) verify_md5, val_fraction."""
    return load_dataset(dataset, **kwargs)


def forget_split(data: ImageData, scenario: str, seed: int, fraction: float = 0.1,
                 forget_class: int | None = None) -> ForgetSplit:
    """D_f / D_r indices into ``data.train_*`` (random: ``fraction`` of the set; class: one whole class)."""
    return make_forget_split(data.train_y, scenario, seed, fraction=fraction, forget_class=forget_class)


def train_subset(data: ImageData, size: int | None, seed: int = 0) -> ImageData:
    """The dataset with a fixed random ``size``-image subset of its training set (the test set whole): a
    set small enough for the CPU-sized model to memorize, so that forgetting is measurable. The same
    subset for every seed and job (its own named seed stream)."""
    if size is None or size >= len(data.train_y):
        return data
    if size < 2 * data.num_classes:
        raise ValueError(f"train_subset must leave a few images per class, got {size} for {data.num_classes} classes")
    g = torch.Generator().manual_seed(derive_seed(seed, "train_subset"))
    keep = torch.randperm(len(data.train_y), generator=g)[:size].sort().values
    return ImageData(data.name, data.train_x[keep], data.train_y[keep], data.test_x, data.test_y, data.num_classes,
                     data.classes, data.val_x, data.val_y, f"{data.source} (training subset of {size})")


def new_model(data: ImageData, model_name: str = "small_cnn", seed: int = 0, **kwargs: Any) -> nn.Module:
    c, h, _ = data.image_shape
    return build_model(model_name, derive_seed(seed, "model"), in_channels=c, image_size=h,
                       num_classes=data.num_classes, **kwargs)


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy (unlearning updates in place; the cached original must stay untouched)."""
    return copy.deepcopy(model)


def task_for(data: ImageData) -> ClassificationTask:
    return ClassificationTask(data.num_classes)


def _augment(data: ImageData):
    # CIFAR is trained with crop + flip (SalUn, as everyone); the 28x28 greyscale sets need none
    return cifar_augment if data.name.startswith("cifar") else None


def make_loaders(data: ImageData, split: ForgetSplit | None, batch_size: int, seed: int):
    """(forget loader, retain loader); with ``split=None`` the retain loader covers the whole training set."""
    aug = _augment(data)
    if split is None:
        return None, TensorLoader(data.train_x, data.train_y, batch_size, seed=derive_seed(seed, "retain_loader"),
                                  augment=aug)
    f, r = torch.as_tensor(split.forget), torch.as_tensor(split.retain)
    forget = TensorLoader(data.train_x[f], data.train_y[f], batch_size, seed=derive_seed(seed, "forget_loader"),
                          augment=aug)
    retain = TensorLoader(data.train_x[r], data.train_y[r], batch_size, seed=derive_seed(seed, "retain_loader"),
                          augment=aug)
    return forget, retain


def _train(data, split, model_name, seed, epochs, lr, batch_size, device, model_kwargs, progress,
           settings) -> UnlearnResult:
    model = new_model(data, model_name, seed, **(model_kwargs or {}))
    _, loader = make_loaders(data, split, batch_size, seed)
    # Retrain's optimizer settings (config/methods/Retrain.yaml, or the caller's copy); epochs and lr per tier
    method = make_method("Retrain", "vision", **{**(settings or {}), "epochs": epochs, "lr": lr})
    # Retrain re-draws the weights from the method seed: a fresh start, independent of the model's init seed
    return run_unlearning(model, method, None, loader, task_for(data), epochs=1, seed=derive_seed(seed, "method"),
                          device=device, log_every=50, progress=progress)


def train_original(data: ImageData, model_name: str = "small_cnn", seed: int = 0, epochs: float = 3,
                   lr: float = 0.05, batch_size: int = 128, device: str | torch.device = "cpu",
                   model_kwargs: dict | None = None, progress: bool = False, settings: dict | None = None) -> UnlearnResult:
    """Train on the full training set (Retrain's settings: SGD momentum 0.9, wd 5e-4, cosine lr). ``.model``
    is the result; ``settings`` replace Retrain's file values (the pipeline passes them as job params)."""
    return _train(data, None, model_name, seed, epochs, lr, batch_size, device, model_kwargs, progress, settings)


def train_retrain(data: ImageData, split: ForgetSplit, model_name: str = "small_cnn", seed: int = 0,
                  epochs: float = 3, lr: float = 0.05, batch_size: int = 128, device: str | torch.device = "cpu",
                  model_kwargs: dict | None = None, progress: bool = False, settings: dict | None = None) -> UnlearnResult:
    """The gold standard: the same training on D_r only. Its wall time is Retrain's RTE."""
    return _train(data, split, model_name, seed, epochs, lr, batch_size, device, model_kwargs, progress, settings)


def unlearn(model: nn.Module, data: ImageData, split: ForgetSplit, method: str, hparams: dict | None = None,
            epochs: float = 2, batch_size: int = 128, seed: int = 0, device: str | torch.device = "cpu",
            progress: bool = False) -> UnlearnResult:
    """Run a registered method on ``model`` (in place) for ``epochs`` passes over D_f.

    ``hparams`` override the method's vision settings (``config/methods/<method>.yaml``).
    ``method="Retrain"`` trains from scratch on D_r for ``hparams['epochs']`` instead.
    """
    m = make_method(method, "vision", **(hparams or {}))
    forget, retain = make_loaders(data, split, batch_size, seed)
    return run_unlearning(model, m, forget, retain, task_for(data), epochs=epochs, seed=derive_seed(seed, "method"),
                          device=device, progress=progress)


def evaluate(model: nn.Module, data: ImageData, split: ForgetSplit, seed: int = 0, device: str | torch.device = "cpu",
             reference: dict[str, float] | None = None, wall_seconds: float | None = None,
             mia_max_samples: int | None = None, batch_size: int = 128,
             retain_max_samples: int | None = None, names: tuple[str, ...] | None = None,
             test_max_samples: int | None = None) -> dict[str, float]:
    """UA, RA, TA, MIA-Efficacy (+ Avg.Gap with ``reference``, + RTE with ``wall_seconds``) as fractions.

    ``retain_max_samples`` evaluates RA (and the MIA's member side) on a seeded subset of D_r, the same
    subset for every method of a run: D_r is 90% of the training set and dominates evaluation time.
    Class-wise forgetting (``split.scenario`` "class") leaves the forgotten class's test images out of TA
    and of the MIA's non-members (SalUn's protocol): TA then measures what should be kept.
    ``test_max_samples``: TA (and the MIA's non-members) on one fixed random subset of those test images,
    the same for every model, seed and method. ``names``: the metrics (default: UA, RA, TA, MIA-Efficacy,
    plus Avg.Gap / RTE when their inputs are given).
    """
    model = model.to(device)
    f, r = torch.as_tensor(split.forget), torch.as_tensor(split.retain)
    test = torch.ones(len(data.test_y), dtype=torch.bool)
    if split.scenario == "class":
        test = ~torch.isin(data.test_y, torch.unique(data.train_y[f]))
    test = torch.nonzero(test).flatten()
    if test_max_samples is not None and len(test) > test_max_samples:
        # one fixed subset of the test set for every model, seed and method (paired comparisons)
        g = torch.Generator().manual_seed(derive_seed(0, "test_subset"))
        test = test[torch.randperm(len(test), generator=g)[:test_max_samples]].sort().values
    if retain_max_samples is not None and len(r) > retain_max_samples:
        g = torch.Generator().manual_seed(derive_seed(seed, "mia"))
        r = r[torch.randperm(len(r), generator=g)[:retain_max_samples]]
    inputs = MetricInputs(
        forget=predict(model, data.train_x[f], data.train_y[f], device, batch_size),
        retain=predict(model, data.train_x[r], data.train_y[r], device, batch_size),
        test=predict(model, data.test_x[test], data.test_y[test], device, batch_size),
        wall_seconds=wall_seconds, reference=reference, seed=derive_seed(seed, "mia"),
        mia_max_samples=mia_max_samples,
    )
    return compute_metrics(inputs, names)
