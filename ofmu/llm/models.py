"""Small causal LMs from transformers configs, their answer-only loss, training, saving and loading.

Why the changes to a stock GPT-2 (shared/derivative-notes.md, measured):
* PyTorch's fused LayerNorm returns WRONG third derivatives (the exact OFMU grad F, a triple backward,
  was off by 35-68% against finite differences); ``PrimitiveLayerNorm`` computes the same function from
  mean / var / rsqrt / affine, whose derivatives of every order are exact. tests/unit/test_llm_models.py
  checks both facts on a tiny model.
* SDPA attention has no double backward on CPU, so models use ``attn_implementation="eager"``.
* Dropout is 0: OFMU differentiates the same function several times per step, and memorization of a
  small corpus is the goal of the "full" model anyway.
Llama-class models (paper tier) already use an RMSNorm written from primitive ops.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from ofmu.configs import dataclass_from_dict
from ofmu.io import is_missing_local_path
from ofmu.llm.data import IGNORE_INDEX, QACollator, load_training_rows, pad_batch
from ofmu.llm.frozen import frozen_cache

PRIMITIVE_LN_FLAG = "ofmu_primitive_layernorm"  # recorded in the saved config.json (provenance of the swap)


class PrimitiveLayerNorm(nn.Module):
    """LayerNorm from primitive ops; same parameters (weight, bias) and state-dict keys as nn.LayerNorm."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # no derivatives wanted (evaluation): the fused kernel, ~3x faster
            return nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        dims = tuple(range(-len(self.normalized_shape), 0))
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)  # biased variance, as nn.LayerNorm
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


def use_primitive_layernorm(model: nn.Module) -> nn.Module:
    """Replace every nn.LayerNorm in ``model`` (in place) by PrimitiveLayerNorm sharing its parameters."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LayerNorm):
                if not child.elementwise_affine or child.bias is None:
                    raise ValueError(f"LayerNorm {name!r} without affine weight and bias is not supported")
                new = PrimitiveLayerNorm(child.normalized_shape, child.eps)
                # the same Parameter objects: an optimizer or parameter list built earlier stays valid
                new.weight, new.bias = child.weight, child.bias
                setattr(parent, name, new)
    if getattr(model, "config", None) is not None:
        setattr(model.config, PRIMITIVE_LN_FLAG, True)
    return model


@dataclass
class GPT2Spec:
    """Architecture of the default-tier model (~0.93M parameters with vocab 1024)."""

    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 128
    # GPT-2's tanh-approximated GELU as PyTorch's fused kernel: the same function as transformers' "gelu_new"
    # (equal to 1e-16 in float64), with exact higher derivatives, but ~1.2x faster evaluation on CPU
    activation_function: str = "gelu_pytorch_tanh"

    @classmethod
    def from_dict(cls, values: dict) -> "GPT2Spec":
        return dataclass_from_dict(cls, values, "model config")


def build_gpt2(tokenizer_or_vocab, spec: GPT2Spec | None = None, seed: int = 0, primitive_layernorm: bool = True,
               dtype: torch.dtype = torch.float32):
    """A freshly initialized GPT-2 (eager attention, no dropout), seeded."""
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = spec or GPT2Spec()
    if spec.n_embd % spec.n_head:
        raise ValueError(f"n_embd={spec.n_embd} must be divisible by n_head={spec.n_head}")
    if isinstance(tokenizer_or_vocab, int):
        vocab, pad, eos = tokenizer_or_vocab, None, None
    else:
        tok = tokenizer_or_vocab
        vocab, pad, eos = len(tok), tok.pad_token_id, tok.eos_token_id
    config = GPT2Config(
        vocab_size=vocab, n_positions=spec.n_positions, n_embd=spec.n_embd, n_layer=spec.n_layer,
        n_head=spec.n_head, activation_function=spec.activation_function, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=pad, attn_implementation="eager",
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's global RNG
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model = model.to(dtype)
    if primitive_layernorm:
        use_primitive_layernorm(model)
    return model


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ----------------------------------------------------------------------------------------------
class TokenNLL(NamedTuple):
    nll: torch.Tensor  # [B, W] NLL of each next token, 0 outside the answer
    mask: torch.Tensor  # [B, W] True on answer tokens
    logits: torch.Tensor  # [B, W, V] the predictions the NLL came from
    # W = T - 1 (every next-token prediction); with a frozen-bottom cache (ofmu.llm.frozen) only those from the
    # batch's first answer token on, where the output layer runs


def answer_token_nll(model: nn.Module, batch: dict[str, torch.Tensor]) -> TokenNLL:
    """Per-token NLL of the next-token predictions on answer tokens (labels != IGNORE_INDEX)."""
    labels = batch["labels"][:, 1:]
    cache = frozen_cache(model)
    if cache is not None:
        # position p predicts token p + 1: from the one before the batch's first answer token on
        answer_positions = (labels != IGNORE_INDEX).any(0).nonzero()
        start = int(answer_positions[0]) if len(answer_positions) else 0
        logits = cache.logits(model, batch["input_ids"], batch["attention_mask"], start)[:, :-1]
        labels = labels[:, start:]
    else:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    if logits.dtype in (torch.float16, torch.bfloat16):  # half-precision log-softmax loses the small NLLs
        logits = logits.float()
    mask = labels != IGNORE_INDEX
    nll = nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
    return TokenNLL(nll * mask, mask, logits)


def answer_nll(model: nn.Module, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Per-example NLL of the answer tokens, Tensor[B]: their mean (``"mean"``) or sum (``"sum"``).

    The plug-in loss for unlearning methods: ``answer_nll(model, batch).mean()`` is the usual TOFU loss;
    methods that need sequence log-likelihoods (NPO, DPO) use ``reduction="sum"``.
    """
    nll, mask, _ = answer_token_nll(model, batch)
    total = nll.sum(dim=1)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / mask.sum(dim=1).clamp_min(1)
    raise ValueError(f"unknown reduction {reduction!r}; valid: mean, sum")


