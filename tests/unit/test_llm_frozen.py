"""The frozen-bottom cache (ofmu.llm.frozen): losses, gradients, evaluation scores and a fine-tuning run through it
equal the plain forward's (the independent route: the whole model run on the whole batch), on a tiny random Llama
with 2 frozen blocks under 2 trainable ones; a cache one block off is caught; misuse is one clear error."""

import copy
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from tiny_llama import write_tiny_llama

from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
from ofmu.llm.data import QACollator
from ofmu.llm.frozen import FROZEN_ATTR, FrozenBottom, enable_frozen_cache, frozen_cache
from ofmu.llm.metrics import token_nlls
from ofmu.llm.models import TrainConfig, answer_nll, train_causal_lm
from ofmu.llm.pretrained import PretrainedSpec, load_pretrained, load_pretrained_tokenizer, prepare, set_trainable


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(CorpusConfig.smoke())


@pytest.fixture(scope="module")
def rows(corpus):
    return corpus["full"][:12]


@pytest.fixture(scope="module")
def llama(tmp_path_factory, corpus):
    return write_tiny_llama(tmp_path_factory.mktemp("llama") / "tiny", corpus_texts(corpus), layers=4)


def _models(llama, blocks=2):
    spec = PretrainedSpec(str(llama), trainable_blocks=blocks)
    plain = set_trainable(load_pretrained(spec), blocks)
    return plain, prepare(copy.deepcopy(plain), PretrainedSpec(str(llama), trainable_blocks=blocks, frozen_cache=True))


def _batch(llama, rows):
    tok = load_pretrained_tokenizer(PretrainedSpec(str(llama)))
    batch = QACollator(tok, 200)(rows)
    assert len(set(batch["attention_mask"].sum(1).tolist())) > 1  # padded rows: the case that matters
    return tok, batch


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = answer_nll(model, batch).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_loss_and_top_block_gradients_through_the_cache_equal_the_plain_forward(llama, rows):
    plain, cached = _models(llama)
    _, batch = _batch(llama, rows)
    assert frozen_cache(cached).n_frozen == 2 and frozen_cache(plain) is None
    loss, grads = _loss_and_grads(plain, batch)
    for attempt in ("miss", "hit"):  # the first call computes the bottom, the second reads it back
        c_loss, c_grads = _loss_and_grads(cached, batch)
        torch.testing.assert_close(c_loss, loss, rtol=1e-5, atol=1e-6)
        assert c_grads.keys() == grads.keys() and all(k.startswith(("model.layers.2.", "model.layers.3.",
                                                                    "model.norm.")) for k in grads)
        for name in grads:
            torch.testing.assert_close(c_grads[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)
    cache = frozen_cache(cached)
    assert (cache.misses, cache.hits) == (len(rows), len(rows))
    # the same sequences in another batch (fewer rows, other padding) read the same entries
    _, small = _batch(llama, rows[:3])
    torch.testing.assert_close(answer_nll(cached, small), answer_nll(plain, small), rtol=1e-5, atol=1e-6)
    assert cache.misses == len(rows)


def test_a_cache_one_block_off_is_caught(llama, rows):
    """The injected bug: the cached state taken one block too early while the top still starts at block 2 (block 1
    skipped). Its error must dwarf the correct cache's round-off, which the other tests bound."""
    plain, cached = _models(llama)
    _, batch = _batch(llama, rows)
    with torch.no_grad():
        reference = answer_nll(plain, batch)
        right = (answer_nll(cached, batch) - reference).abs().max()
        early = FrozenBottom(1)
        frozen_cache(cached)._compute = lambda model, seqs, device: early._compute(model, seqs, device)
        frozen_cache(cached).store.clear()
        wrong = (answer_nll(cached, batch) - reference).abs().max()
    assert wrong > 1e-4 and wrong > 100 * right, (float(wrong), float(right))


def test_evaluation_scores_through_the_cache_equal_the_plain_models(llama, rows):
    """token_nlls runs whole sequences with a cache (no prompt sharing) and must give the plain scores."""
    plain, cached = _models(llama)
    tok, _ = _batch(llama, rows)
    questions = [r["question"] for r in rows]
    answers = [r["answer"] for r in rows]
    ref_nll, ref_arg = token_nlls(plain, tok, questions, answers, batch_size=5, max_length=200)
    nll, arg = token_nlls(cached, tok, questions, answers, batch_size=5, max_length=200)
    for a, b, x, y in zip(nll, ref_nll, arg, ref_arg):
        assert a.shape == b.shape
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-6)
        assert (x == y).all()


def test_fine_tuning_through_the_cache_gives_the_plain_runs_weights(llama, rows):
    plain, cached = _models(llama)
    tok, _ = _batch(llama, rows)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=4, max_length=200, seed=0)
    h_plain = train_causal_lm(plain, tok, rows, cfg)
    h_cached = train_causal_lm(cached, tok, rows, cfg)
    assert [round(h["loss"], 4) for h in h_cached] == [round(h["loss"], 4) for h in h_plain]
    trained = dict(plain.named_parameters())
    for name, p in cached.named_parameters():
        torch.testing.assert_close(p, trained[name], rtol=1e-4, atol=1e-6, msg=name)
    # a deep copy (an unlearning method's working model) shares the cache: the bottom is the same
    assert frozen_cache(copy.deepcopy(cached)) is frozen_cache(cached)


def test_misuse_is_one_clear_error(llama, rows):
    with pytest.raises(ValueError, match="frozen_cache.*only with llm.model.trainable_blocks"):
        PretrainedSpec(str(llama), frozen_cache=True)
    plain, cached = _models(llama)
    _, batch = _batch(llama, rows)
    next(cached.model.layers[0].parameters()).requires_grad_(True)  # a bottom block made trainable after the fact
    with pytest.raises(RuntimeError, match="bottom 2 blocks or of the embeddings is trainable"):
        answer_nll(cached, batch)
    with pytest.raises(ValueError, match="no decoder block is trainable"):
        enable_frozen_cache(set_trainable(load_pretrained(PretrainedSpec(str(llama))), 1).requires_grad_(False))
    left = {k: v.flip(1) for k, v in batch.items()}  # left padding
    with pytest.raises(ValueError, match="right-padded"):
        frozen_cache(cached).hidden(cached, left["input_ids"], left["attention_mask"])
    from transformers import GPT2Config, GPT2LMHeadModel
    gpt2 = set_trainable(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50)), 1)
    with pytest.raises(ValueError, match="rotary-position model"):
        enable_frozen_cache(gpt2)
