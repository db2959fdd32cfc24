"""Seconds to evaluate one model, before and after the evaluation speed-up, on the default tier's data and models.

    python benchmarks/eval_speed.py [--repeats 3] [--only vision|llm] [--workdir DIR]
                                    [--vision-model-kwargs '{"width": 16}']

"before" is the evaluation code as it was (the reference implementation kept as the oracle in
tests/unit/test_eval_speed.py; for the LLM on the GPT-2 with transformers' python "gelu_new" activation and the
primitive LayerNorm formula at evaluation too, as main had them), "after" the package's. One thread (the pipeline's ``threads: 1``); each
repetition runs both, alternately, and the minimum is reported (a shared machine only ever adds time).

* vision: one model of a cell = ``ofmu.vision.api.evaluate`` on Fashion-MNIST (D_f = 10% random, RA on
  ``retain_eval_samples`` retain images, the test set, the SVC MIA on ``mia_max_samples`` per class), model
  ``small_cnn`` with the config's ``model_kwargs``, trained for ``--vision-epochs`` (Fashion-MNIST must be on
  disk: ``make data``);
* LLM: one model of a cell = what ``LLMDomain.evaluate`` runs: ``ofmu.llm.api.evaluate`` (forget10, ROUGE on)
  plus ``probe_evaluate`` (ROUGE off), on the config's corpus (40 authors x 8 facts) and GPT-2 size, the model
  trained for ``--llm-epochs`` (the config trains 20; fewer keep this short, the answers still end at eos).

Printed: seconds before / after, the speedup, and the largest difference of any metric value (relative for the
LLM's per-sample values; greedy answers must be identical).
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # forced: no hub on these machines, fail at once

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _reference():
    spec = importlib.util.spec_from_file_location("eval_reference", ROOT / "tests" / "unit" / "test_eval_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _timed(fn, repeats: int):
    """(min seconds, last result) over ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _alternating(before, after, repeats: int):
    t_before, t_after, r_before, r_after = float("inf"), float("inf"), None, None
    for _ in range(repeats):
        t, r_before = _timed(before, 1)
        t_before = min(t_before, t)
        t, r_after = _timed(after, 1)
        t_after = min(t_after, t)
    return t_before, t_after, r_before, r_after


def _max_rel_diff(a, b, path="") -> tuple[float, str]:
    """Largest relative difference over nested dicts of numbers / arrays; string arrays must be equal."""
    if isinstance(a, dict):
        worst = (0.0, "")
        for k in a:
            d = _max_rel_diff(a[k], b[k], f"{path}/{k}")
            worst = max(worst, d, key=lambda t: t[0])
        return worst
    x, y = np.asarray(a), np.asarray(b)
    if x.dtype == object or x.dtype.kind in "US":
        return (0.0, "") if x.tolist() == y.tolist() else (float("inf"), path + " (text differs)")
    x, y = x.astype(float), y.astype(float)
    both_nan = np.isnan(x) & np.isnan(y)
    rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-300)
    rel = np.where(both_nan | (x == y), 0.0, rel)
    return (float(rel.max()) if rel.size else 0.0), path


def bench_vision(cfg: dict, ref, repeats: int, epochs: float, model_kwargs: dict | None = None) -> dict:
    from ofmu.vision import api as V

    vc = cfg["vision"]
    data = V.load_data("fashion_mnist")
    split = V.forget_split(data, "random", seed=0, fraction=vc["forget_fraction"])
    kwargs = (vc.get("model_kwargs") or {}) if model_kwargs is None else model_kwargs
    model = V.train_original(data, vc["model"], seed=0, epochs=epochs, lr=vc["train"]["lr"],
                             batch_size=vc["train"]["batch_size"], model_kwargs=kwargs).model.eval()
    kw = {"seed": 0, "mia_max_samples": vc["mia_max_samples"], "retain_max_samples": vc["retain_eval_samples"]}
    t_before, t_after, before, after = _alternating(lambda: ref.ref_vision_evaluate(model, data, split, **kw),
                                                    lambda: V.evaluate(model, data, split, **kw), repeats)
    diff = max(abs(before[k] - after[k]) for k in before)
    return {"domain": "vision", "setup": f"fashion_mnist, {vc['model']} {kwargs}, {epochs} epoch(s) trained, "
                                         f"|D_f|={len(split.forget)}, RA on {vc['retain_eval_samples']}, "
                                         f"MIA {vc['mia_max_samples']}/class",
            "before_s": t_before, "after_s": t_after, "max_diff": f"{diff:.3g} (absolute, UA/RA/TA/MIA)",
            "values": after}