# ----------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Fine-tuning of the "full" and "retain" models (defaults measured in llm-protocol-notes.md)."""

    epochs: int = 25
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_frac: float = 0.1  # share of steps with rising learning rate
    grad_clip: float = 1.0
    max_length: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs", "an integer >= 1"), (self.lr > 0, "lr", "a number > 0"),
            (self.batch_size >= 1, "batch_size", "an integer >= 1"),
            (0 < self.warmup_frac < 1, "warmup_frac", "a number in (0, 1)"),
            (self.grad_clip > 0, "grad_clip", "a number > 0"), (self.max_length >= 8, "max_length", ">= 8"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"train config key {key!r} = {getattr(self, key)!r}: expected {expected}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, values, "train config")

    def to_dict(self) -> dict:
        return asdict(self)


def train_causal_lm(
    model: nn.Module, tokenizer, rows: Sequence[dict], cfg: TrainConfig | None = None,
    device: str | torch.device = "cpu", log: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Fine-tune ``model`` on QA ``rows`` (answer-token loss), AdamW + one-cycle schedule, seeded.

    Returns one record per epoch (mean loss, learning rate at the end, wall seconds).
    """
    cfg = cfg or TrainConfig()
    if len(rows) == 0:
        raise ValueError("no training rows; check the split names (data.training_split_names)")
    collator = QACollator(tokenizer, cfg.max_length)
    encoded = collator.encode([r["question"] for r in rows], [r["answer"] for r in rows])
    n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    longest = max(len(e["input_ids"]) for e in encoded)
    if n_pos is not None and longest > n_pos:
        raise ValueError(f"an example has {longest} tokens but the model has {n_pos} positions; "
                         f"raise n_positions or lower max_length")
    model.to(device).train()
    gen = torch.Generator().manual_seed(cfg.seed)  # the data order depends on the seed only
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * steps_per_epoch
    if total_steps >= 4:
        # OneCycleLR divides by the length of each phase: the warm-up needs at least two steps
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=max(cfg.warmup_frac, 2 / total_steps),
        )
    else:  # too few steps for a schedule (tiny smoke runs): constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    history = []
    for epoch in range(cfg.epochs):
        t0, total, count = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(encoded), generator=gen).split(cfg.batch_size):
            batch = pad_batch([encoded[i] for i in idx.tolist()], tokenizer.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = answer_nll(model, batch).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at epoch {epoch}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        rec = {"epoch": epoch + 1, "loss": total / count, "lr": sched.get_last_lr()[0],
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if log is not None:
            log(rec)
    model.eval()
    return history


def train_reference_model(
    source: str | os.PathLike, tokenizer, forget_split: str | None = None, cfg: TrainConfig | None = None,
    spec: GPT2Spec | None = None, model: nn.Module | None = None, device: str | torch.device = "cpu",
    log: Callable[[dict], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """The "full" model (``forget_split=None``) or the "retain" model of ``forget_split`` (e.g. forget10).

    Default tier: a fresh GPT-2 (seeded by ``cfg.seed``) trained on the split's rows; paper tier: pass a
    pretrained ``model`` (load_causal_lm) to fine-tune it instead.
    """
    cfg = cfg or TrainConfig()
    rows = load_training_rows(source, forget_split)
    if model is None:
        model = build_gpt2(tokenizer, spec, seed=cfg.seed)
    return model, train_causal_lm(model, tokenizer, rows, cfg, device=device, log=log)


# ----------------------------------------------------------------------------------------------
def save_model(model: nn.Module, path: str | os.PathLike, tokenizer=None) -> None:
    """save_pretrained (safetensors) of the model, and of the tokenizer when given."""
    model.save_pretrained(str(path), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(path))


def load_causal_lm(name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
                   dtype: torch.dtype | None = None, gguf_file: str | None = None, attn_implementation: str = "eager"):
    """A causal LM from a local directory or a hub id, eager attention (exact higher derivatives) unless
    ``attn_implementation`` says otherwise, in eval mode.

    The fused-LayerNorm swap is re-applied for models saved from ``build_gpt2`` (and for any model with
    nn.LayerNorm, since the OFMU grad F needs exact third derivatives). Paper tier: pass a Llama id such
    as ``meta-llama/Llama-3.2-1B-Instruct``.
    """
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": attn_implementation}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    from safetensors import SafetensorError

    local = Path(name_or_path).is_dir()
    name = str(name_or_path)
    if is_missing_local_path(name):  # fails now, not after the hub's retries
        raise OSError(f"cannot load causal LM {name!r}: no such directory. Fix: check the path (the pipeline "
                      f"writes its models under results/llm/s<seed>/models/), or pass a hub id of the form org/name")
    try:
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:  # missing files: OSError; no model_type: ValueError;
        # a truncated or empty model.safetensors: SafetensorError
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        hint = ("the directory has no loadable model (expected config.json + model.safetensors from "
                "save_model; a truncated file is never used: delete the directory and rerun, the pipeline "
                "rebuilds it)" if local else
                "HF_HUB_OFFLINE=1 is set and the model is not in the local cache: run once with network "
                "access, or download it (`huggingface-cli download NAME --local-dir DIR`) and pass DIR"
                if offline else "check the model id, network access and, for gated models, `huggingface-cli login`")
        raise OSError(f"cannot load causal LM {str(name_or_path)!r}: {exc}. Fix: {hint}") from exc
    use_primitive_layernorm(model)
    return model.to(device).eval()
