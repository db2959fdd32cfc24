"""The shared loop (budget accounting, seeds, memory), the models and checkpoints, and the vision API."""

import pytest
import torch

from ofmu.registry import MODELS, UnknownNameError
from ofmu.vision import api as V
from ofmu.vision.data import TensorLoader
from ofmu.unlearning.loop import ClassificationTask, peak_memory, run_unlearning
from ofmu.unlearning.methods import make_method
from ofmu.vision.models import (
    CorruptCheckpointError, build_model, checkpoint_metadata, load_checkpoint, save_checkpoint,
)

SMALL = {"width": 8, "hidden": 32}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    data = V.load_data("digits")
    return data, V.forget_split(data, "random", seed=0, fraction=0.1)


def _model(seed=0):
    return build_model("small_cnn", seed, in_channels=1, image_size=8, num_classes=10, **SMALL)


def _loaders(data, split, bs):
    f, r = torch.as_tensor(split.forget), torch.as_tensor(split.retain)
    return (TensorLoader(data.train_x[f], data.train_y[f], bs, seed=1),
            TensorLoader(data.train_x[r], data.train_y[r], bs, seed=2))


@pytest.mark.parametrize("name, hp, epochs, steps, forget_batches", [
    ("GA", {}, 2, 10, 10),               # |D_f| = 144, batch 32 -> 5 batches per pass
    ("GradDiff", {}, 1.4, 7, 7),
    ("FT", {}, 2, 10, 0),                # never touches D_f, charged one unit per step
    ("OFMU", {"inner_steps": 4}, 2, 2, 10),  # T + 1 = 5 forget batches per outer iteration
    ("OFMU", {"inner_steps": 3}, 2, 2, 8),   # 10 // 4 = 2 iterations: never more than the budget
    ("SalUn", {}, 1, 5, 5),              # the mask pass is reported separately
    ("IU", {}, 3, 0, 0),
])
def test_budget_counts_forget_batches(digits, name, hp, epochs, steps, forget_batches):
    data, split = digits
    forget, retain = _loaders(data, split, 32)
    assert len(forget) == 5
    res = run_unlearning(_model(), make_method(name, **hp), forget, retain, ClassificationTask(10), epochs, seed=0)
    assert res.steps == steps and res.forget_batches == forget_batches
    assert res.forget_passes == pytest.approx(forget_batches / 5)
    assert res.setup_forget_batches == (5 if name in ("SalUn", "IU") else 0)
    assert res.wall_seconds > 0 and res.peak_memory_bytes >= 0
    if steps:
        assert res.history[-1]["step"] == steps - 1


def test_same_seed_same_numbers_other_seed_differs(digits):
    data, split = digits
    orig = V.train_original(data, seed=0, epochs=1, batch_size=64, model_kwargs=SMALL)

    def run(seed):
        res = V.unlearn(V.copy_model(orig.model), data, split, "RL", epochs=1, batch_size=32, seed=seed)
        return V.evaluate(res.model, data, split, seed=seed), [h["loss"] for h in res.history]

    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert a[1] != c[1]
    again = V.train_original(data, seed=0, epochs=1, batch_size=64, model_kwargs=SMALL)
    assert all(torch.equal(p, q) for p, q in zip(orig.model.state_dict().values(), again.model.state_dict().values()))


def test_vision_api_end_to_end_on_digits(digits):
    data, split = digits
    train = {"seed": 0, "epochs": 5, "lr": 0.1, "batch_size": 32, "model_kwargs": SMALL}
    orig = V.train_original(data, **train)
    gold = V.train_retrain(data, split, **train)
    before = {k: v.clone() for k, v in orig.model.state_dict().items()}
    ref = V.evaluate(gold.model, data, split, seed=0)
    assert ref["TA"] > 0.8  # the smoke tier learns something
    res = V.unlearn(V.copy_model(orig.model), data, split, "GA", hparams={"lr": 0.02}, epochs=2, batch_size=32, seed=0)
    row = V.evaluate(res.model, data, split, seed=0, reference=ref, wall_seconds=res.wall_seconds)
    assert set(row) == {"UA", "RA", "TA", "MIA-Efficacy", "Avg.Gap", "RTE"}
    assert row["UA"] > V.evaluate(orig.model, data, split, seed=0)["UA"]  # ascent forgot something
    # the original model is untouched by unlearning a copy
    assert all(torch.equal(v, orig.model.state_dict()[k]) for k, v in before.items())


def test_class_scenario_splits_whole_class(digits):
    data, _ = digits
    split = V.forget_split(data, "class", seed=0, forget_class=3)
    assert set(data.train_y[torch.as_tensor(split.forget)].tolist()) == {3}
    assert 3 not in set(data.train_y[torch.as_tensor(split.retain)].tolist())


def test_peak_memory_sees_torch_allocations():
    with peak_memory(torch.device("cpu")) as mem:
        big = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        del big
    if "clear_refs" not in mem["measure"]:
        pytest.skip("VmHWM cannot be reset on this kernel")
    assert mem["bytes"] >= 200 * 2**20


