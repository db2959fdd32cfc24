"""The one unlearning loop, shared by every method and by both the vision and the LLM stages.

The loop knows nothing about images or text. It gets
  * a model (``nn.Module``; its trainable parameters are what methods update),
  * forget and retain loaders (any re-iterable of batches with ``len``: ``TensorLoader`` or a DataLoader),
  * a ``Task``: how to move a batch to the device, the mean per-example loss of a batch, and task-specific
    operations such as relabelling a batch at random (classification: uniform over the other classes),
  * a method instance (see ``methods.py``; built from the METHODS registry by ``make_method``),
  * a budget in epochs over D_f, a seed and a device,
and returns the updated model with per-step diagnostics, wall time and peak memory.

Budget accounting (the comparison is fair only if every method sees D_f equally often):
  * one budget unit = one forget mini-batch drawn during the update steps; the budget is
    ``epochs * len(forget_loader)`` units;
  * a method declares what one step costs (``forget_batches_per_step``): 1 for GA/GradDiff/RL/SalUn/...,
    T + 1 for OFMU (T inner ascent batches + one outer batch); methods that never touch D_f in their steps
    (FT, l1-sparse) are charged one unit per step, so they take as many optimizer steps as GA;
  * one-off passes in ``setup`` (SalUn's saliency mask, IU's gradient and Fisher) are counted and reported
    as ``setup_forget_batches`` but not charged, matching how those methods are run in the literature;
    their time is included in the wall time;
  * Retrain is the exception by design: it trains from scratch on D_r for its own number of epochs.

Peak memory. On CUDA: ``torch.cuda.max_memory_allocated``. On CPU, tracemalloc is useless here: it sees
only Python's allocator, not torch's C++ tensor allocations. We use the kernel's resident-set high-water
mark instead: write "5" to /proc/self/clear_refs (Linux >= 4.0) to reset VmHWM, read VmRSS before and
VmHWM after, and report the difference (bytes above the resident size at the start: model copies,
activations, autograd graphs, optimizer state). Where the reset is not available the fallback is
``resource.getrusage(...).ru_maxrss`` minus the starting RSS, which can only over-state the peak (it is
the process-lifetime maximum); the method used is reported as ``memory_measure``. Freed heap memory is
returned to the OS (glibc ``malloc_trim``) before the start reading; even so, compare peak memory of
methods run in separate processes (as the pipeline does) for the cleanest numbers.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------------------


class Task:
    """What the loop needs to know about a domain. Subclass for text (token-level loss) in the LLM stage."""

    def to_device(self, batch: Any, device: torch.device) -> Any:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """Mean per-example loss of ``batch`` (a scalar with a graph)."""
        raise NotImplementedError

    def random_label_batch(self, batch: Any, generator: torch.Generator) -> Any:
        """The batch with its targets replaced by random wrong ones (RL, SalUn)."""
        raise NotImplementedError


class ClassificationTask(Task):
    """Batches are ``(x, y)``; the loss is cross-entropy."""

    def __init__(self, num_classes: int):
        if num_classes < 2:
            raise ValueError(f"a classification task needs >= 2 classes, got {num_classes}")
        self.num_classes = int(num_classes)

    def to_device(self, batch, device):
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def loss(self, model, batch):
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def random_label_batch(self, batch, generator):
        # Drawn uniformly among the *other* classes (a shift of 1..C-1 mod C), per batch, from the loop's
        # generator. SalUn's code draws from all C classes once per example; excluding the true label is
        # chosen here because a "random" label equal to the true one reinforces what should be forgotten.
        x, y = batch
        shift = torch.randint(1, self.num_classes, y.shape, generator=generator).to(y.device)
        return x, (y + shift) % self.num_classes


def num_examples(loader) -> int:
    """Examples in a loader: ``TensorLoader.x`` or a DataLoader's ``dataset``."""
    for attr in ("x", "dataset"):
        if hasattr(loader, attr):
            return len(getattr(loader, attr))
    raise TypeError(f"cannot tell how many examples {type(loader).__name__} holds; give it a `dataset` attribute")


# ----------------------------------------------------------------------------------------------------------
# Context handed to methods
# ----------------------------------------------------------------------------------------------------------


