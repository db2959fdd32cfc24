"""TOFU / OpenUnlearning metrics: per-sample values and aggregates (shared/paper-notes.md section 6).

Two layers:
* pure functions on arrays (hand-checkable in tests): probability, truth ratio and its aggregates,
  normalized probability over options, ROUGE-L recall, forget quality (KS test), model utility
  (harmonic mean), Min-K% scores, MIA AUC, privleak, extraction strength;
* model-facing functions that produce the arrays: answer NLLs (per token), greedy answers, teacher-forced
  predictions, and ``evaluate_split`` / ``summarize`` that put them together.

Conventions copied from OpenUnlearning: probability = exp(-mean answer-token NLL); truth ratio =
exp(-mean_k NLL_k(perturbed)) / (exp(-NLL(correct)) + 1e-10) where "correct" is the paraphrased answer on
fictitious authors and the original answer on real_authors/world_facts; forget aggregate
mean(min(TR, 1/(TR + 1e-10))); retain-type aggregate mean(max(0, 1 - TR)); MIA scores are higher for
non-members and the AUC labels holdout as the positive class (so a model that memorized D_f has AUC ~ 1).
"""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np
import torch

from ofmu.llm.data import IGNORE_INDEX, encode_answers, encode_prompts, join_qa, pad_batch
from ofmu.llm.frozen import frozen_cache

EPS = 1e-10  # OpenUnlearning's guard in truth ratios
MU_KEYS = tuple(f"{s}_{m}" for s in ("retain", "ra", "wf") for m in ("prob", "rouge", "tr"))


# ---------------------------------------------------------------------------------------- pure
def probability(mean_nll: np.ndarray) -> np.ndarray:
    """P(answer | question) = exp(-mean token NLL), per sample."""
    return np.exp(-np.asarray(mean_nll, dtype=float))


def truth_ratio(correct_nll: np.ndarray, wrong_nll: np.ndarray) -> np.ndarray:
    """Per-sample truth ratio from mean NLLs: correct [N], wrong [N, K] (K perturbed answers)."""
    correct_nll = np.asarray(correct_nll, dtype=float)
    wrong_nll = np.asarray(wrong_nll, dtype=float)
    if wrong_nll.ndim != 2 or wrong_nll.shape[0] != correct_nll.shape[0]:
        raise ValueError(f"wrong_nll must be [N, K] with N={correct_nll.shape[0]}; got {wrong_nll.shape}")
    # the geometric mean of the perturbed probabilities (OpenUnlearning averages the NLLs first)
    return np.exp(-wrong_nll.mean(axis=1)) / (np.exp(-correct_nll) + EPS)


def truth_ratio_forget(tr: np.ndarray) -> float:
    """Forget-set aggregate: mean min(TR, 1/TR); 1 = cannot tell the true answer from false ones."""
    tr = np.asarray(tr, dtype=float)
    return float(np.mean(np.minimum(tr, 1.0 / (tr + EPS))))


def truth_ratio_true_better(tr: np.ndarray) -> float:
    """Retain / real_authors / world_facts aggregate: mean max(0, 1 - TR); 1 = always prefers the truth."""
    return float(np.mean(np.maximum(0.0, 1.0 - np.asarray(tr, dtype=float))))


def normalized_probability(correct_nll: np.ndarray, wrong_nll: np.ndarray) -> np.ndarray:
    """P(correct) / (P(correct) + sum_k P(wrong_k)), per sample (real_authors / world_facts); computed as a
    softmax over the log-probabilities, so a collapsed model whose probabilities all underflow to 0 gets
    its ratio (not 0 / 0 = NaN)."""
    from scipy.special import logsumexp

    correct = -np.asarray(correct_nll, dtype=float)
    options = np.concatenate([correct[:, None], -np.asarray(wrong_nll, dtype=float)], axis=1)
    return np.exp(correct - logsumexp(options, axis=1))


_ROUGE = None


