"""LLM unlearning on the one shared loop: a text Task, QA loaders, and the LLM-only methods.

The loop (``ofmu.unlearning.loop``) and the shared methods (GA, GradDiff, Scalarized, BLUR, PDU, OFMU in
``ofmu.unlearning.methods``) are used unchanged: they only call ``task.loss(model, batch)``, which here is
the mean answer-token NLL (``ofmu.llm.models.answer_nll``, averaged per example, then over the batch).
The LLM-only methods below are small hooks registered in the same ``METHODS`` registry:

  NPO       gamma * (2/beta) E[-log sigmoid(-beta log(pi/pi_ref)(y_f|x_f))] + alpha * NLL(retain)
  SimNPO    gamma * (2/beta) E[-log sigmoid(beta (NLL_f/|y_f| - delta))]   + alpha * NLL(retain)
  IdkDPO    gamma * (2/beta) E[-log sigmoid(beta (log-ratio(idk) - log-ratio(y_f)))] + alpha * NLL(retain)
  RMU       gamma * MSE(h_l(x_f), c u) + alpha * MSE(h_l(x_r), h_l^ref(x_r)), only a few weights trained

(formulations of OpenUnlearning's trainers: ``src/trainer/unlearn/{npo,simnpo,dpo,rmu}.py``; sequence
log-likelihoods are SUMS over answer tokens, as its ``compute_batch_nll``; SimNPO divides by the answer
length). NPO, IdkDPO and RMU need the model before unlearning as a frozen reference: each takes a copy in
``setup`` (the loop calls ``setup`` before the first update), so no change to the loop was needed and the
copy's memory is part of the method's measured peak, as it is in practice.

One difference from OpenUnlearning: its retain NLL is Hugging Face's token-level mean over the whole
batch; here every retain term is ``task.loss``, the mean over examples of each example's token mean, so
that the retain term of every method (shared or LLM-only) is the same number.

Optimizer: all hooks step through the shared ``SGDMethod`` (SGD, momentum 0.9, weight decay 5e-4), as the
vision baselines and, in spirit, OFMU's plain gradient steps do; OpenUnlearning uses AdamW at lr 1e-5 for
7B/1B models with 10 epochs. Neither the optimizer nor its lr transfers to a ~1M-parameter GPT-2 trained
here at lr 3e-3, so every LLM learning rate was re-chosen on this model (the ``llm:`` blocks of ``config/methods/*.yaml``).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ofmu.llm.data import IGNORE_INDEX, QACollator, pad_batch
from ofmu.llm.idk import idk_answers
from ofmu.llm.models import answer_nll
from ofmu.unlearning.loop import Context, LossMethod, SGDMethod, Task
from ofmu.unlearning.methods import register_method

Tensor = torch.Tensor
BATCH_KEYS = ("input_ids", "attention_mask", "labels")
SGD_KEYS = SGDMethod.keys


# ----------------------------------------------------------------------------------------------------------
# Task and loaders
# ----------------------------------------------------------------------------------------------------------


def _core(batch: dict) -> dict:
    return {k: batch[k] for k in BATCH_KEYS}


class LanguageModelTask(Task):
    """Batches are dicts of input_ids / attention_mask / labels (labels -100 off the answer), optionally
    with ``index`` (row ids) and ``alternate`` (the same questions with "I don't know" answers)."""

    def to_device(self, batch, device):
        return {k: (self.to_device(v, device) if isinstance(v, dict) else v.to(device)) for k, v in batch.items()}

    def loss(self, model, batch):
        return answer_nll(model, _core(batch)).mean()

    def sequence_nll(self, model: nn.Module, batch: dict) -> Tensor:
        """Per-example SUM of answer-token NLLs, Tensor[B] (-log pi(y|x), as OpenUnlearning's compute_batch_nll)."""
        return answer_nll(model, _core(batch), reduction="sum")

    def answer_lengths(self, batch: dict) -> Tensor:
        """Answer tokens per example that carry loss (the shifted labels), Tensor[B]."""
        return (batch["labels"][:, 1:] != IGNORE_INDEX).sum(dim=1).clamp_min(1)

    def module_output(self, model: nn.Module, batch: dict, module_name: str) -> tuple[Tensor, Tensor]:
        """Output of the named submodule (e.g. ``transformer.h.1``) and the answer-token mask, same positions.

        A forward hook, as OpenUnlearning's RMU; with a block that returns a tuple the hidden state is [0].
        """
        module = resolve_module(model, module_name)
        cache: list[Tensor] = []
        handle = module.register_forward_hook(lambda m, i, o: cache.append(o[0] if isinstance(o, tuple) else o))
        try:
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        finally:
            handle.remove()
        return cache[0], batch["labels"] != IGNORE_INDEX

    def random_label_batch(self, batch, generator):
        raise NotImplementedError(
            "random-label methods (RL, SalUn) are defined for classification; for language models use IdkDPO "
            "(alternative 'I don't know' answers) or NPO/SimNPO")


def resolve_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        blocks = [n for n in modules if re.fullmatch(r"(transformer\.h|model\.layers)\.\d+", n)]
        raise ValueError(f"model has no module {name!r}; transformer blocks are {blocks}")
    return modules[name]


class QALoader:
    """Re-iterable mini-batches of encoded QA rows, reshuffled every pass from a seeded generator.

    ``alternate_answers`` (one per row) adds ``batch["alternate"]``: the same questions with those answers
    (IdkDPO's preferred responses). ``dataset`` holds the rows (the loop counts examples through it).
    """

    def __init__(self, rows: Sequence[dict], tokenizer, batch_size: int, seed: int, max_length: int = 128,
                 alternate_answers: Sequence[str] | None = None, shuffle: bool = True):
        if not rows:
            raise ValueError("QALoader got no rows; check the split name and the corpus directory")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = list(rows)
        self.batch_size, self.shuffle, self.pad = int(batch_size), shuffle, tokenizer.pad_token_id
        collator = QACollator(tokenizer, max_length)
        self.encoded = collator.encode([r["question"] for r in rows], [r["answer"] for r in rows])
        self.alternate = None
        if alternate_answers is not None:
            if len(alternate_answers) != len(rows):
                raise ValueError(f"{len(alternate_answers)} alternate answers for {len(rows)} rows")
            self.alternate = collator.encode([r["question"] for r in rows], list(alternate_answers))
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return math.ceil(len(self.encoded) / self.batch_size)

    def __iter__(self):
        n = len(self.encoded)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for idx in order.split(self.batch_size):
            ids = idx.tolist()
            batch = pad_batch([self.encoded[i] for i in ids], self.pad)
            batch["index"] = idx.clone()
            if self.alternate is not None:
                batch["alternate"] = pad_batch([self.alternate[i] for i in ids], self.pad)
            yield batch


def idk_alternates(rows: Sequence[dict], seed: int) -> list[str]:
    return idk_answers(len(rows), seed)


# ----------------------------------------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------------------------------------


def frozen_copy(model: nn.Module) -> nn.Module:
    """The reference model: a copy of ``model`` as it is now, in eval mode, without gradients."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def npo_loss(nll: Tensor, ref_nll: Tensor, beta: float) -> Tensor:
    """NPO: (2/beta) mean(-log sigmoid(-beta * log(pi/pi_ref))), with log(pi/pi_ref) = ref_nll - nll.

    Minimizing it pushes pi(y_f|x_f) below the reference; the gradient is GA's, weighted by
    2 * sigmoid(beta * log-ratio), which vanishes as the answer becomes unlikely (bounded, unlike GA).
    """
    log_ratio = ref_nll - nll
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


def simnpo_loss(nll: Tensor, lengths: Tensor, beta: float, delta: float) -> Tensor:
    """SimNPO: (2/beta) mean(-log sigmoid(beta * (nll/|y| - delta))), reference-free and length-normalized."""
    return -(2.0 / beta) * F.logsigmoid(beta * (nll / lengths - delta)).mean()


def dpo_loss(win_nll: Tensor, win_ref_nll: Tensor, lose_nll: Tensor, lose_ref_nll: Tensor, beta: float) -> Tensor:
    """DPO as OpenUnlearning's compute_dpo_loss: -(2/beta) mean log sigmoid(beta * (r_win - r_lose)),
    r = log(pi/pi_ref) = ref_nll - nll."""
    margin = (win_ref_nll - win_nll) - (lose_ref_nll - lose_nll)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def _f(t: Tensor) -> float:
    return float(t.detach())


def _task(ctx: Context) -> LanguageModelTask:
    if not isinstance(ctx.task, LanguageModelTask):
        raise TypeError(f"this method needs a LanguageModelTask (token-level losses); got {type(ctx.task).__name__}")
    return ctx.task


class _Weighted(LossMethod):
    """gamma * forget term + alpha * retain NLL (OpenUnlearning's GradDiff weights)."""

    needs_reference = False

    def validate(self) -> None:
        super().validate()
        for key in ("gamma", "alpha"):
            if self.hparams[key] < 0:
                raise ValueError(f"method {self.name!r}: {key} must be >= 0, got {self.hparams[key]}")
        if "beta" in self.hparams and not self.hparams["beta"] > 0:
            raise ValueError(f"method {self.name!r}: beta must be > 0, got {self.hparams['beta']}")

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        if self.needs_reference:
            self.ref = frozen_copy(ctx.model)  # taken before the first update: the model before unlearning

    def forget_term(self, ctx: Context, fb: dict) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def loss(self, ctx, fb, rb):
        h = self.hparams
        l_fterm, diag = self.forget_term(ctx, fb)
        l_r = ctx.loss(rb)
        return h["gamma"] * l_fterm + h["alpha"] * l_r, {**diag, "forget_term": _f(l_fterm), "L_r": _f(l_r)}


@register_method("NPO")
class NPO(_Weighted):
    keys = SGD_KEYS + ("beta", "gamma", "alpha")
    needs_reference = True

    def forget_term(self, ctx, fb):
        task = _task(ctx)
        nll = task.sequence_nll(ctx.model, fb)
        with torch.no_grad():
            ref_nll = task.sequence_nll(self.ref, fb)
        return npo_loss(nll, ref_nll, self.hparams["beta"]), {"log_ratio": _f((ref_nll - nll).mean())}


@register_method("SimNPO")
class SimNPO(_Weighted):
    keys = SGD_KEYS + ("beta", "gamma", "delta", "alpha")
    def forget_term(self, ctx, fb):
        task = _task(ctx)
        nll = task.sequence_nll(ctx.model, fb)
        lengths = task.answer_lengths(fb)
        h = self.hparams
        return simnpo_loss(nll, lengths, h["beta"], h["delta"]), {"L_f": _f((nll / lengths).mean())}


@register_method("IdkDPO")
class IdkDPO(_Weighted):
    keys = SGD_KEYS + ("beta", "gamma", "alpha")
    needs_reference = True

    def forget_term(self, ctx, fb):
        if "alternate" not in fb:
            raise ValueError("IdkDPO needs forget batches with 'alternate' answers; build the forget loader "
                             "with alternate_answers=idk_alternates(rows, seed) (ofmu.llm.api does)")
        task = _task(ctx)
        win, lose = fb["alternate"], fb
        win_nll, lose_nll = task.sequence_nll(ctx.model, win), task.sequence_nll(ctx.model, lose)
        with torch.no_grad():
            win_ref, lose_ref = task.sequence_nll(self.ref, win), task.sequence_nll(self.ref, lose)
        loss = dpo_loss(win_nll, win_ref, lose_nll, lose_ref, self.hparams["beta"])
        return loss, {"win_nll": _f(win_nll.mean()), "lose_nll": _f(lose_nll.mean())}


def activation_mse(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """OpenUnlearning's RMU activation loss: per token mean over features of (a-b)^2, averaged over the
    masked tokens of each example, then over examples."""
    sq = ((a - b) ** 2).mean(dim=-1) * mask
    return (sq.sum(dim=1) / mask.sum(dim=1).clamp_min(1)).mean()


@register_method("RMU")
class RMU(_Weighted):
    keys = SGD_KEYS + ("steering_coeff", "alpha", "gamma", "layer", "trainable", "retain_loss")
    needs_reference = True

    def validate(self) -> None:
        super().validate()
        if self.hparams["retain_loss"] not in ("embed_diff", "nll"):
            raise ValueError(f"RMU retain_loss must be 'embed_diff' or 'nll', got {self.hparams['retain_loss']!r}")

    def setup(self, ctx: Context) -> None:
        h = self.hparams
        named = [(n, p) for n, p in ctx.model.named_parameters() if p.requires_grad]
        chosen = [p for n, p in named if re.fullmatch(h["trainable"], n)]
        if not chosen:
            raise ValueError(f"RMU trainable={h['trainable']!r} matches no parameter; names look like "
                             f"{[n for n, _ in named][:6]}")
        resolve_module(ctx.model, h["layer"])  # fail before training if the layer name is wrong
        self.trainable = chosen
        self.ref = frozen_copy(ctx.model)
        # only the chosen weights are updated (OpenUnlearning freezes the rest); gradients of the others are
        # computed by backward but never applied
        self.optimizer = torch.optim.SGD(chosen, lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"])
        # the fixed random direction: uniform [0,1) entries normalized, as the WMDP/OpenUnlearning code,
        # drawn from the loop's seeded generator
        width = ctx.model.get_input_embeddings().weight.shape[1]
        u = torch.rand(width, generator=ctx.generator)
        self.control = (u / u.norm() * h["steering_coeff"]).to(ctx.device)

    def forget_term(self, ctx, fb):
        task = _task(ctx)
        act, mask = task.module_output(ctx.model, fb, self.hparams["layer"])
        target = self.control.to(act.dtype).expand_as(act)
        return activation_mse(act, target, mask), {"act_norm": _f(act.norm(dim=-1).mean())}

    def loss(self, ctx, fb, rb):
        h = self.hparams
        l_fterm, diag = self.forget_term(ctx, fb)
        if h["retain_loss"] == "nll":
            l_r = ctx.loss(rb)
        else:
            task = _task(ctx)
            act, mask = task.module_output(ctx.model, rb, h["layer"])
            with torch.no_grad():
                ref_act, _ = task.module_output(self.ref, rb, h["layer"])
            l_r = activation_mse(act, ref_act, mask)
        return h["gamma"] * l_fterm + h["alpha"] * l_r, {**diag, "forget_term": _f(l_fterm), "retain_term": _f(l_r)}

    def before_update(self, ctx: Context) -> None:
        # backward also filled the frozen weights' .grad: drop it, so clipping (SGDMethod.apply) sees only the
        # trained weights and no stale gradients pile up
        keep = {id(p) for p in self.trainable}
        for p in ctx.params():
            if id(p) not in keep:
                p.grad = None