class _Cycle:
    """Endless batches from a re-iterable loader; counts the batches drawn."""

    def __init__(self, loader: Iterable | None, name: str):
        self.loader, self.name, self.count, self._it = loader, name, 0, None

    def next(self):
        if self.loader is None:
            raise ValueError(f"this method needs {self.name} batches but no {self.name} loader was given")
        if self._it is None:
            self._it = iter(self.loader)
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            try:
                batch = next(self._it)
            except StopIteration:
                raise ValueError(f"the {self.name} loader yields no batches; check that the set is not empty") from None
        self.count += 1
        return batch


@dataclass
class Context:
    """Everything a method may use: model, task, device, seeded generator, batch sources, progress."""

    model: nn.Module
    task: Task
    device: torch.device
    seed: int
    forget_loader: Any
    retain_loader: Any
    generator: torch.Generator
    total_steps: int = 0
    step_index: int = 0
    _forget: _Cycle = field(init=False, repr=False)
    _retain: _Cycle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._forget = _Cycle(self.forget_loader, "forget")
        self._retain = _Cycle(self.retain_loader, "retain")

    def next_forget(self):
        return self.task.to_device(self._forget.next(), self.device)

    def next_retain(self):
        return self.task.to_device(self._retain.next(), self.device)

    @property
    def forget_batches(self) -> int:
        return self._forget.count

    @property
    def retain_batches(self) -> int:
        return self._retain.count

    @property
    def progress(self) -> float:
        """Fraction of the update steps done, in [0, 1) (for schedules such as l1-sparse's decay)."""
        return self.step_index / max(self.total_steps, 1)

    def params(self) -> list[Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def loss(self, batch) -> Tensor:
        return self.task.loss(self.model, batch)


# ----------------------------------------------------------------------------------------------------------
# Method base classes
# ----------------------------------------------------------------------------------------------------------


class Method:
    """An unlearning method: optional ``setup``, then ``num_steps`` calls of ``step``.

    ``keys`` names every setting the method accepts; their values live in ``config/methods/<name>.yaml``
    (``make_method`` reads it). A missing or unknown key is rejected by name.
    """

    name: str = "?"
    keys: tuple[str, ...] = ()
    forget_batches_per_step: int = 1

    def __init__(self, **hparams: Any):
        unknown = sorted(set(hparams) - set(self.keys))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} for method {self.name!r}; valid: {sorted(self.keys)}")
        missing = sorted(set(self.keys) - set(hparams))
        if missing:
            raise ValueError(f"method {self.name!r} needs a value for {missing}; build it with make_method, which "
                             f"reads config/methods/{self.name}.yaml")
        self.hparams = dict(hparams)
        self.validate()

    def validate(self) -> None:
        """Check hyperparameter values; raise ValueError naming the key and the expected range."""

    def budget_cost(self) -> int:
        """Budget units one step is charged: its forget batches, at least one."""
        return max(1, self.forget_batches_per_step)

    def num_steps(self, ctx: Context, epochs: float) -> int:
        if ctx.forget_loader is None:
            raise ValueError(f"method {self.name!r} needs a forget loader")
        budget = int(round(epochs * len(ctx.forget_loader)))
        # at least one step, so a tiny budget still runs the method; never more units than the budget otherwise
        return max(1, budget // self.budget_cost())

    def setup(self, ctx: Context) -> None:
        pass

    def step(self, ctx: Context) -> dict[str, float]:
        raise NotImplementedError


class SGDMethod(Method):
    """A method that updates through a torch SGD optimizer (momentum, weight decay, constant/cosine lr)."""

    keys = ("lr", "momentum", "weight_decay", "schedule", "grad_clip")

    def validate(self) -> None:
        h = self.hparams
        if not h["lr"] > 0:
            raise ValueError(f"method {self.name!r}: lr must be > 0, got {h['lr']}")
        if h["schedule"] not in ("constant", "cosine"):
            raise ValueError(f"method {self.name!r}: schedule must be 'constant' or 'cosine', got {h['schedule']!r}")

    def setup(self, ctx: Context) -> None:
        h = self.hparams
        self.optimizer = torch.optim.SGD(ctx.params(), lr=h["lr"], momentum=h["momentum"],
                                         weight_decay=h["weight_decay"])

    def apply(self, ctx: Context) -> None:
        """Clip (optional), apply the learning-rate schedule, take the optimizer step; p.grad must be set."""
        h = self.hparams
        if h["grad_clip"] is not None:
            nn.utils.clip_grad_norm_(ctx.params(), h["grad_clip"])
        lr = h["lr"]
        if h["schedule"] == "cosine":
            lr = 0.5 * h["lr"] * (1 + math.cos(math.pi * ctx.progress))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()


class LossMethod(SGDMethod):
    """A method defined by one scalar loss on (forget batch, retain batch): the "small loss hook"."""

    uses_forget = True
    uses_retain = True

    @property
    def forget_batches_per_step(self) -> int:  # type: ignore[override]
        return 1 if self.uses_forget else 0

    def loss(self, ctx: Context, forget_batch, retain_batch) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def before_update(self, ctx: Context) -> None:
        """Hook between backward and the optimizer step (SalUn masks gradients here)."""

    def step(self, ctx: Context) -> dict[str, float]:
        fb = ctx.next_forget() if self.uses_forget else None
        rb = ctx.next_retain() if self.uses_retain else None
        self.optimizer.zero_grad(set_to_none=True)
        loss, diag = self.loss(ctx, fb, rb)
        loss.backward()
        self.before_update(ctx)
        self.apply(ctx)
        diag["loss"] = float(loss.detach())
        return diag


# ----------------------------------------------------------------------------------------------------------
# Peak memory and the loop
# ----------------------------------------------------------------------------------------------------------


def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc malloc_trim) so the starting RSS counts live memory only.

    Without this, memory freed by an earlier run in the same process stays resident, and a later run that
    reuses it shows almost no RSS growth (measured: GradDiff after OFMU read 0.1 MiB instead of 25 MiB).
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the measure then over-counts reuse less precisely; the note in the doc applies


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict]:
    """Measure the peak memory of the block; fills ``{"bytes": ..., "measure": ...}`` on exit."""
    out: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield out
        torch.cuda.synchronize(device)
        out.update(bytes=torch.cuda.max_memory_allocated(device) - start, measure="torch.cuda.max_memory_allocated")
        return
    _release_freed_memory()
    start_kb = _proc_status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        resettable = start_kb is not None
    except OSError:
        resettable = False
    yield out
    if resettable:
        peak_kb = _proc_status_kb("VmHWM")
        out.update(bytes=max(0, (peak_kb - start_kb)) * 1024, measure="VmHWM-VmRSS (reset via clear_refs)")
    else:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
        out.update(bytes=max(0, peak_kb - (start_kb or 0)) * 1024, measure="ru_maxrss-VmRSS (lifetime max)")