def rouge_l_recall(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall of each prediction against its reference (rouge-score, Porter stemmer)."""
    global _ROUGE
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([_ROUGE.score(ref, pred)["rougeL"].recall for pred, ref in zip(predictions, references)])


def forget_quality(tr_model: np.ndarray, tr_retain: np.ndarray) -> dict[str, float]:
    """FQ = p-value of the two-sample KS test of forget truth ratios, model vs retain-only model."""
    from scipy.stats import ks_2samp

    res = ks_2samp(np.asarray(tr_model, dtype=float), np.asarray(tr_retain, dtype=float))
    return {"forget_quality": float(res.pvalue), "ks_statistic": float(res.statistic)}


def model_utility(values: dict[str, float]) -> float:
    """MU = harmonic mean of the 9 numbers {retain, ra, wf} x {prob, rouge, tr} (keys in MU_KEYS)."""
    from scipy.stats import hmean

    missing = [k for k in MU_KEYS if k not in values]
    if missing:
        raise KeyError(f"model_utility needs {list(MU_KEYS)}; missing {missing}")
    xs = np.array([values[k] for k in MU_KEYS], dtype=float)
    if np.any(xs < 0):
        raise ValueError(f"model utility inputs must be >= 0; got {dict(zip(MU_KEYS, xs))}")
    if not np.all(np.isfinite(xs)):  # a model whose outputs are not numbers any more: the run diverged
        from ofmu.core.ofmu import NonFiniteError

        raise NonFiniteError(f"model utility inputs must be finite; got {dict(zip(MU_KEYS, xs))}")
    # a zero component makes the harmonic mean 0 (scipy warns on zeros; state it explicitly)
    return 0.0 if np.any(xs == 0) else float(hmean(xs))


def min_k_score(token_nll: np.ndarray, k: float = 0.4) -> float:
    """Min-K% Prob attack score of one sample: mean NLL of its k share of least likely tokens.

    Higher = more likely a non-member.
    """
    if not 0 < k <= 1:
        raise ValueError(f"Min-K share k={k} must be in (0, 1]")
    t = np.sort(np.asarray(token_nll, dtype=float))[::-1]
    if t.size == 0:
        raise ValueError("a sample has no answer tokens; check max_length and the labels")
    n = max(1, int(len(t) * k))
    return float(t[:n].mean())


def mia_auc(forget_scores: np.ndarray, holdout_scores: np.ndarray) -> float:
    """ROC AUC of telling holdout (positive) from forget samples by a non-membership score."""
    from sklearn.metrics import roc_auc_score

    f, h = np.asarray(forget_scores, dtype=float), np.asarray(holdout_scores, dtype=float)
    if f.size == 0 or h.size == 0:
        raise ValueError("MIA AUC needs forget and holdout samples; the holdout split may be empty")
    labels = np.r_[np.zeros(f.size), np.ones(h.size)]
    return float(roc_auc_score(labels, np.r_[f, h]))


def privleak(auc_model: float, auc_retain: float) -> float:
    """privleak (%) = ((1 - AUC_model) - (1 - AUC_retain)) / (1 - AUC_retain) * 100.

    0 = as private as the retain model; -100 = forget set fully exposed (AUC 1).
    """
    ref = 1.0 - auc_retain
    if ref <= 0:
        raise ValueError(f"the retain model's MIA AUC is {auc_retain} (>= 1): the reference is degenerate")
    return ((1.0 - auc_model) - ref) / ref * 100.0


def extraction_strength(pred_ids: Sequence[int], label_ids: Sequence[int]) -> float:
    """1 - k*/T where k* is the smallest k such that the teacher-forced predictions of answer tokens
    k..T-1 all equal the labels (k* = T when even the last token is wrong, giving 0).

    OpenUnlearning's loop stops at k = T-1 when nothing matches and so reports 1/T there; we use the
    definition (0), which differs only for samples with a wrong last token.
    """
    p, y = list(pred_ids), list(label_ids)
    if len(p) != len(y) or not y:
        raise ValueError(f"extraction strength needs equal, non-empty predictions and labels; got {len(p)}, {len(y)}")
    T = len(y)
    k_star = T
    for k in range(T - 1, -1, -1):  # walk back while the suffix stays fully predicted
        if p[k] != y[k]:
            break
        k_star = k
    return 1.0 - k_star / T


# ---------------------------------------------------------------------------------- model-facing
def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield range(i, min(n, i + size))


def _accepts(model, argument: str) -> bool:
    return argument in inspect.signature(model.forward).parameters


def _nll_and_argmax(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of ``labels`` (any value where IGNORE_INDEX) and argmax prediction, both [B, W]."""
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels.clamp_min(0), reduction="none")
    return nll, logits.argmax(-1)


