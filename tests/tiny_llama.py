"""A tiny random-weight Llama chat model in a save_pretrained folder: the pretrained path's stand-in in tests
(the real SmolLM2 is loaded by one test only). Its tokenizer is a small BPE trained on the given texts, with ChatML's
special tokens and template (SmolLM2's format)."""

from pathlib import Path

import torch

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tiny_llama(folder: Path, texts: list[str], chat_template: str | None = CHATML, layers: int = 3,
                     hidden: int = 32, seed: int = 0) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from ofmu.llm.tokenizer import train_tokenizer

    tok = train_tokenizer(texts, vocab_size=400)
    tok.add_special_tokens({"eos_token": "<|im_end|>", "bos_token": "<|im_start|>"})
    if chat_template is not None:
        tok.chat_template = chat_template
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder)
