"""High-level API of the LLM (TOFU-protocol) stage, called by the workflow scripts.

    meta   = build_corpus("results/llm/s0/corpus", {"n_authors": 100, "seed": 0})   # corpus + tokenizer/ (cached)
    tok    = load_corpus_tokenizer("results/llm/s0/corpus")
    full, _   = train_model(corpus, tok, None, out_dir="results/llm/s0/models/full_r0")      # cached
    keep, _   = train_model(corpus, tok, "forget10", seed=1, out_dir=".../retain_forget10_r1")
    refs   = [reference_stats(evaluate(keep, corpus, tok, "forget10"))]   # one per retain seed
    model  = copy_model(full)
    res    = unlearn(model, corpus, tok, "OFMU", "forget10", epochs=5, seed=0)    # UnlearnResult
    ev     = evaluate(res.model, corpus, tok, "forget10", references=refs)       # summary + per_sample
    probes = probe_evaluate(res.model, corpus, tok, "forget10")
    costs  = sample_costs(full, corpus, tok, "GradDiff", "forget10", seed=0)      # Figure 1 analog

Seeds: one run seed drives batch order, the method's generator and the IDK draws through distinct derived
streams (``ofmu.seeds.derive_seed``, shared with the vision stage), so changing one does not shift the others.
Every function takes ``device``; nothing here sets torch's thread count (the caller decides; measured on
2 shared cores: 1 thread per job, 2 jobs in parallel).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ofmu.configs import dataclass_from_dict
from ofmu.core.ofmu import NonFiniteError
from ofmu.io import write_json_atomic
from ofmu.llm import metrics as M
from ofmu.llm.corpus import (CORPUS_FORMAT_VERSION, META_FILE, PROBES, CorpusConfig, corpus_texts, generate_corpus,
                             write_corpus)
from ofmu.llm.data import export_tofu, load_tofu_split
from ofmu.llm.idk import IDK_ANSWERS
from ofmu.llm.models import (
    GPT2Spec, TrainConfig, build_gpt2, load_causal_lm, save_model, train_causal_lm,
)
from ofmu.llm.data import load_training_rows
from ofmu.llm.pretrained import (PretrainedSpec, is_pretrained, load_pretrained, load_pretrained_tokenizer,
                                 prepare, save_chat_tokenizer)
from ofmu.llm.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from ofmu.llm.unlearn import LanguageModelTask, QALoader, idk_alternates
from ofmu.unlearning.loop import UnlearnResult, run_unlearning
from ofmu.seeds import derive_seed
from ofmu.unlearning.methods import make_method

TOKENIZER_DIR = "tokenizer"
MODEL_INFO = "ofmu_train.json"  # next to config.json / model.safetensors: what the cached model was trained with


# ----------------------------------------------------------------------------------------------------------
# Corpus, tokenizer, reference models
# ----------------------------------------------------------------------------------------------------------


def _corpus_cfg(corpus: CorpusConfig | dict | None) -> CorpusConfig:
    if isinstance(corpus, CorpusConfig):
        return corpus
    return CorpusConfig.from_dict(corpus or {})


def build_corpus(out_dir: str | Path, corpus: CorpusConfig | dict | None = None, vocab_size: int = 1024,
                 model: GPT2Spec | PretrainedSpec | dict | None = None, dataset: str | None = None,
                 splits: Sequence[str] = ()) -> dict:
    """Write the corpus (``<split>.jsonl`` + corpus.json) and its tokenizer (``tokenizer/``) into ``out_dir``.

    The corpus is generated from ``corpus``, or with ``dataset`` (``locuslab/TOFU`` or a local folder in its layout)
    the forget ``splits`` and the sets they are evaluated on are copied from it (``ofmu.llm.data.export_tofu``).
    Cached: if ``corpus.json`` already records the same config and tokenizer, nothing is rewritten.
    From scratch, the tokenizer is trained on every corpus string plus the IDK answers (IdkDPO's targets), so all of
    them are tokenized by learned merges rather than raw bytes; with a pretrained ``model`` it is the model's own,
    with its chat template (``vocab_size`` unused).
    """
    cfg = _corpus_cfg(corpus)
    arch = model_spec(model)
    training_only = ("trainable_blocks", "attn_implementation", "frozen_cache")  # they do not change the tokenizer
    tokenizer_key = ({k: v for k, v in arch.to_dict().items() if k not in training_only}
                     if isinstance(arch, PretrainedSpec) else {"vocab_size": vocab_size})
    out = Path(out_dir)
    meta_path = out / META_FILE
    config = {"dataset": str(dataset), "splits": list(splits)} if dataset is not None else cfg.to_dict()
    if meta_path.is_file() and (out / TOKENIZER_DIR).is_dir():
        meta = json.loads(meta_path.read_text())
        if meta.get("config") == config and meta.get("tokenizer", {"vocab_size": meta.get("vocab_size")}) == tokenizer_key:
            return meta
    if dataset is not None:
        meta = {"format_version": CORPUS_FORMAT_VERSION, "config": config, "splits": export_tofu(dataset, out, splits)}
    else:
        # a pretrained model knows real authors and world facts from pretraining: they are not trained on (no
        # ``knowledge`` split), so model utility measures what fine-tuning and unlearning keep of that knowledge
        meta = write_corpus(out, cfg, exclude=("knowledge",) if isinstance(arch, PretrainedSpec) else ())
    if isinstance(arch, PretrainedSpec):
        save_chat_tokenizer(load_pretrained_tokenizer(arch), out / TOKENIZER_DIR)
        meta["tokenizer"] = tokenizer_key
    else:
        texts = corpus_texts({n: split_rows(out, n) for n in meta["splits"]} if dataset is not None else generate_corpus(cfg))
        tok = train_tokenizer(texts + list(IDK_ANSWERS), vocab_size=vocab_size)
        save_tokenizer(tok, out / TOKENIZER_DIR)
        meta["vocab_size"] = vocab_size
    write_json_atomic(meta_path, meta)  # rewritten last: the tokenizer is complete when the meta records it
    return meta


def load_corpus_tokenizer(corpus_dir: str | Path):
    path = Path(corpus_dir) / TOKENIZER_DIR
    if not path.is_dir():
        raise FileNotFoundError(f"no tokenizer in {path}; run ofmu.llm.api.build_corpus({str(corpus_dir)!r}) first")
    return load_tokenizer(path)


def _train_cfg(train: TrainConfig | dict | None, seed: int | None) -> TrainConfig:
    cfg = train if isinstance(train, TrainConfig) else TrainConfig.from_dict(train or {})
    return cfg if seed is None else TrainConfig.from_dict({**cfg.to_dict(), "seed": int(seed)})


def model_spec(spec: GPT2Spec | PretrainedSpec | dict | None) -> GPT2Spec | PretrainedSpec:
    """``llm.model``: a pretrained model (the key ``pretrained``) or the from-scratch GPT-2's architecture."""
    if isinstance(spec, (GPT2Spec, PretrainedSpec)):
        return spec
    return PretrainedSpec.from_dict(spec) if is_pretrained(spec) else GPT2Spec.from_dict(spec or {})


def load_start_model(path: str | Path, spec: GPT2Spec | PretrainedSpec | dict | None = None,
                     device: str | torch.device = "cpu") -> nn.Module:
    """A saved Finetuned model to unlearn from: with a pretrained spec, its attention and its trainable blocks."""
    arch = model_spec(spec)
    if not isinstance(arch, PretrainedSpec):
        return load_causal_lm(path, device=device)
    return prepare(load_causal_lm(path, device=device, attn_implementation=arch.attn_implementation), arch)


def train_model(corpus_dir: str | Path, tokenizer, forget_split: str | None = None, out_dir: str | Path | None = None,
                train: TrainConfig | dict | None = None, spec: GPT2Spec | dict | None = None, seed: int | None = None,
                device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The full model (``forget_split=None``) or the retain-only model of ``forget_split``, seeded.

    ``seed`` (if given) overrides ``train.seed``; it seeds the initialization and the data order. With
    ``out_dir`` the model is cached (save_pretrained, safetensors) together with ``ofmu_train.json``; a
    cached model is reused only if it was trained with the same split, train config and architecture.
    Returns (model in eval mode, info with the training history and wall seconds).
    """
    cfg, arch = _train_cfg(train, seed), model_spec(spec)
    key = {"forget_split": forget_split, "train": cfg.to_dict(), "spec": asdict(arch)}
    if out_dir is not None:
        info_path = Path(out_dir) / MODEL_INFO
        if info_path.is_file() and (Path(out_dir) / "model.safetensors").is_file():
            info = json.loads(info_path.read_text())
            if info.get("key") == key:
                return load_causal_lm(out_dir, device=device), info
    rows = load_training_rows(corpus_dir, forget_split)
    if isinstance(arch, PretrainedSpec):  # TOFU: fine-tune the pretrained model (the seed sets the data order)
        model = prepare(load_pretrained(arch, device=str(device)), arch)
    else:
        model = build_gpt2(tokenizer, arch, seed=cfg.seed)
    start = time.perf_counter()
    history = train_causal_lm(model, tokenizer, rows, cfg, device=device)
    info = {"key": key, "history": history, "wall_seconds": time.perf_counter() - start, "n_rows": len(rows)}
    if out_dir is not None:
        save_model(model, out_dir)
        write_json_atomic(Path(out_dir) / MODEL_INFO, info)
    return model.eval(), info


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy (unlearning updates in place; the cached full model must stay untouched)."""
    return copy.deepcopy(model)


# ----------------------------------------------------------------------------------------------------------
# Unlearning
# ----------------------------------------------------------------------------------------------------------


def split_names(split: str) -> tuple[str, str, str]:
    if not split.startswith("forget") or not split[6:].isdigit():
        raise ValueError(f"forget split {split!r} is not of the form forgetNN (forget01, forget05, forget10)")
    p = int(split[6:])
    return split, f"retain{100 - p:02d}", f"holdout{p:02d}"


def split_rows(corpus_dir, name: str, allow_empty: bool = False) -> list[dict]:
    return load_tofu_split(corpus_dir, name, allow_empty=allow_empty).to_list()


def make_loaders(corpus_dir, tokenizer, split: str, batch_size: int, seed: int, max_length: int = 128,
                 forget_rows: Sequence[dict] | None = None) -> tuple[QALoader, QALoader]:
    """(forget, retain) loaders of ``split``: the forget authors' training rows (with IDK alternates for
    IdkDPO) and the retain split's rows, each shuffled from its own derived seed."""
    forget_name, retain_name, _ = split_names(split)
    f_rows = list(forget_rows) if forget_rows is not None else split_rows(corpus_dir, forget_name)
    r_rows = split_rows(corpus_dir, retain_name)
    forget = QALoader(f_rows, tokenizer, batch_size, derive_seed(seed, "forget_loader"), max_length,
                      alternate_answers=idk_alternates(f_rows, derive_seed(seed, "idk")))
    retain = QALoader(r_rows, tokenizer, batch_size, derive_seed(seed, "retain_loader"), max_length)
    return forget, retain


def unlearn(model: nn.Module, corpus_dir, tokenizer, method: str, split: str, hparams: dict | None = None,
            epochs: float = 5, seed: int = 0, batch_size: int = 32, max_length: int = 128,
            device: str | torch.device = "cpu", log_every: int = 1) -> UnlearnResult:
    """Run a registered method on ``model`` (in place) for ``epochs`` passes over the forget set of ``split``.

    ``hparams`` override the method's LLM settings (``config/methods/<method>.yaml``). The result carries the
    wall time, the peak memory, forget passes, and per-step diagnostics in ``history`` (for OFMU:
    ``cos`` = cos(grad L_f, grad L_r), ``grad_phi_norm`` = ||grad Phi||, ``rho``, L_f, L_r, ...).
    """
    m = make_method(method, "llm", **(hparams or {}))
    forget, retain = make_loaders(corpus_dir, tokenizer, split, batch_size, seed, max_length)
    model.train()
    res = run_unlearning(model, m, forget, retain, LanguageModelTask(), epochs=epochs,
                         seed=derive_seed(seed, "method"), device=device, log_every=log_every)
    model.eval()
    return res


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    """What ``evaluate`` computes, and on how much (greedy decoding for ROUGE dominates the cost)."""

    max_retain: int | None = None  # rows of retain_perturbed (None = all)
    rouge: bool = True  # ROUGE-L of greedy answers on forget / retain / real_authors / world_facts
    max_new_tokens: int = 32  # the corpus' answers are <= ~25 tokens
    batch_size: int = 64
    max_length: int = 128
    min_k: float = 0.4

    @classmethod
    def from_dict(cls, values: dict) -> "EvalConfig":
        return dataclass_from_dict(cls, values, "evaluation config")


def _eval_cfg(ev: EvalConfig | dict | None) -> EvalConfig:
    return ev if isinstance(ev, EvalConfig) else EvalConfig.from_dict(ev or {})


def _eval(model, tokenizer, rows, cfg: EvalConfig, device, correct_key="paraphrased_answer", rouge=None):
    return M.evaluate_split(model, tokenizer, rows, correct_key=correct_key,
                            rouge=cfg.rouge if rouge is None else rouge, min_k=cfg.min_k, batch_size=cfg.batch_size,
                            max_new_tokens=cfg.max_new_tokens, max_length=cfg.max_length, device=device)


def reference_stats(evaluation: dict) -> dict[str, Any]:
    """What ``evaluate`` needs from a retain-only model: its forget truth ratios and its MIA AUC."""
    return {"forget_tr": np.asarray(evaluation["per_sample"]["forget"]["tr"], dtype=float),
            "mia_auc": float(evaluation["summary"]["mia_auc"])}


def evaluate(model: nn.Module, corpus_dir, tokenizer, split: str, references: Sequence[dict] | None = None,
             eval_cfg: EvalConfig | dict | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """TOFU metrics of ``model`` on ``split``: {"summary": {...}, "per_sample": {set: {metric: array}}}.

    summary: MU and its 9 components, forget_truth_ratio (FTR), forget_prob, forget_rouge, forget_es
    (extraction strength), mia_auc; with ``references`` (``reference_stats`` of >= 1 retain-only models,
    e.g. several seeds) also forget_quality = the MEDIAN over references of the KS p-value (single FQ
    p-values of a perfect unlearner range 0.03-0.99 across retrain seeds, llm-protocol-notes.md),
    forget_quality_min/max, ks_statistic (median) and privleak (median, %). per_sample: the arrays of
    ``ofmu.llm.metrics.evaluate_split`` for forget / retain / real_authors / world_facts / holdout.
    """
    cfg = _eval_cfg(eval_cfg)
    forget_name, _, holdout_name = split_names(split)
    model.eval()
    retain_rows = split_rows(corpus_dir, "retain_perturbed")
    if cfg.max_retain is not None:
        retain_rows = retain_rows[: cfg.max_retain]  # the file's order is already a seeded random sample
    holdout_rows = [{"question": r["question"], "answer": r["answer"]} for r in split_rows(corpus_dir, holdout_name)]
    per = {
        "forget": _eval(model, tokenizer, split_rows(corpus_dir, forget_name + "_perturbed"), cfg, device),
        "retain": _eval(model, tokenizer, retain_rows, cfg, device),
        "real_authors": _eval(model, tokenizer, split_rows(corpus_dir, "real_authors_perturbed"), cfg, device, "answer"),
        "world_facts": _eval(model, tokenizer, split_rows(corpus_dir, "world_facts_perturbed"), cfg, device, "answer"),
        # Min-K scores only (MIA): no truth ratio or generation needed
        "holdout": _eval(model, tokenizer, holdout_rows, cfg, device, rouge=False),
    }
    if not cfg.rouge:  # MU needs ROUGE; without it the components are reported, MU is not
        for name in ("forget", "retain", "real_authors", "world_facts"):
            per[name]["rouge"] = np.full(len(per[name]["nll"]), np.nan)
    summary = _summarize(per, cfg.rouge)
    if references:
        summary.update(_against_references(per, summary, references))
    return {"summary": summary, "per_sample": per}


def _summarize(per: dict, with_rouge: bool) -> dict[str, float]:
    if with_rouge:
        return M.summarize(per["forget"], per["retain"], per["real_authors"], per["world_facts"], per["holdout"])
    patched = {k: {**v, "rouge": np.ones_like(v["nll"])} for k, v in per.items() if k != "holdout"}
    out = M.summarize(patched["forget"], patched["retain"], patched["real_authors"], patched["world_facts"],
                      per["holdout"])
    for k in ("retain_rouge", "ra_rouge", "wf_rouge", "forget_rouge", "model_utility"):
        out[k] = float("nan")
    return out


def _against_references(per: dict, summary: dict, references: Sequence[dict]) -> dict[str, float]:
    fq, ks, leak = [], [], []
    for ref in references:
        if "forget_tr" not in ref:
            raise ValueError("a reference lacks 'forget_tr'; build references with reference_stats(evaluate(retain_model, ...))")
        r = M.forget_quality(per["forget"]["tr"], ref["forget_tr"])
        fq.append(r["forget_quality"])
        ks.append(r["ks_statistic"])
        if "mia_auc" in ref and ref["mia_auc"] < 1:
            leak.append(M.privleak(summary["mia_auc"], ref["mia_auc"]))
    out = {"forget_quality": float(np.median(fq)), "forget_quality_min": float(np.min(fq)),
           "forget_quality_max": float(np.max(fq)), "ks_statistic": float(np.median(ks)),
           "n_references": len(references)}
    if leak:
        out["privleak"] = float(np.median(leak))
    return out


def probe_evaluate(model: nn.Module, corpus_dir, tokenizer, split: str, eval_cfg: EvalConfig | dict | None = None,
                   include_retain: bool = True, device: str | torch.device = "cpu") -> dict[str, dict[str, float]]:
    """Hard in-scope probes (paraphrased question, two-hop, German question) on the forget facts of ``split``
    and, with ``include_retain``, the same probes on retained facts (what a probe costs a model that still
    knows). Per probe: forget_truth_ratio (mean min(TR, 1/TR)), prob (mean P(answer|probe question)),
    rouge (ROUGE-L recall of greedy answers; NaN when the config turns ROUGE off), n (rows)."""
    cfg = _eval_cfg(eval_cfg)
    forget_name, _, _ = split_names(split)
    out: dict[str, dict[str, float]] = {}
    sets = [("forget", forget_name)] + ([("retain", "retain")] if include_retain else [])
    for side, prefix in sets:
        for probe in PROBES:
            if not any((Path(corpus_dir) / f"{prefix}_{probe}{suffix}").is_file() for suffix in (".jsonl", ".json")):
                continue  # real TOFU has none of the generated corpus' probes
            rows = split_rows(corpus_dir, f"{prefix}_{probe}", allow_empty=True)  # a probe can be empty in a tiny corpus
            if not rows:
                continue
            ev = _eval(model, tokenizer, rows, cfg, device)
            out[f"{side}_{probe}"] = {
                "forget_truth_ratio": M.truth_ratio_forget(ev["tr"]), "prob": float(ev["prob"].mean()),
                "rouge": float(ev["rouge"].mean()) if "rouge" in ev else float("nan"), "n": len(rows)}
    return out


# ----------------------------------------------------------------------------------------------------------
# Figure 1 analog: per-sample difficulty vs utility loss
# ----------------------------------------------------------------------------------------------------------


def sample_costs(full_model: nn.Module, corpus_dir, tokenizer, method: str, split: str, hparams: dict | None = None,
                 steps: int = 10, n_samples: int = 24, utility_rows: int = 64, seed: int = 0, batch_size: int = 32,
                 max_length: int = 128, device: str | torch.device = "cpu") -> list[dict[str, float]]:
    """Per forget sample: how hard it is to forget, and what forgetting it alone costs in utility.

    Definitions (Figure 1 analog; the paper's exact ones are unknown):
      * difficulty = the full model's mean answer-token NLL of the sample's trained answer, NEGATED and
        reported as ``difficulty = -NLL_full`` = log P_full(answer): a well-memorized answer (high
        probability) has further to go and is "hard to forget". ``prob_full`` is reported too.
      * utility loss = increase of the mean answer-token NLL on a fixed retain subset
        (``utility_rows`` rows of retain_perturbed, a utility probe no method trains on) after running
        ``method`` from the full model on THIS SAMPLE ALONE as the forget set, for ``steps`` update steps
        (the same shared loop and retain loader; for OFMU T+1 forget passes per step are over the one
        sample). ``prob_after`` is the sample's answer probability after those steps.
    ``n_samples`` forget samples (the split's QA rows, a seeded subset) are unlearned independently from
    copies of the full model: cost ~ n_samples * steps method steps at batch (1 forget, ``batch_size``
    retain) examples. The coupling is read from (difficulty, utility_loss) pairs, e.g. their rank correlation.
    """
    forget_name, _, _ = split_names(split)
    rows = split_rows(corpus_dir, forget_name + "_perturbed")
    rng = np.random.default_rng(derive_seed(seed, "forget_loader"))
    pick = sorted(rng.choice(len(rows), size=min(n_samples, len(rows)), replace=False).tolist())
    util_rows = split_rows(corpus_dir, "retain_perturbed")[:utility_rows]
    kw = {"batch_size": 64, "max_length": max_length, "device": device}
    util_q, util_a = [r["question"] for r in util_rows], [r["answer"] for r in util_rows]
    full_model.eval()
    base_util = float(M.mean_nll(full_model, tokenizer, util_q, util_a, **kw).mean())
    out = []
    for i in pick:
        row = {"question": rows[i]["question"], "answer": rows[i]["answer"]}
        nll_full = float(M.mean_nll(full_model, tokenizer, [row["question"]], [row["answer"]], **kw)[0])
        model = copy_model(full_model)
        m = make_method(method, "llm", **(hparams or {}))
        forget, retain = make_loaders(corpus_dir, tokenizer, split, batch_size, seed, max_length, forget_rows=[row])
        model.train()
        try:
            run_unlearning(model, m, forget, retain, LanguageModelTask(), epochs=steps * m.budget_cost(),
                           seed=derive_seed(seed, "method"), device=device, log_every=10**9)
        except NonFiniteError:
            # a diverged run is a data point (its utility cost is unbounded), not a crash of the figure
            out.append({"row": int(i), "fact": rows[i].get("fact"), "difficulty": -nll_full,
                        "prob_full": float(np.exp(-nll_full)), "prob_after": float("nan"),
                        "utility_loss": float("nan"), "method": method, "status": "diverged"})
            continue
        model.eval()
        nll_after = float(M.mean_nll(model, tokenizer, [row["question"]], [row["answer"]], **kw)[0])
        util = float(M.mean_nll(model, tokenizer, util_q, util_a, **kw).mean())
        out.append({"row": int(i), "fact": rows[i].get("fact"), "difficulty": -nll_full, "prob_full": float(np.exp(-nll_full)),
                    "prob_after": float(np.exp(-nll_after)), "utility_loss": util - base_util, "method": method,
                    "status": "ok"})
    return out