def _score_sharing_prompts(model, prompts: list[list[int]], answers: list[list[int]], pad: int, device):
    """(NLL, argmax, labels) of each answer token, [B, W] each (labels IGNORE_INDEX on padding).

    Each distinct prompt of the batch runs once; its key/value cache is copied to the rows of its answers,
    which continue at the prompt's next position (the answer tokens see the same keys at the same positions
    as in one padded sequence; the prompts' padding is masked).
    """
    distinct = list(dict.fromkeys(map(tuple, prompts)))
    row_of = {p: i for i, p in enumerate(distinct)}
    which = torch.tensor([row_of[tuple(p)] for p in prompts], device=device)
    prompt_batch = {k: v.to(device) for k, v in pad_batch([{"input_ids": list(p), "labels": list(p)} for p in distinct], pad).items()}
    out = model(input_ids=prompt_batch["input_ids"], attention_mask=prompt_batch["attention_mask"], use_cache=True)
    prompt_length = prompt_batch["attention_mask"].sum(1)
    first = out.logits[torch.arange(len(distinct), device=device), prompt_length - 1][which]  # predicts answer token 0
    cache = out.past_key_values
    cache.batch_select_indices(which)
    answer_batch = {k: v.to(device) for k, v in pad_batch([{"input_ids": a, "labels": a} for a in answers], pad).items()}
    labels = answer_batch["labels"]
    width = labels.shape[1]
    positions = prompt_length[which][:, None] + torch.arange(width, device=device)[None, :]
    positions = positions * answer_batch["attention_mask"]  # padding at 0: masked, and never past the model's length
    rest = model(input_ids=answer_batch["input_ids"],
                 attention_mask=torch.cat([prompt_batch["attention_mask"][which], answer_batch["attention_mask"]], 1),
                 position_ids=positions, past_key_values=cache)
    nll_first, arg_first = _nll_and_argmax(first[:, None], labels[:, :1])
    nll_rest, arg_rest = _nll_and_argmax(rest.logits[:, :-1], labels[:, 1:])
    return torch.cat([nll_first, nll_rest], 1), torch.cat([arg_first, arg_rest], 1), labels


def _score_full_sequences(model, encoded: list[dict], pad: int, device):
    """The same from one padded forward of the whole sequences (models without a key/value cache); logits only
    from the batch's first answer position on where the model takes ``logits_to_keep``."""
    batch = {k: v.to(device) for k, v in pad_batch(encoded, pad).items()}
    width = batch["input_ids"].shape[1]
    # position ``start`` predicts the first answer token of the row with the shortest prompt
    cache = frozen_cache(model)
    start = (min(e["labels"].count(IGNORE_INDEX) for e in encoded) - 1
             if cache is not None or _accepts(model, "logits_to_keep") else 0)
    if cache is not None:  # the frozen bottom from its cache, the top blocks alone (ofmu.llm.frozen)
        logits = cache.logits(model, batch["input_ids"], batch["attention_mask"], start)[:, :-1]
    else:
        extra = {"logits_to_keep": width - start} if start else {}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra).logits[:, :-1]
    labels = batch["labels"][:, start + 1:]
    return (*_nll_and_argmax(logits, labels), labels)


