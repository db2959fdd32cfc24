"""Models of the vision stage and their safetensors checkpoints.

``small_cnn``: two conv-ReLU-maxpool blocks and a two-layer head, no BatchNorm (so every forward of OFMU's
many-evaluation iteration sees the same function, and double/triple backward need no batch-statistics
terms); ~0.42M parameters at 28x28, several thousand images/s on 2 CPU cores. It adapts its head to the
input size, so sklearn's 8x8 digits run on the same architecture.
``resnet18``: torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 first conv, no max-pool), as in
SalUn and most CIFAR unlearning papers.

Models are built on CPU from an explicit seed and moved by the caller; no code here picks a device.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ofmu.io import atomic_path
from ofmu.registry import MODELS
from ofmu.seeds import seeded


class AvgPool2x2(nn.AvgPool2d):
    """``nn.AvgPool2d(2)``, computing the same numbers faster when no gradient is recorded (evaluation).

    PyTorch's CPU kernel for 2x2 average pooling of NCHW tensors is slow (~30% of small_cnn's forward). The
    sum of the four strided quarter-views, added in the kernel's order and divided by 4, gives the kernel's
    numbers bit for bit (tests/unit/test_eval_speed.py) in half the time; with autograd on, the kernel and its
    faster backward run.
    """

    def __init__(self, kernel_size: int = 2):
        if kernel_size != 2:
            raise ValueError(f"AvgPool2x2 pools 2x2 windows; got kernel_size={kernel_size}")
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() or x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2
                or x.dtype not in (torch.float32, torch.float64) or not x.is_contiguous()):
            return super().forward(x)
        total = x[..., 0::2, 0::2] + x[..., 0::2, 1::2]  # top left + top right
        total += x[..., 1::2, 0::2]  # + bottom left
        total += x[..., 1::2, 1::2]  # + bottom right
        return total.div_(4)


ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
POOLINGS = {"max": nn.MaxPool2d, "avg": AvgPool2x2}


@MODELS.register("small_cnn")
class SmallCNN(nn.Module):
    """``activation``/``pool``: "relu"/"max" is the classic CNN; "silu"/"avg" is its smooth twin, on which
    Hessian-vector products are well defined everywhere, so finite-difference (first-order OFMU) and
    autograd curvature agree (at ReLU/max-pool kinks they differ by >= 46%, shared/derivative-notes.md)."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, width: int = 32,
                 hidden: int = 128, activation: str = "relu", pool: str = "max"):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"small_cnn needs an image size divisible by 4 (two 2x2 poolings), got {image_size}")
        for key, value, valid in (("activation", activation, ACTIVATIONS), ("pool", pool, POOLINGS)):
            if value not in valid:
                raise ValueError(f"small_cnn {key} {value!r} is not one of {sorted(valid)}")
        act, pooling = ACTIVATIONS[activation], POOLINGS[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), act(), pooling(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), act(), pooling(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * (image_size // 4) ** 2, hidden), act(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@MODELS.register("resnet18")
def resnet18_cifar(in_channels: int = 3, image_size: int = 32, num_classes: int = 10, activation: str = "relu",
                   **_: object) -> nn.Module:
    """torchvision ResNet-18 with the CIFAR stem; ``image_size`` is accepted for a uniform signature.
    ``activation="silu"`` swaps every ReLU for SiLU (smooth curvature for the first-order OFMU; the field's
    ResNet-18, and the paper tier's default, is ReLU)."""
    from torchvision.models import resnet18

    if activation not in ACTIVATIONS:
        raise ValueError(f"resnet18 activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    model = resnet18(num_classes=num_classes)
    for module in list(model.modules()) if activation != "relu" else []:
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, ACTIVATIONS[activation]())
    # 32x32 inputs: the ImageNet stem (7x7 stride 2 + max-pool) would shrink them to 8x8 before layer1
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def build_model(name: str, seed: int, in_channels: int, image_size: int, num_classes: int, **kwargs) -> nn.Module:
    """A registered model with weights drawn from ``seed`` (unknown names list the valid ones)."""
    factory = MODELS.get(name)
    with seeded(seed):
        return factory(in_channels=in_channels, image_size=image_size, num_classes=num_classes, **kwargs)


def save_checkpoint(model: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Weights and buffers as safetensors, written atomically; metadata values must be strings."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})


class CorruptCheckpointError(OSError):
    """A checkpoint file exists but cannot be read (truncated, empty, not safetensors)."""


@contextmanager
def _readable(path):
    """Turn safetensors' own error on a damaged file into one that names the file and the fix: a cached model
    that is corrupt is never used (the pipeline does not rebuild a file that exists, so it must be deleted)."""
    from safetensors import SafetensorError

    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; run the training step that writes it first")
    try:
        yield
    except SafetensorError as err:
        raise CorruptCheckpointError(f"checkpoint {path} is damaged ({err}); delete it and rerun: the pipeline "
                                     f"retrains it") from None


def load_checkpoint(model: nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load safetensors weights into ``model`` (strict: every key must match) and move it to ``device``."""
    from safetensors.torch import load_file

    with _readable(path):
        weights = load_file(str(path))
    model.load_state_dict(weights, strict=True)
    return model.to(device)


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    with _readable(path), safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
