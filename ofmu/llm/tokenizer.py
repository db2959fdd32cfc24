"""A byte-level BPE tokenizer trained on the corpus, wrapped as a transformers fast tokenizer.

Why trained here: no pretrained tokenizer is reachable offline, and a small vocabulary (~1k) keeps the
~1M-parameter model's embedding small. It is trained on EVERY answer variant (paraphrased and perturbed
too): perturbed answers must be tokenized like true ones, or truth ratios measure tokenization
(shared/llm-protocol-notes.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"  # also the BOS token, as in GPT-2


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts``; deterministic for the same texts in the same order."""
    texts = list(texts)
    if not texts:
        raise ValueError("train_tokenizer got no texts; pass the corpus strings (ofmu.llm.corpus.corpus_texts)")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + 2:
        raise ValueError(f"vocab_size={vocab_size} is below the byte alphabet plus special tokens "
                         f"({len(alphabet) + 2}); use at least 512")
    tok = Tokenizer(models.BPE())
    # no prefix space: the collator decides where spaces go ("Answer:" + " " + answer)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD_TOKEN, EOS_TOKEN],
        initial_alphabet=alphabet, show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD_TOKEN, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN,
        padding_side="right", model_max_length=1024,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    tokenizer.save_pretrained(str(path))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by ``save_tokenizer`` or ``ofmu.llm.pretrained.save_chat_tokenizer`` (whose prompts go
    through its chat template), or any local/hub tokenizer via AutoTokenizer."""
    from transformers import AutoTokenizer

    from ofmu.llm.pretrained import read_chat_format

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        # Llama tokenizers ship without a pad token; padded positions are masked out (labels -100)
        tok.pad_token = tok.eos_token
    chat = read_chat_format(path)
    if chat is not None:
        tok.ofmu_chat = chat
    return tok