def token_nlls(model, tokenizer, questions: Sequence[str], answers: Sequence[str], batch_size: int = 64,
               max_length: int = 128, device: str | torch.device = "cpu") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-sample answer-token NLLs and teacher-forced argmax predictions (answer positions only).

    Evaluation dominates the LLM stage, so (values equal to scoring each pair alone up to float round-off,
    tests/unit/test_eval_speed.py): each distinct (question, answer) pair is scored once, its question and
    answer tokenized once; pairs sharing a question are batched together and the question's prompt runs once
    per batch (key/value cache); no vocabulary projection is computed on prompt positions.
    """
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions for {len(answers)} answers")
    pairs = list(zip(questions, answers))
    distinct = list(dict.fromkeys(pairs))
    questions_once = list(dict.fromkeys(q for q, _ in distinct))
    answers_once = list(dict.fromkeys(a for _, a in distinct))
    prompts = dict(zip(questions_once, encode_prompts(tokenizer, questions_once)))
    answer_ids = dict(zip(answers_once, encode_answers(tokenizer, answers_once)))
    encoded = [join_qa(prompts[q], answer_ids[a], max_length, q) for q, a in distinct]
    prompt_length = [e["labels"].count(IGNORE_INDEX) for e in encoded]
    # the same prompt together, short prompts first, then short answers: little padding on either side
    order = sorted(range(len(distinct)), key=lambda i: (prompt_length[i], distinct[i][0], len(encoded[i]["input_ids"])))
    # a frozen-bottom cache holds whole sequences: with it every sequence runs whole, its bottom from the cache
    shares_prompts = (frozen_cache(model) is None and _accepts(model, "past_key_values")
                      and _accepts(model, "position_ids"))
    pad = tokenizer.pad_token_id
    scored: list[tuple[np.ndarray, np.ndarray]] = [None] * len(distinct)  # type: ignore[list-item]
    with torch.inference_mode():
        for idx in _batches(len(order), batch_size):
            rows = [order[i] for i in idx]
            if shares_prompts:
                nll, arg, labels = _score_sharing_prompts(
                    model, [encoded[i]["input_ids"][:prompt_length[i]] for i in rows],
                    [encoded[i]["input_ids"][prompt_length[i]:] for i in rows], pad, device)
            else:
                nll, arg, labels = _score_full_sequences(model, [encoded[i] for i in rows], pad, device)
            mask = labels != IGNORE_INDEX
            for b, i in enumerate(rows):
                m = mask[b]
                scored[i] = (nll[b][m].cpu().numpy().astype(float),
                             np.stack([arg[b][m].cpu().numpy(), labels[b][m].cpu().numpy()]))
    index = {pair: i for i, pair in enumerate(distinct)}
    return [scored[index[p]][0] for p in pairs], [scored[index[p]][1] for p in pairs]


def mean_nll(model, tokenizer, questions, answers, **kw) -> np.ndarray:
    return np.array([t.mean() for t in token_nlls(model, tokenizer, questions, answers, **kw)[0]])


def _fixed_k(perturbed: Sequence[Sequence[str]]) -> int:
    """The number K of perturbed answers per row (the same for every row, or an error)."""
    ks = {len(p) for p in perturbed}
    if len(ks) != 1:
        raise ValueError(f"rows have different numbers of perturbed answers {sorted(ks)}; truth ratios need a fixed K")
    return ks.pop()


def perturbed_mean_nll(model, tokenizer, questions: Sequence[str], perturbed: Sequence[Sequence[str]], **kw) -> np.ndarray:
    """Mean NLL of each perturbed answer, [N, K] (rows with fewer options are an error: K must be fixed)."""
    k = _fixed_k(perturbed)
    flat_q = [q for q, ps in zip(questions, perturbed) for _ in ps]
    flat_a = [a for ps in perturbed for a in ps]
    return mean_nll(model, tokenizer, flat_q, flat_a, **kw).reshape(len(questions), k)


@torch.inference_mode()
def greedy_answers(model, tokenizer, questions: Sequence[str], max_new_tokens: int = 48, batch_size: int = 32,
                   device: str | torch.device = "cpu") -> list[str]:
    """Greedy continuations of "Question: q\\nAnswer:" (left-padded batches, stop at eos)."""
    out_texts: list[str] = []
    pad = tokenizer.pad_token_id
    for idx in _batches(len(questions), batch_size):
        prompts = encode_prompts(tokenizer, [questions[i] for i in idx])
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, p in enumerate(prompts):  # left padding: generation continues every row at the same column
            ids[b, width - len(p):] = torch.tensor(p)
            mask[b, width - len(p):] = 1
        gen = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
        )
        for row in gen[:, width:].tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
            out_texts.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return out_texts


def evaluate_split(model, tokenizer, ds, correct_key: str = "paraphrased_answer", rouge: bool = True,
                   min_k: float = 0.4, batch_size: int = 64, max_new_tokens: int = 48, max_length: int = 128,
                   device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Per-sample metrics of one TOFU-format split (a datasets.Dataset or a list of row dicts).

    Keys: nll, prob (original answer), es (extraction strength), mink (Min-K% score); with a
    perturbed_answer column also correct_nll (``correct_key``), wrong_nll [N, K], tr, prob_norm; with
    ``rouge`` also rouge (ROUGE-L recall of the greedy answer) and generated.
    """
    rows = ds if isinstance(ds, list) else ds.to_list()
    if not rows:
        raise ValueError("evaluate_split got an empty split")
    q = [r["question"] for r in rows]
    a = [r["answer"] for r in rows]
    kw = {"batch_size": batch_size, "max_length": max_length, "device": device}
    has = [bool(r.get("perturbed_answer")) for r in rows]
    if any(has) and not all(has):  # truth ratios need every row's wrong answers, not the first row's alone
        raise ValueError(f"rows {[i + 1 for i, h in enumerate(has) if not h][:10]} of the split lack perturbed_answer "
                         "that other rows have; regenerate the corpus (or fix those rows)")
    perturbed = [r["perturbed_answer"] for r in rows] if all(has) else None
    if perturbed is not None:
        _fixed_k(perturbed)
        lacking = [i + 1 for i, r in enumerate(rows) if correct_key != "answer" and not isinstance(r.get(correct_key), str)]
        if lacking:
            raise ValueError(f"rows {lacking[:10]} of the split lack {correct_key!r} (truth ratios need it); "
                             "regenerate the corpus (or fix those rows)")
    correct_answers = [r[correct_key] for r in rows] if perturbed is not None and correct_key != "answer" else []
    wrong_q = [qi for qi, ps in zip(q, perturbed) for _ in ps] if perturbed is not None else []
    wrong_a = [w for ps in perturbed for w in ps] if perturbed is not None else []
    # one scoring call for every pair of the split: fuller, length-sorted batches
    all_toks, all_preds = token_nlls(model, tokenizer, q + q[:len(correct_answers)] + wrong_q,
                                     a + correct_answers + wrong_a, **kw)
    n = len(rows)
    toks, preds = all_toks[:n], all_preds[:n]
    out: dict[str, np.ndarray] = {
        "nll": np.array([t.mean() for t in toks]),
        "es": np.array([extraction_strength(p[0], p[1]) for p in preds]),
        "mink": np.array([min_k_score(t, min_k) for t in toks]),
    }
    out["prob"] = probability(out["nll"])
    if perturbed is not None:
        means = np.array([t.mean() for t in all_toks[n:]])
        correct = means[:n] if correct_answers else out["nll"]
        wrong = means[len(correct_answers):].reshape(n, len(perturbed[0]))
        out.update(correct_nll=correct, wrong_nll=wrong, tr=truth_ratio(correct, wrong),
                   prob_norm=normalized_probability(out["nll"], wrong))
    if rouge:
        gen = greedy_answers(model, tokenizer, q, max_new_tokens=max_new_tokens, batch_size=batch_size, device=device)
        out["generated"] = np.array(gen, dtype=object)
        out["rouge"] = rouge_l_recall(gen, a)
    return out


