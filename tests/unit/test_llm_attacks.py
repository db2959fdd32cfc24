"""The robustness attacks (ofmu.llm.attacks): quantization against a hand / numpy computation, per output channel
of each layer type; the relearning attack trains the rows it names and scores the unseen rows apart; FQ on the
unseen rows is scipy's KS test on that subset."""

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from ofmu.llm.attacks import AttackConfig, attack, fake_quantize, forget_scores, quantize_tensor, relearn_rows
from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
from ofmu.llm.models import GPT2Spec, TrainConfig, build_gpt2, train_causal_lm
from ofmu.llm.tokenizer import train_tokenizer


def test_quantize_tensor_against_a_hand_computation():
    # 4 bits: qmax 7; row max 0.7 -> scale 0.1: -0.37 -> -3.7 -> -4 levels; row max 2 -> scale 2/7: -0.9 -> -3.15
    # -> -3, 0.26 -> 0.91 -> 1; an all-zero row stays zero
    w = torch.tensor([[0.1, -0.37, 0.7], [0.0, 0.0, 0.0], [2.0, -0.9, 0.26]])
    q = quantize_tensor(w, 4)
    expected = torch.tensor([[0.1, -0.4, 0.7], [0.0, 0.0, 0.0], [2.0, -6 / 7, 2 / 7]])
    assert torch.allclose(q, expected, atol=1e-7)
    # per column (channel_dim 1) is the per-row result of the transpose
    assert torch.equal(quantize_tensor(w.T.contiguous(), 4, channel_dim=1), q.T)


def test_8_and_4_bit_quantization_error_and_levels_match_numpy():
    w = torch.randn(16, 40, generator=torch.Generator().manual_seed(0))
    for bits in (8, 4):
        qmax = 2 ** (bits - 1) - 1
        x = w.numpy().astype(np.float64)
        scale = np.abs(x).max(axis=1, keepdims=True) / qmax
        ref = np.clip(np.round(x / scale), -qmax, qmax) * scale
        q = quantize_tensor(w, bits).numpy()
        assert np.allclose(q, ref, atol=1e-6)
        assert max(len(np.unique(np.round(row / s, 4))) for row, s in zip(q, scale[:, 0])) <= 2 * qmax + 1
        assert np.abs(q - x).max() <= scale.max() / 2 + 1e-6


@pytest.fixture(scope="module")
def tiny():
    corpus = generate_corpus(CorpusConfig.smoke())
    tok = train_tokenizer(corpus_texts(corpus), vocab_size=400)
    model = build_gpt2(tok, GPT2Spec(n_layer=2, n_embd=32, n_head=2), seed=0)
    train_causal_lm(model, tok, corpus["full"], TrainConfig(epochs=8, lr=5e-3, batch_size=16))
    return corpus, tok, model


def test_fake_quantize_rounds_every_weight_matrix_per_output_channel_and_keeps_norms(tiny):
    _, _, model = tiny
    q = fake_quantize(model, 4)
    attn = model.transformer.h[0].attn.c_attn.weight  # Conv1D: [in, out], an output channel is a column
    col = attn.detach()[:, 5].double().numpy()
    scale = np.abs(col).max() / 7
    expected = np.clip(np.round(col / scale), -7, 7) * scale
    assert np.allclose(q.transformer.h[0].attn.c_attn.weight.detach()[:, 5].numpy(), expected, atol=1e-6)
    assert torch.equal(q.transformer.h[0].ln_1.weight, model.transformer.h[0].ln_1.weight)  # norms kept
    assert torch.equal(q.transformer.h[0].attn.c_attn.bias, model.transformer.h[0].attn.c_attn.bias)
    assert q.lm_head.weight.data_ptr() == q.transformer.wte.weight.data_ptr()  # still tied
    assert not torch.equal(q.transformer.wte.weight, model.transformer.wte.weight)
    assert torch.equal(model.transformer.h[0].attn.c_attn.weight, attn)  # the original untouched


def test_relearn_rows_are_a_seeded_fraction_that_leaves_rows_unseen():
    rows = relearn_rows(40, 0.25, seed=0)
    assert len(rows) == 10 and len(set(rows)) == 10 and list(rows) == sorted(rows)
    assert np.array_equal(rows, relearn_rows(40, 0.25, seed=0))
    assert not np.array_equal(rows, relearn_rows(40, 0.25, seed=1))
    assert len(relearn_rows(3, 0.99, 0)) == 2  # never all: some rows must stay unseen
    with pytest.raises(ValueError, match="needs >= 2"):
        relearn_rows(1, 0.5, 0)


def test_the_forget_attack_recovers_the_rows_it_trains_on_first_and_fq_unseen_is_scipys(tiny):
    corpus, tok, model = tiny
    forget = corpus["forget10_perturbed"]
    refs = [{"forget_tr": np.linspace(0.2, 1.0, len(forget))}]
    cfg = AttackConfig(relearn_fraction=0.5, relearn_steps=[5, 20], relearn_lr=1e-2, relearn_batch_size=2,
                       relearn_data=["forget"], quantize_bits=[4])
    records = attack(model, tok, forget, corpus["retain90"], refs, cfg)
    relearned = [r for r in records if r["attack"] == "relearn"]
    assert [r["steps"] for r in relearned] == [0, 5, 20]
    seen = relearn_rows(len(forget), 0.5, 0)
    start = forget_scores(model, tok, forget, refs, seen)
    assert relearned[0]["forget_prob_seen"] == pytest.approx(start["forget_prob_seen"])
    gain_seen = relearned[-1]["forget_prob_seen"] - start["forget_prob_seen"]
    gain_unseen = relearned[-1]["forget_prob_unseen"] - start["forget_prob_unseen"]
    assert gain_seen > 0.05 and gain_seen > gain_unseen
    # FQ on the unseen rows: scipy on the same subset of both truth-ratio arrays
    from ofmu.llm import metrics as M

    tr = M.evaluate_split(model, tok, forget, rouge=False)["tr"]
    unseen = np.setdiff1d(np.arange(len(forget)), seen)
    assert start["forget_quality_unseen"] == pytest.approx(ks_2samp(tr[unseen], refs[0]["forget_tr"][unseen]).pvalue)
    [quant] = [r for r in records if r["attack"] == "quantize"]
    assert quant["bits"] == 4 and 0 <= quant["forget_prob"] <= 1


def test_attack_settings_out_of_range_name_the_key():
    for bad, key in [({"relearn_fraction": 1.0}, "relearn_fraction"), ({"relearn_steps": [4, 2]}, "relearn_steps"),
                     ({"relearn_steps": [0, 2]}, "relearn_steps"), ({"quantize_bits": [1]}, "quantize_bits"),
                     ({"relearn_data": ["test"]}, "relearn_data"), ({"relearn_lr": 0}, "relearn_lr")]:
        with pytest.raises(ValueError, match=f"llm.attacks.{key}"):
            AttackConfig.from_dict(bad)