def test_models_and_checkpoints(tmp_path):
    cnn = build_model("small_cnn", 0, in_channels=1, image_size=28, num_classes=10)
    assert cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert _model()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("small_cnn", 0, in_channels=1, image_size=30, num_classes=10)
    with pytest.raises(UnknownNameError, match="resnet18, small_cnn"):
        MODELS.get("resnet")
    # same seed, same weights; different seed, different weights
    assert torch.equal(_model(1).head[-1].weight, _model(1).head[-1].weight)
    assert not torch.equal(_model(1).head[-1].weight, _model(2).head[-1].weight)
    path = tmp_path / "m.safetensors"
    save_checkpoint(cnn, path, {"seed": 0, "dataset": "fashion_mnist"})
    loaded = load_checkpoint(build_model("small_cnn", 9, in_channels=1, image_size=28, num_classes=10), path)
    assert all(torch.equal(a, b) for a, b in zip(cnn.state_dict().values(), loaded.state_dict().values()))
    assert checkpoint_metadata(path) == {"seed": "0", "dataset": "fashion_mnist"}
    with pytest.raises(FileNotFoundError, match="run the training step"):
        load_checkpoint(cnn, tmp_path / "missing.safetensors")


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"", lambda b: b"not safetensors at all"])
def test_a_damaged_checkpoint_is_named_with_the_fix_never_used(tmp_path, damage):
    cnn = build_model("small_cnn", 0, in_channels=1, image_size=28, num_classes=10)
    path = tmp_path / "original_s0.safetensors"
    save_checkpoint(cnn, path, {"seed": 0})
    path.write_bytes(damage(path.read_bytes()))
    for read in (lambda: load_checkpoint(cnn, path), lambda: checkpoint_metadata(path)):
        with pytest.raises(CorruptCheckpointError, match=r"is damaged .*delete it and rerun") as err:
            read()
        assert str(path) in str(err.value)


def test_resnet18_has_cifar_stem(tmp_path):
    net = build_model("resnet18", 0, in_channels=3, image_size=32, num_classes=100)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    save_checkpoint(net, tmp_path / "r.safetensors")  # BatchNorm buffers included
    other = load_checkpoint(build_model("resnet18", 1, in_channels=3, image_size=32, num_classes=100),
                            tmp_path / "r.safetensors")
    assert torch.equal(other.bn1.running_var, net.bn1.running_var)


@pytest.mark.parametrize("name, kwargs", [("small_cnn", {"activation": "silu", "pool": "avg"}),
                                          ("resnet18", {"activation": "silu"})])
def test_smooth_twins_have_no_kinks(name, kwargs):
    """The first-order OFMU's models: no ReLU and no max-pool anywhere (finite differences of curvature are
    meaningless at kinks)."""
    net = build_model(name, 0, in_channels=1 if name == "small_cnn" else 3, image_size=28 if name == "small_cnn" else 32,
                      num_classes=10, **kwargs)
    kinds = {type(m) for m in net.modules()}
    assert torch.nn.ReLU not in kinds and torch.nn.MaxPool2d not in kinds
    assert torch.nn.SiLU in kinds


@pytest.mark.parametrize("kwargs, named", [({"activation": "tanh"}, "activation"), ({"pool": "min"}, "pool")])
def test_unknown_activation_or_pooling_is_named(kwargs, named):
    with pytest.raises(ValueError, match=named):
        build_model("small_cnn", 0, in_channels=1, image_size=28, num_classes=10, **kwargs)


@pytest.mark.parametrize("name, hp", [
    ("GA", {}), ("GradDiff", {}), ("FT", {}), ("SalUn", {}), ("IU", {}),
    ("OFMU", {"inner_steps": 3}),                                 # first-order: Hessian-vector products by differences
    ("OFMU", {"inner_steps": 3, "derivatives": "exact"}),         # double backward
])
def test_gradient_evaluations_are_counted(digits, monkeypatch, name, hp):
    """The loop's hook count (``grad_evals``) against an independent route: every call of ``torch.autograd.grad``
    and ``Tensor.backward`` counted by wrapping them, separately in setup (IU, SalUn) and in the steps."""
    data, split = digits
    forget, retain = _loaders(data, split, 32)
    calls = {"n": 0}
    grad, backward = torch.autograd.grad, torch.Tensor.backward

    def counted_grad(*args, **kwargs):
        calls["n"] += 1
        return grad(*args, **kwargs)

    def counted_backward(self, *args, **kwargs):
        calls["n"] += 1
        return backward(self, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted_grad)
    monkeypatch.setattr(torch.Tensor, "backward", counted_backward)
    method = make_method(name, **hp)
    setup = method.setup
    at_setup = {}

    def counted_setup(ctx):
        setup(ctx)
        at_setup["n"] = calls["n"]

    monkeypatch.setattr(method, "setup", counted_setup)
    res = run_unlearning(_model(), method, forget, retain, ClassificationTask(10), 2, seed=0)
    assert res.setup_grad_evals == at_setup["n"]
    assert res.grad_evals == calls["n"] - at_setup["n"]
    if name in ("GA", "GradDiff", "FT", "SalUn"):  # one loss, one backward per step: a hand count
        assert res.grad_evals == res.steps
    if name == "OFMU":  # more than one gradient per forget batch: what "equal passes" hides
        assert res.grad_evals > res.forget_batches