def summarize(forget: dict, retain: dict, real_authors: dict, world_facts: dict,
              holdout: dict | None = None, reference: dict | None = None) -> dict[str, float]:
    """Aggregate TOFU numbers from ``evaluate_split`` outputs.

    ``reference`` holds the retain-only model's ``forget_tr`` (its forget truth ratios) and ``mia_auc``;
    without it FQ and privleak are omitted (e.g. when summarizing the retain model itself first).
    """
    mu_parts = {
        "retain_prob": float(retain["prob"].mean()), "retain_rouge": float(retain["rouge"].mean()),
        "retain_tr": truth_ratio_true_better(retain["tr"]),
        "ra_prob": float(real_authors["prob_norm"].mean()), "ra_rouge": float(real_authors["rouge"].mean()),
        "ra_tr": truth_ratio_true_better(real_authors["tr"]),
        "wf_prob": float(world_facts["prob_norm"].mean()), "wf_rouge": float(world_facts["rouge"].mean()),
        "wf_tr": truth_ratio_true_better(world_facts["tr"]),
    }
    res = {**mu_parts, "model_utility": model_utility(mu_parts),
           "forget_truth_ratio": truth_ratio_forget(forget["tr"]),
           "forget_prob": float(forget["prob"].mean()), "forget_es": float(forget["es"].mean()),
           "forget_tr_median": float(np.median(forget["tr"]))}
    if "rouge" in forget:
        res["forget_rouge"] = float(forget["rouge"].mean())
    if holdout is not None:
        res["mia_auc"] = mia_auc(forget["mink"], holdout["mink"])
    if reference is not None:
        res.update(forget_quality(forget["tr"], reference["forget_tr"]))
        if holdout is not None and "mia_auc" in reference:
            res["privleak"] = privleak(res["mia_auc"], reference["mia_auc"])
    return res