@dataclass
class UnlearnResult:
    model: nn.Module
    method: str
    hparams: dict[str, Any]
    history: list[dict[str, float]]
    steps: int
    forget_batches: int  # drawn in update steps (the budgeted quantity)
    setup_forget_batches: int
    retain_batches: int
    forget_passes: float  # forget_batches / len(forget_loader)
    grad_evals: int  # gradient evaluations in update steps (``counting_gradients``)
    setup_grad_evals: int
    wall_seconds: float
    peak_memory_bytes: int
    memory_measure: str

    def summary(self) -> dict[str, Any]:
        """Everything but the model and the history, JSON-ready."""
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "history")}


@contextlib.contextmanager
def counting_gradients(params: Sequence[Tensor]) -> Iterator[list[int]]:
    """Gradient evaluations, counted rather than assumed: a hook on the first of ``params`` fires each time a
    gradient is computed through it (``backward``, ``autograd.grad``, the second backward of a Hessian-vector
    product, each finite-difference gradient), so ``count[0]`` counts every gradient evaluation of a loss that
    depends on it. A Hessian-vector product by double backward counts 2 (its two passes), as by differences."""
    count = [0]

    def hook(grad: Tensor) -> None:
        count[0] += 1

    handle = params[0].register_hook(hook) if params else None
    try:
        yield count
    finally:
        if handle is not None:
            handle.remove()


