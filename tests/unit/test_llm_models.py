"""Small causal LMs: exact third derivatives with the primitive LayerNorm, training, save/load round trips."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # a hub lookup by mistake must fail at once, not after a timeout

import pytest
import torch
from torch import nn

from ofmu.core.fdcheck import directional_fd_error
from ofmu.core.ofmu import gradient_cosine, penalty_grad
from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
from ofmu.llm.data import IGNORE_INDEX
from ofmu.llm.models import (
    GPT2Spec, PrimitiveLayerNorm, TrainConfig, answer_nll, build_gpt2, count_parameters, load_causal_lm,
    save_model, train_causal_lm, train_reference_model,
)
from ofmu.llm.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tiny_corpus():
    return generate_corpus(CorpusConfig.smoke())


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_corpus):
    return train_tokenizer(corpus_texts(tiny_corpus), vocab_size=400)


@pytest.fixture(scope="module")
def tiny_rows(tiny_corpus):
    return tiny_corpus["full"][:40]


def _tiny_batches(seed: int, vocab: int = 20, seq: int = 6):
    g = torch.Generator().manual_seed(seed)

    def batch(n):
        ids = torch.randint(2, vocab, (n, seq), generator=g)
        labels = ids.clone()
        labels[:, :2] = IGNORE_INDEX  # a 2-token "prompt" carries no loss, as in QA collation
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    return batch(3), batch(4)


def _tiny_model(primitive: bool):
    model = build_gpt2(20, GPT2Spec(n_layer=2, n_embd=8, n_head=2, n_positions=6), seed=3,
                       primitive_layernorm=primitive, dtype=torch.float64)
    # random LayerNorm affine parameters: at their init (1, 0) some derivative terms vanish
    with torch.no_grad():
        g = torch.Generator().manual_seed(4)
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, PrimitiveLayerNorm)):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return model.eval()


def _grad_F_error(primitive: bool, beta=0.7, rho=2.0, n_dirs=6, h=1e-6) -> float:
    """Relative error of <grad F, v> against central differences of F along random unit directions v.

    Directional derivatives instead of all ~2,000 coordinates keep the test at seconds; a wrong grad F
    shows up in every random direction. Measured: primitive LayerNorm 5e-11, fused 0.52.
    """
    model = _tiny_model(primitive)
    params = list(model.parameters())
    forget, retain = _tiny_batches(0)
    lf = lambda p: answer_nll(model, forget).mean()
    lr = lambda p: answer_nll(model, retain).mean()
    grad_f, _ = penalty_grad(params, lf, lr, beta, rho, variant="exact")

    def F() -> float:
        g_f = torch.autograd.grad(lf(params), params, create_graph=True)
        g_r = torch.autograd.grad(lr(params), params, create_graph=True)
        phi = lf(params) - beta * gradient_cosine(g_f, g_r, 1e-12)
        g_phi = torch.autograd.grad(phi, params)
        return float(lr(params).detach()) + rho * float(sum((g ** 2).sum() for g in g_phi))

    return directional_fd_error(F, params, grad_f, n_dirs=n_dirs, h=h, seed=1)


def test_exact_grad_F_of_gpt2_with_primitive_layernorm_matches_finite_differences():
    assert _grad_F_error(primitive=True) <= 1e-6


def test_fused_layernorm_gives_wrong_third_derivatives():
    # Why PrimitiveLayerNorm exists: torch's fused LayerNorm has wrong third derivatives (a triple
    # backward), so the exact OFMU grad F of a stock GPT-2 is far from finite differences.
    assert _grad_F_error(primitive=False) > 1e-2


def test_primitive_layernorm_matches_torch_forward_and_gradient():
    torch.manual_seed(0)
    ref = nn.LayerNorm(5, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    ours = PrimitiveLayerNorm(5, eps=1e-5).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(ours(x), ref(x), atol=1e-12)
    g1 = torch.autograd.grad(ours(x).pow(3).sum(), x)[0]
    g2 = torch.autograd.grad(ref(x).pow(3).sum(), x)[0]
    assert torch.allclose(g1, g2, atol=1e-10)


def test_build_gpt2_is_seeded_eager_and_primitive(tiny_tokenizer):
    a, b = build_gpt2(tiny_tokenizer, GPT2Spec(n_layer=1, n_embd=16, n_head=2), seed=5), \
        build_gpt2(tiny_tokenizer, GPT2Spec(n_layer=1, n_embd=16, n_head=2), seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.config._attn_implementation == "eager"
    assert not any(isinstance(m, nn.LayerNorm) for m in a.modules())
    assert count_parameters(a) < sum(p.numel() for p in a.state_dict().values())  # tied embeddings once


def test_default_model_size_is_about_one_million(tiny_tokenizer):
    model = build_gpt2(1024, GPT2Spec())
    assert 0.8e6 < count_parameters(model) < 1.1e6


def test_answer_nll_mean_and_sum_match_a_hand_computation():
    model = _tiny_model(True)
    batch, _ = _tiny_batches(2)
    logp = torch.log_softmax(model(input_ids=batch["input_ids"]).logits, -1)
    ids = batch["input_ids"]
    # answer tokens are positions 2..5; each is predicted from the previous position
    hand = torch.stack([-sum(logp[b, t - 1, ids[b, t]] for t in range(2, 6)) for b in range(3)])
    assert torch.allclose(answer_nll(model, batch, "sum"), hand, atol=1e-10)
    assert torch.allclose(answer_nll(model, batch), hand / 4, atol=1e-10)
    with pytest.raises(ValueError, match="reduction"):
        answer_nll(model, batch, "median")


def test_training_lowers_loss_is_seeded_and_round_trips(tiny_tokenizer, tiny_rows, tmp_path):
    spec = GPT2Spec(n_layer=1, n_embd=32, n_head=2, n_positions=64)
    cfg = TrainConfig(epochs=3, lr=1e-2, batch_size=8, max_length=64, seed=1)
    runs = []
    for _ in range(2):
        model = build_gpt2(tiny_tokenizer, spec, seed=0)
        runs.append((model, train_causal_lm(model, tiny_tokenizer, tiny_rows, cfg)))
    (model, hist), (_, hist2) = runs
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist2]  # same seed, same numbers
    save_model(model, tmp_path / "m", tiny_tokenizer)
    assert (tmp_path / "m" / "model.safetensors").is_file()
    loaded = load_causal_lm(tmp_path / "m")
    assert any(isinstance(m, PrimitiveLayerNorm) for m in loaded.modules())
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)


def test_train_reference_model_uses_the_retain_split(tmp_path, tiny_tokenizer):
    from ofmu.llm.corpus import write_corpus

    write_corpus(tmp_path, CorpusConfig.smoke())
    cfg = TrainConfig(epochs=1, batch_size=64, max_length=64, seed=2)
    model, hist = train_reference_model(tmp_path, tiny_tokenizer, "forget10", cfg,
                                        GPT2Spec(n_layer=1, n_embd=16, n_head=2, n_positions=64))
    assert len(hist) == 1 and not model.training


def test_train_config_errors_name_the_key():
    with pytest.raises(ValueError, match="'lr'"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="unknown train config key"):
        TrainConfig.from_dict({"epoch": 3})


def test_llama_path_loads_a_tiny_local_llama(tmp_path):
    # the paper tier loads Llama through the same from_pretrained path; here a tiny config, saved locally
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "llama")
    model = load_causal_lm(tmp_path / "llama")
    assert model.config._attn_implementation == "eager"
    batch, _ = _tiny_batches(0, vocab=32)
    assert answer_nll(model, batch).shape == (3,)


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        load_causal_lm("some-org/not-a-model-xyz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="save_model"):
        load_causal_lm(tmp_path / "empty")


def test_a_missing_model_folder_fails_at_once_and_a_truncated_one_is_named(tmp_path, tiny_tokenizer):
    import time

    start = time.perf_counter()
    with pytest.raises(OSError, match="no such directory"):
        load_causal_lm("results/llm/models/full_s9")  # a path: no hub lookup (offline or not)
    assert time.perf_counter() - start < 5
    save_model(build_gpt2(20, GPT2Spec(n_layer=1, n_embd=8, n_head=2, n_positions=6), seed=0), tmp_path / "m",
               tiny_tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match=r"delete the directory and rerun") as err:
        load_causal_lm(tmp_path / "m")
    assert str(tmp_path / "m") in str(err.value)
