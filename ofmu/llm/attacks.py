"""Robustness of forgetting: does an unlearned model still hold D_f where an attacker can reach it?

* Relearning (Hu et al., 2024; Lynch et al., 2024): k fine-tuning steps on a small seeded part of the forget split
  (``data="forget"``), or separately on retain rows only (``data="retain"``: benign fine-tuning), then the forget
  split is scored after each step count. The rows the attack trained on ("seen") and the others ("unseen") are
  reported apart: recovering the UNSEEN forget answers is what shows knowledge that unlearning hid rather than
  removed. The baseline is the retain-only model attacked the same way, a model that never saw D_f: what k steps
  teach from scratch.
* Quantization (Zhang et al., 2025, "Catastrophic failure of LLM unlearning via quantization"): every weight
  matrix rounded to ``bits`` bits (symmetric, round to nearest, one scale per output channel; norms and biases kept
  in float, as weight-only quantizers do), then re-evaluated. Small unlearning updates can round away.

Both return plain records (one per attack point) that the pipeline writes as rows next to the run's rows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ofmu.configs import dataclass_from_dict
from ofmu.llm import metrics as M
from ofmu.llm.unlearn import LanguageModelTask, QALoader
from ofmu.seeds import derive_seed

ATTACK_DATA = ("forget", "retain")


@dataclass
class AttackConfig:
    """``llm.attacks``: the relearning attack's rows, steps and optimizer, and the quantization widths."""

    relearn_fraction: float = 0.25          # share of the forget split the forget-relearning attack trains on
    relearn_steps: Sequence[int] = (1, 2, 4, 8)  # scored after each of these step counts (0, the start, always)
    relearn_lr: float = 1.0e-3              # AdamW, constant: an attacker's plain fine-tuning
    relearn_batch_size: int = 4
    relearn_data: Sequence[str] = ATTACK_DATA
    quantize_bits: Sequence[int] = (8, 4)
    seed: int = 0                            # which forget rows the attack trains on (the same for every model)
    max_length: int = 128

    def __post_init__(self) -> None:
        steps = list(self.relearn_steps)
        checks = [
            (isinstance(self.relearn_fraction, (int, float)) and 0 < self.relearn_fraction < 1, "relearn_fraction",
             "a number in (0, 1): the share of the forget split the attack trains on (the rest is scored unseen)"),
            (bool(steps) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps)
             and steps == sorted(set(steps)), "relearn_steps", "increasing distinct integers >= 1, e.g. [1, 2, 4, 8]"),
            (isinstance(self.relearn_lr, (int, float)) and self.relearn_lr > 0, "relearn_lr", "a number > 0"),
            (isinstance(self.relearn_batch_size, int) and self.relearn_batch_size >= 1, "relearn_batch_size",
             "an integer >= 1"),
            (bool(self.relearn_data) and set(self.relearn_data) <= set(ATTACK_DATA), "relearn_data",
             f"a non-empty subset of {list(ATTACK_DATA)}"),
            (all(isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 16 for b in self.quantize_bits),
             "quantize_bits", "integers in [2, 16], e.g. [8, 4]"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"llm.attacks.{key} = {getattr(self, key)!r}: expected {expected}")

    @classmethod
    def from_dict(cls, values: dict) -> "AttackConfig":
        return dataclass_from_dict(cls, values, "llm.attacks")


# ----------------------------------------------------------------------------------------------------------
# Quantization
# ----------------------------------------------------------------------------------------------------------


def quantize_tensor(weight: torch.Tensor, bits: int, channel_dim: int = 0) -> torch.Tensor:
    """Symmetric round-to-nearest fake quantization with one scale per slice along ``channel_dim``:
    scale = max|w| / (2^(bits-1) - 1), w -> clamp(round(w / scale)) * scale (an all-zero slice stays zero)."""
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float().movedim(channel_dim, 0)
    scale = w.abs().flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / qmax
    scale = scale.view(-1, *([1] * (w.dim() - 1)))
    q = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    return q.movedim(0, channel_dim).to(weight.dtype)


