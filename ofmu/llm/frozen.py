"""A per-sequence cache of the frozen bottom of a pretrained model (``llm.model.frozen_cache``; issue 20, item 5).

With ``trainable_blocks = k`` the embeddings and the bottom n - k decoder blocks never change, so the hidden state
entering block n - k is a function of the token ids alone: it is computed once per distinct sequence and reused by
every later forward pass of the process -- every training step, every unlearning method's copy of the model and
every evaluation of the split (a sweep job evaluates the same sequences 24 times). A cached forward then runs only
the k top blocks, the final norm and the output layer, and the output layer only from the batch's first answer
position on.

Exact up to float round-off: batches are right-padded and attention is causal, so a real token's hidden state does
not depend on the padding after it nor on the other rows; what differs from the plain forward is only the order
of float operations (a bottom computed in another batch shape), ~1e-6 relative (tests/unit/test_llm_frozen.py).
Needs a model whose positions enter inside the blocks (rotary: Llama, Qwen, Mistral, SmolLM2): GPT-2 adds its
position embeddings to ``inputs_embeds``, which the cached hidden state already went past.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

FROZEN_ATTR = "ofmu_frozen_bottom"  # the cache, an attribute of the model it serves (copies share it)


class FrozenBottom:
    """The cache of one frozen bottom: ``n_frozen`` blocks below the first trainable one."""

    def __init__(self, n_frozen: int, max_mib: float = 4096.0):
        self.n_frozen = n_frozen
        self.max_bytes = max_mib * 2**20   # past it, misses are computed and not stored (a bound on memory)
        self.store: dict[tuple[int, ...], torch.Tensor] = {}
        self.bytes = 0
        self.hits = self.misses = 0

    def __deepcopy__(self, memo):
        # copy.deepcopy(model) (each method's working copy, NPO's reference) shares the cache: the copies have the
        # same frozen bottom; check_frozen refuses a model whose bottom became trainable
        return self

    def check_frozen(self, model: nn.Module) -> None:
        base, name, blocks = _stack(model)
        bottom = [base.get_input_embeddings(), *blocks[:self.n_frozen]]
        if any(p.requires_grad for m in bottom for p in m.parameters()):
            raise RuntimeError(f"llm.model.frozen_cache: a parameter of the bottom {self.n_frozen} blocks or of the "
                               f"embeddings is trainable, so the cached hidden states would go stale; freeze them "
                               f"(llm.model.trainable_blocks) or set frozen_cache: false")

    def hidden(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The hidden state entering the first trainable block, [B, T, d] (zeros at padded positions)."""
        lengths = attention_mask.sum(1).tolist()
        if not torch.equal(attention_mask, _right_padded_mask(lengths, attention_mask)):
            raise ValueError("llm.model.frozen_cache needs right-padded batches (ofmu.llm.data.pad_batch)")
        keys = [tuple(row[:n].tolist()) for row, n in zip(input_ids, lengths)]
        missing = list(dict.fromkeys(k for k in keys if k not in self.store))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh = dict(zip(missing, self._compute(model, missing, input_ids.device))) if missing else {}
        for key, value in fresh.items():
            size = value.numel() * value.element_size()
            if self.bytes + size <= self.max_bytes:
                self.store[key] = value
                self.bytes += size
        dim = model.get_input_embeddings().embedding_dim
        out = torch.zeros(*input_ids.shape, dim, dtype=model.dtype, device=input_ids.device)
        for b, (key, n) in enumerate(zip(keys, lengths)):
            out[b, :n] = fresh[key] if key in fresh else self.store[key]
        return out

    @torch.no_grad()
    def _compute(self, model, sequences: list[tuple[int, ...]], device) -> list[torch.Tensor]:
        base, name, blocks = _stack(model)
        width = max(map(len, sequences))
        ids = torch.zeros(len(sequences), width, dtype=torch.long, device=device)
        for b, s in enumerate(sequences):
            ids[b, :len(s)] = torch.tensor(s, device=device)
        mask = _right_padded_mask([len(s) for s in sequences], ids)
        with _swapped(base, name, nn.ModuleList(blocks[:self.n_frozen])), _swapped(base, "norm", nn.Identity()):
            h = base(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return [h[b, :len(s)].clone() for b, s in enumerate(sequences)]

    def logits(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               start: int = 0) -> torch.Tensor:
        """The model's logits at positions start..T-1, [B, T - start, V], through the top blocks only."""
        self.check_frozen(model)
        base, name, blocks = _stack(model)
        h = self.hidden(model, input_ids, attention_mask)
        with _swapped(base, name, nn.ModuleList(blocks[self.n_frozen:])):
            out = base(inputs_embeds=h, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return model.get_output_embeddings()(out[:, start:])


def enable_frozen_cache(model: nn.Module, max_mib: float = 4096.0) -> nn.Module:
    """Attach a FrozenBottom cache below the model's lowest trainable block (set_trainable first); in place."""
    base, name, blocks = _stack(model)
    if not hasattr(base, "rotary_emb"):
        raise ValueError(f"llm.model.frozen_cache: {type(model).__name__} adds position embeddings before its "
                         f"blocks (GPT-2 style), which the cached hidden state has already gone past; it needs a "
                         f"rotary-position model (Llama, Qwen, Mistral, SmolLM2) or frozen_cache: false")
    trainable = [i for i, blk in enumerate(blocks) if any(p.requires_grad for p in blk.parameters())]
    if not trainable:
        raise ValueError("llm.model.frozen_cache: no decoder block is trainable (set llm.model.trainable_blocks)")
    cache = FrozenBottom(trainable[0], max_mib)
    cache.check_frozen(model)
    setattr(model, FROZEN_ATTR, cache)
    return model


def frozen_cache(model: nn.Module) -> FrozenBottom | None:
    return getattr(model, FROZEN_ATTR, None)


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The stack of decoder blocks of a transformers causal LM (Llama-style ``model.layers``, GPT-2 ``transformer.h``)."""
    base = model.base_model
    for name in ("layers", "h"):
        blocks = getattr(base, name, None)
        if isinstance(blocks, nn.ModuleList):
            return blocks
    raise ValueError(f"{type(model).__name__}: no decoder block list (model.layers or transformer.h) to freeze below")


def _stack(model: nn.Module):
    base, blocks = model.base_model, decoder_blocks(model)
    name = next(n for n, m in base.named_children() if m is blocks)
    return base, name, blocks


def _right_padded_mask(lengths, like: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(like.shape[1], device=like.device)
    return (positions[None, :] < torch.tensor(lengths, device=like.device)[:, None]).to(like.dtype)


@contextmanager
def _swapped(module: nn.Module, name: str, replacement: nn.Module):
    """``module.<name>`` replaced for the duration (the graph built meanwhile keeps the real parameters)."""
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)