def _primitive_layer_norm(module, x):
    """PrimitiveLayerNorm's formula with or without autograd (main's evaluation before the speed-up)."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) * torch.rsqrt(var + module.eps) * module.weight + module.bias


def bench_llm(cfg: dict, ref, repeats: int, epochs: int, workdir: Path) -> dict:
    from transformers.activations import ACT2FN

    from ofmu.llm import api as S
    from ofmu.llm.domain import _eval_settings
    from ofmu.llm.models import PrimitiveLayerNorm

    lc = cfg["llm"]
    corpus = workdir / "corpus"
    S.build_corpus(corpus, lc["corpus"], vocab_size=lc["vocab_size"])
    tok = S.load_corpus_tokenizer(corpus)
    model, _ = S.train_model(corpus, tok, None, out_dir=workdir / f"full_e{epochs}",
                             train={**lc["train"], "epochs": epochs}, spec=lc["model"])
    model.eval()
    split = "forget10"
    ev_cfg, probe_cfg = _eval_settings(lc), _eval_settings(lc, rouge=False)
    refs = [{"forget_tr": np.linspace(0.1, 1.2, len(S.split_rows(corpus, split + "_perturbed"))), "mia_auc": 0.45}]

    # main before the speed-up ran GPT-2's GELU as transformers' python "gelu_new" (the same function) and the
    # primitive LayerNorm also without autograd
    main_model = copy.deepcopy(model)
    for block in main_model.transformer.h:
        block.mlp.act = ACT2FN["gelu_new"]
    for module in main_model.modules():
        if isinstance(module, PrimitiveLayerNorm):
            module.forward = functools.partial(_primitive_layer_norm, module)

    def before():
        return {"evaluate": ref.ref_llm_evaluate(main_model, corpus, tok, split, references=refs, eval_cfg=ev_cfg),
                "probes": ref.ref_probe_evaluate(main_model, corpus, tok, split, eval_cfg=probe_cfg)}

    def after():
        return {"evaluate": S.evaluate(model, corpus, tok, split, references=refs, eval_cfg=ev_cfg),
                "probes": S.probe_evaluate(model, corpus, tok, split, eval_cfg=probe_cfg)}

    t_before, t_after, b, a = _alternating(before, after, repeats)
    rel, where = _max_rel_diff(b, a)
    rouge_sets = ("forget", "retain", "real_authors", "world_facts")
    gen = [g for k in rouge_sets for g in a["evaluate"]["per_sample"][k]["generated"]]
    same_text = all(list(b["evaluate"]["per_sample"][k]["generated"])
                    == list(a["evaluate"]["per_sample"][k]["generated"]) for k in rouge_sets)
    return {"domain": "llm", "setup": f"{lc['corpus']['n_authors']} authors x {len(lc['corpus']['facts'])} facts, "
                                      f"GPT-2 {lc['model']}, {epochs} epochs trained, {split}, eval {lc['eval']}, "
                                      f"{len(gen)} greedy answers",
            "before_s": t_before, "after_s": t_after,
            "max_diff": f"{rel:.3g} (relative, at {where}); greedy answers identical: {same_text}",
            "values": {k: a["evaluate"]["summary"][k]
                       for k in ("forget_quality", "model_utility", "forget_truth_ratio")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["vision", "llm"])
    parser.add_argument("--vision-epochs", type=float, default=0.5)
    parser.add_argument("--vision-model-kwargs", type=json.loads, default=None,
                        help='small_cnn kwargs instead of the config\'s, e.g. \'{"width": 16}\'')
    parser.add_argument("--llm-epochs", type=int, default=10)
    parser.add_argument("--workdir", help="corpus and trained GPT-2 (cached between runs); default: a temp dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = yaml.safe_load(Path(args.config).read_text())
    ref = _reference()
    rows = []
    if args.only in (None, "vision"):
        rows.append(bench_vision(cfg, ref, args.repeats, args.vision_epochs, args.vision_model_kwargs))
    if args.only in (None, "llm"):
        if args.workdir:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
            rows.append(bench_llm(cfg, ref, args.repeats, args.llm_epochs, Path(args.workdir)))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(bench_llm(cfg, ref, args.repeats, args.llm_epochs, Path(tmp)))
    print(f"\nevaluation of one model, 1 thread, min of {args.repeats} alternating runs")
    for r in rows:
        print(f"\n[{r['domain']}] {r['setup']}")
        speedup = r["before_s"] / r["after_s"]
        print(f"  before {r['before_s']:.2f} s   after {r['after_s']:.2f} s   speedup {speedup:.2f}x")
        print(f"  max metric difference: {r['max_diff']}")
        print(f"  metrics: {', '.join(f'{k}={v:.6g}' for k, v in r['values'].items())}")


if __name__ == "__main__":
    main()