def _output_dim(module: nn.Module) -> int:
    # transformers' GPT-2 Conv1D stores weights as [in, out]; nn.Linear and nn.Embedding as [out or token, in]
    return 1 if type(module).__name__ == "Conv1D" else 0


def fake_quantize(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` whose weight matrices (Linear, GPT-2 Conv1D, Embedding; a tied output layer once) are
    quantized to ``bits`` bits per output channel; 1-D parameters (norms, biases) unchanged."""
    quantized = copy.deepcopy(model)
    done: set[int] = set()
    for module in quantized.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or weight.dim() < 2 or id(weight) in done:
            continue
        with torch.no_grad():
            weight.copy_(quantize_tensor(weight, bits, _output_dim(module)))
        done.add(id(weight))
    return quantized.eval()


# ----------------------------------------------------------------------------------------------------------
# Relearning
# ----------------------------------------------------------------------------------------------------------


def relearn_rows(n_forget: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the forget rows the forget-relearning attack trains on: a seeded ``fraction`` (>= 1 row,
    < all rows, so some stay unseen), the same for every model attacked with ``seed``."""
    k = min(max(1, int(round(fraction * n_forget))), n_forget - 1)
    if k < 1:
        raise ValueError(f"the forget split has {n_forget} row(s): the relearning attack needs >= 2 (seen and unseen)")
    rng = np.random.default_rng(derive_seed(seed, "forget_loader"))
    return np.sort(rng.choice(n_forget, size=k, replace=False))


def forget_scores(model: nn.Module, tokenizer, forget_rows: Sequence[dict], references: Sequence[dict],
                  seen: np.ndarray, batch_size: int = 64, max_length: int = 128, device="cpu") -> dict[str, float]:
    """The forget split after an attack: answer probability on the seen and unseen rows, forget truth ratio, and
    FQ (median over the retain references of the KS p-value) on all rows and on the unseen rows alone."""
    ev = M.evaluate_split(model, tokenizer, list(forget_rows), rouge=False, batch_size=batch_size,
                          max_length=max_length, device=device)
    unseen = np.setdiff1d(np.arange(len(forget_rows)), seen)
    out = {"forget_prob": float(ev["prob"].mean()), "forget_truth_ratio": M.truth_ratio_forget(ev["tr"]),
           "forget_prob_unseen": float(ev["prob"][unseen].mean()),
           "forget_prob_seen": float(ev["prob"][seen].mean()) if len(seen) else float("nan")}
    if references:
        out["forget_quality"] = float(np.median([M.forget_quality(ev["tr"], r["forget_tr"])["forget_quality"]
                                                 for r in references]))
        out["forget_quality_unseen"] = float(np.median([M.forget_quality(ev["tr"][unseen], np.asarray(
            r["forget_tr"])[unseen])["forget_quality"] for r in references]))
    return out


def relearn(model: nn.Module, tokenizer, rows: Sequence[dict], cfg: AttackConfig,
            score: Callable[[nn.Module], dict], seed: int, device="cpu") -> list[dict]:
    """Fine-tune a copy of ``model`` on ``rows`` (its trainable parameters, AdamW at cfg.relearn_lr, batches in a
    seeded order, cycling), scoring it with ``score`` at step 0 and after each of cfg.relearn_steps."""
    attacked = copy.deepcopy(model).to(device)
    params = [p for p in attacked.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.relearn_lr, weight_decay=0.0)
    loader = QALoader(rows, tokenizer, cfg.relearn_batch_size, derive_seed(seed, "retain_loader"), cfg.max_length)
    task, batches = LanguageModelTask(), iter(())
    records = [{"steps": 0, **score(attacked.eval())}]
    for step in range(1, max(cfg.relearn_steps) + 1):
        batch = next(batches, None)
        if batch is None:  # another pass, reshuffled
            batches = iter(loader)
            batch = next(batches)
        attacked.train()
        loss = task.loss(attacked, task.to_device(batch, device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the relearning attack's loss became {float(loss)} at step {step}; lower "
                                     f"llm.attacks.relearn_lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in cfg.relearn_steps:
            records.append({"steps": step, **score(attacked.eval())})
    return records


def attack(model: nn.Module, tokenizer, forget_rows: Sequence[dict], retain_rows: Sequence[dict],
           references: Sequence[dict], cfg: AttackConfig, seed: int = 0,
           evaluate_full: Callable[[nn.Module], dict] | None = None, device="cpu") -> list[dict]:
    """Every attack of ``cfg`` on ``model``: one record per (attack, data or bits, steps) with the forget scores
    (``forget_scores``); the quantized models also with ``evaluate_full`` (e.g. model utility) when given.
    ``forget_rows`` are the split's evaluation rows (question, answer, paraphrased_answer, perturbed_answer)."""
    seen = relearn_rows(len(forget_rows), cfg.relearn_fraction, cfg.seed)

    def score(m):
        return forget_scores(m, tokenizer, forget_rows, references, seen, max_length=cfg.max_length, device=device)

    records = []
    for data in cfg.relearn_data:
        rows = [forget_rows[i] for i in seen] if data == "forget" else list(retain_rows)
        for rec in relearn(model, tokenizer, rows, cfg, score, seed, device):
            records.append({"attack": "relearn", "data": data, "bits": None, **rec})
    for bits in cfg.quantize_bits:
        quantized = fake_quantize(model, bits)
        extra = evaluate_full(quantized) if evaluate_full is not None else {}
        records.append({"attack": "quantize", "data": None, "bits": bits, "steps": 0, **score(quantized), **extra})
    return records


# ----------------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------------


def attack_summary(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, label, seed) from the attack records: the unseen forget answers' probability and FQ on
    them before and after the longest forget-relearning attack, the forget probability after the longest
    retain-only attack, and per quantization width FQ, forget probability and model utility."""
    key = ["split", "label", "seed"]
    out = records[key].drop_duplicates().set_index(key)
    relearn = records[records["attack"] == "relearn"]
    for data, g in relearn.groupby("data"):
        last = g["steps"].max()
        for steps, tag in [(0, "start"), (last, "after")]:
            at = g[g["steps"] == steps].set_index(key)
            if data == "forget":
                out[f"forget_{tag}_prob_unseen"] = at["forget_prob_unseen"]
                out[f"forget_{tag}_fq_unseen"] = at["forget_quality_unseen"]
            elif tag == "after":
                out["retain_after_prob"] = at["forget_prob"]
    for bits, g in records[records["attack"] == "quantize"].groupby("bits"):
        at = g.set_index(key)
        for metric, short in [("forget_quality", "fq"), ("forget_prob", "prob"), ("model_utility", "mu")]:
            if metric in at:
                out[f"q{int(bits)}_{short}"] = at[metric]
    return out.reset_index().assign(status="ok")


def attack_columns(summary: pd.DataFrame, records: pd.DataFrame):
    """The table's columns (of ``attack_summary``), titled with the attacks' step counts and widths; FQ as the
    median over seeds (a p-value), the rest mean ± std."""
    from ofmu.tables import Column, fmt_mean_std

    relearn = records[records["attack"] == "relearn"]
    k = {data: int(g["steps"].max()) for data, g in relearn.groupby("data")}
    titles = {"forget_start_prob_unseen": "unseen prob",
              "forget_after_prob_unseen": f"unseen prob after {k.get('forget')} steps on D_f",
              "forget_start_fq_unseen": "unseen FQ", "forget_after_fq_unseen": f"unseen FQ after {k.get('forget')} steps on D_f",
              "retain_after_prob": f"forget prob after {k.get('retain')} steps on retain"}
    for bits in sorted({int(b) for b in records["bits"].dropna()}, reverse=True):
        titles.update({f"q{bits}_fq": f"{bits}-bit FQ", f"q{bits}_prob": f"{bits}-bit forget prob",
                       f"q{bits}_mu": f"{bits}-bit MU"})
    fq = lambda values: f"{np.median(values):.2g}" if len(values) else "-"  # noqa: E731  (p-values: the median)
    return [Column(c, t, fq if "_fq" in c else fmt_mean_std(3)) for c, t in titles.items() if c in summary]