def checkpoint_steps(fractions: Sequence[float], steps_of) -> dict[int, list[float]]:
    """{step count: budget fractions} of the checkpoints. The checkpoint at fraction f of the budget is the
    model after ``steps_of(f)`` steps: as many as a run with budget f would take (the method's own count,
    which rounds a step of T + 1 forget batches down), so every method has used at most f of the passes."""
    steps: dict[int, list[float]] = {}
    for f in sorted(set(fractions)):
        if not 0 < f <= 1:
            raise ValueError(f"a checkpoint is a fraction of the budget in (0, 1], got {f}")
        steps.setdefault(int(steps_of(f)), []).append(f)
    return steps


def run_unlearning(
    model: nn.Module, method: Method, forget_loader, retain_loader, task: Task, epochs: float, seed: int,
    device: str | torch.device = "cpu", log_every: int = 1, progress: bool = False,
    checkpoints: Sequence[float] = (), on_checkpoint=None,
) -> UnlearnResult:
    """Run ``method`` on ``model`` in place for a budget of ``epochs`` passes over D_f (see module doc).

    ``checkpoints``: fractions of the budget at which ``on_checkpoint(fraction, info)`` is called with the
    model as it is then (info: steps, forget_passes, grad_evals, wall_seconds so far). The callback's own time is not
    counted in the wall time; its memory is (it should only copy the weights: evaluate after the run).
    """
    if epochs <= 0:
        raise ValueError(f"the budget must be > 0 epochs over the forget set, got {epochs}")
    device = torch.device(device)
    model.to(device).train()
    ctx = Context(model=model, task=task, device=device, seed=seed, forget_loader=forget_loader,
                  retain_loader=retain_loader, generator=torch.Generator().manual_seed(seed))
    history: list[dict[str, float]] = []
    n_forget = len(forget_loader) if forget_loader is not None else 0
    with peak_memory(device) as mem, contextlib.ExitStack() as counters:
        start = time.perf_counter()
        with counting_gradients(ctx.params()) as setup_grads:
            method.setup(ctx)
        setup_forget = ctx.forget_batches
        # counted on the parameters the steps train (setup may freeze some: RMU trains one block)
        grads = counters.enter_context(counting_gradients(ctx.params()))
        ctx.total_steps = method.num_steps(ctx, epochs)
        at = checkpoint_steps(checkpoints, lambda f: min(ctx.total_steps, method.num_steps(ctx, f * epochs))) \
            if on_checkpoint is not None else {}
        paused = 0.0  # seconds spent in on_checkpoint, not the method's
        if at and ctx.total_steps == 0:  # a one-shot method (IU: all in setup): every checkpoint is its result
            pause = time.perf_counter()
            for fraction in sorted(set(checkpoints)):
                on_checkpoint(fraction, {"steps": 0, "forget_passes": 0.0, "grad_evals": 0,
                                         "wall_seconds": pause - start})
            paused += time.perf_counter() - pause
        steps: Sequence[int] = range(ctx.total_steps)
        if progress:
            from tqdm import tqdm  # optional progress bar for long runs

            steps = tqdm(steps, desc=method.name, leave=False)
        for k in steps:
            ctx.step_index = k
            diag = method.step(ctx)
            if k % log_every == 0 or k == ctx.total_steps - 1:
                history.append({"step": k, "forget_batches": ctx.forget_batches - setup_forget, **diag})
            if k + 1 in at:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                pause = time.perf_counter()
                info = {"steps": k + 1, "forget_passes": (ctx.forget_batches - setup_forget) / n_forget if n_forget
                        else 0.0, "grad_evals": grads[0], "wall_seconds": pause - start - paused}
                for fraction in at[k + 1]:
                    on_checkpoint(fraction, info)
                paused += time.perf_counter() - pause
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start - paused
    used = ctx.forget_batches - setup_forget
    return UnlearnResult(
        model=model, method=method.name, hparams=dict(method.hparams), history=history, steps=ctx.total_steps,
        forget_batches=used, setup_forget_batches=setup_forget, retain_batches=ctx.retain_batches,
        forget_passes=used / n_forget if n_forget else 0.0, grad_evals=grads[0], setup_grad_evals=setup_grads[0],
        wall_seconds=wall,
        peak_memory_bytes=int(mem["bytes"]), memory_measure=mem["measure"],
    )
