"""The faster evaluation gives the numbers of the evaluation as it was (issue 8).

The reference implementations below are the evaluation code before the speed-up (``ref_*``: contiguous images
in batches of 1024 under no_grad, libsvm's own predict; one padded teacher-forced pass per answer kind with
logits at every position), kept here as the oracle on a fixed model and data. The new code must give:
  * vision: the same UA / RA / TA / MIA-Efficacy and per-example confidences, bitwise (small_cnn's average
    pooling computes the kernel's numbers, other batch sizes change no row's value);
  * LLM: the same greedy answers and extraction strengths, and NLL-derived values to float32 round-off
    (other batch compositions and logit slices change the kernels' summation order; ``RTOL`` leaves a margin
    while a shifted token or a wrong prefix changes NLLs by whole percents, last test).
``benchmarks/eval_speed.py`` times both on the default tier's data and models.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # forced: no hub on these machines, fail at once

import numpy as np
import pytest
import torch
from torch import nn

from ofmu.llm import api as S
from ofmu.llm import metrics as LM
from ofmu.llm.data import QACollator, encode_prompt
from ofmu.llm.models import answer_token_nll
from ofmu.seeds import derive_seed
from ofmu.vision import api as V
from ofmu.vision import metrics as VM
from ofmu.vision.data import ImageData, make_forget_split
from ofmu.vision.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

RTOL = 1e-6  # NLL-derived LLM values (see the module docstring)


# ============================================================ reference: the evaluation before the speed-up
@torch.no_grad()
def ref_predict(model, x, y, device="cpu", batch_size=1024):
    was_training = model.training
    model.eval()
    correct, conf = [], []
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            probs = torch.softmax(model(xb).float(), dim=1)
            correct.append((probs.argmax(1) == yb).cpu())
            conf.append(probs.gather(1, yb[:, None]).squeeze(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(correct).numpy(), torch.cat(conf).numpy()


def ref_svc_mia_efficacy(conf_retain, conf_test, conf_forget, seed, max_samples=None):
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    n = min(len(conf_retain), len(conf_test))
    if max_samples is not None:
        n = min(n, int(max_samples))
    members = rng.choice(conf_retain, size=n, replace=False) if n < len(conf_retain) else conf_retain
    non_members = rng.choice(conf_test, size=n, replace=False) if n < len(conf_test) else conf_test
    x = np.concatenate([members, non_members]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(1.0 - clf.predict(np.asarray(conf_forget).reshape(-1, 1)).mean())


def ref_vision_evaluate(model, data, split, seed=0, device="cpu", mia_max_samples=None, batch_size=1024,
                        retain_max_samples=None):
    model = model.to(device)
    f, r = torch.as_tensor(split.forget), torch.as_tensor(split.retain)
    if retain_max_samples is not None and len(r) > retain_max_samples:
        g = torch.Generator().manual_seed(derive_seed(seed, "mia"))
        r = r[torch.randperm(len(r), generator=g)[:retain_max_samples]]
    cf, pf = ref_predict(model, data.train_x[f], data.train_y[f], device, batch_size)
    cr, pr = ref_predict(model, data.train_x[r], data.train_y[r], device, batch_size)
    ct, pt = ref_predict(model, data.test_x, data.test_y, device, batch_size)
    return {"UA": 1.0 - float(np.mean(cf)), "RA": float(np.mean(cr)), "TA": float(np.mean(ct)),
            "MIA-Efficacy": ref_svc_mia_efficacy(pr, pt, pf, derive_seed(seed, "mia"), mia_max_samples)}


@torch.no_grad()
def ref_token_nlls(model, tokenizer, questions, answers, batch_size=64, max_length=128, device="cpu"):
    collator = QACollator(tokenizer, max_length)
    nlls, preds = [], []
    for i0 in range(0, len(questions), batch_size):
        idx = range(i0, min(len(questions), i0 + batch_size))
        batch = collator([{"question": questions[i], "answer": answers[i]} for i in idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        nll, mask, logits = answer_token_nll(model, batch)
        labels = batch["labels"][:, 1:]
        arg = logits.argmax(-1)
        for b in range(len(idx)):
            m = mask[b]
            nlls.append(nll[b][m].cpu().numpy().astype(float))
            preds.append(np.stack([arg[b][m].cpu().numpy(), labels[b][m].cpu().numpy()]))
    return nlls, preds


def ref_mean_nll(model, tokenizer, questions, answers, **kw):
    return np.array([t.mean() for t in ref_token_nlls(model, tokenizer, questions, answers, **kw)[0]])


def ref_perturbed_mean_nll(model, tokenizer, questions, perturbed, **kw):
    k = len(perturbed[0])
    flat_q = [q for q, ps in zip(questions, perturbed) for _ in ps]
    flat_a = [a for ps in perturbed for a in ps]
    return ref_mean_nll(model, tokenizer, flat_q, flat_a, **kw).reshape(len(questions), k)


def ref_evaluate_split(model, tokenizer, rows, correct_key="paraphrased_answer", rouge=True, min_k=0.4, batch_size=64,
                       max_new_tokens=48, max_length=128, device="cpu"):
    q = [r["question"] for r in rows]
    a = [r["answer"] for r in rows]
    kw = {"batch_size": batch_size, "max_length": max_length, "device": device}
    toks, preds = ref_token_nlls(model, tokenizer, q, a, **kw)
    out = {"nll": np.array([t.mean() for t in toks]),
           "es": np.array([LM.extraction_strength(p[0], p[1]) for p in preds]),
           "mink": np.array([LM.min_k_score(t, min_k) for t in toks])}
    out["prob"] = LM.probability(out["nll"])
    if rows[0].get("perturbed_answer"):
        correct = out["nll"] if correct_key == "answer" else ref_mean_nll(model, tokenizer, q, [r[correct_key] for r in rows], **kw)
        wrong = ref_perturbed_mean_nll(model, tokenizer, q, [r["perturbed_answer"] for r in rows], **kw)
        out.update(correct_nll=correct, wrong_nll=wrong, tr=LM.truth_ratio(correct, wrong),
                   prob_norm=LM.normalized_probability(out["nll"], wrong))
    if rouge:
        gen = LM.greedy_answers(model, tokenizer, q, max_new_tokens=max_new_tokens, batch_size=batch_size, device=device)
        out["generated"] = np.array(gen, dtype=object)
        out["rouge"] = LM.rouge_l_recall(gen, a)
    return out


def _ref_eval(model, tokenizer, rows, cfg, device, correct_key="paraphrased_answer", rouge=None):
    return ref_evaluate_split(model, tokenizer, rows, correct_key=correct_key,
                              rouge=cfg.rouge if rouge is None else rouge, min_k=cfg.min_k, batch_size=cfg.batch_size,
                              max_new_tokens=cfg.max_new_tokens, max_length=cfg.max_length, device=device)


def ref_llm_evaluate(model, corpus_dir, tokenizer, split, references=None, eval_cfg=None, device="cpu"):
    cfg = S._eval_cfg(eval_cfg)
    forget_name, _, holdout_name = S.split_names(split)
    model.eval()
    retain_rows = S.split_rows(corpus_dir, "retain_perturbed")
    if cfg.max_retain is not None:
        retain_rows = retain_rows[: cfg.max_retain]
    holdout_rows = [{"question": r["question"], "answer": r["answer"]} for r in S.split_rows(corpus_dir, holdout_name)]
    per = {
        "forget": _ref_eval(model, tokenizer, S.split_rows(corpus_dir, forget_name + "_perturbed"), cfg, device),
        "retain": _ref_eval(model, tokenizer, retain_rows, cfg, device),
        "real_authors": _ref_eval(model, tokenizer, S.split_rows(corpus_dir, "real_authors_perturbed"), cfg, device,
                                  "answer"),
        "world_facts": _ref_eval(model, tokenizer, S.split_rows(corpus_dir, "world_facts_perturbed"), cfg, device, "answer"),
        "holdout": _ref_eval(model, tokenizer, holdout_rows, cfg, device, rouge=False),
    }
    if not cfg.rouge:
        for name in ("forget", "retain", "real_authors", "world_facts"):
            per[name]["rouge"] = np.full(len(per[name]["nll"]), np.nan)
    summary = S._summarize(per, cfg.rouge)
    if references:
        summary.update(S._against_references(per, summary, references))
    return {"summary": summary, "per_sample": per}


def ref_probe_evaluate(model, corpus_dir, tokenizer, split, eval_cfg=None, include_retain=True, device="cpu"):
    from ofmu.llm.corpus import PROBES

    cfg = S._eval_cfg(eval_cfg)
    forget_name, _, _ = S.split_names(split)
    out = {}
    for side, prefix in [("forget", forget_name)] + ([("retain", "retain")] if include_retain else []):
        for probe in PROBES:
            rows = S.split_rows(corpus_dir, f"{prefix}_{probe}", allow_empty=True)
            if not rows:
                continue
            ev = _ref_eval(model, tokenizer, rows, cfg, device)
            out[f"{side}_{probe}"] = {
                "forget_truth_ratio": LM.truth_ratio_forget(ev["tr"]), "prob": float(ev["prob"].mean()),
                "rouge": float(ev["rouge"].mean()) if "rouge" in ev else float("nan"), "n": len(rows)}
    return out


# ============================================================ comparison
EXACT_KEYS = {"es", "generated"}  # argmax and greedy decoding: no round-off


def assert_same_values(ref, new, path="", rtol=RTOL):
    """Nested dicts / arrays / numbers of two evaluations agree (NaN == NaN); raises AssertionError naming the key."""
    if isinstance(ref, dict):
        assert isinstance(new, dict) and set(ref) == set(new), f"{path}: keys {sorted(ref)} != {sorted(new)}"
        for k in ref:
            assert_same_values(ref[k], new[k], f"{path}/{k}", 0.0 if k in EXACT_KEYS else rtol)
        return
    a, b = np.asarray(ref), np.asarray(new)
    assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
    if a.dtype == object or b.dtype == object or a.dtype.kind in "US":
        assert a.tolist() == b.tolist(), f"{path}: {a.tolist()} != {b.tolist()}"
        return
    np.testing.assert_allclose(b.astype(float), a.astype(float), rtol=rtol, atol=0, equal_nan=True, err_msg=path)


# ============================================================ vision
def _image_data(n_train=1500, n_test=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    # class-dependent blobs so that a few SGD steps give confident, varied predictions
    proto = torch.randn(10, 1, 28, 28, generator=g)
    x = proto[y] + 0.8 * torch.randn(n_train + n_test, 1, 28, 28, generator=g)
    return ImageData(name="synthetic", train_x=x[:n_train], train_y=y[:n_train], test_x=x[n_train:],
                     test_y=y[n_train:], num_classes=10)


def _smooth_cnn(width=8):
    """small_cnn's layout with SiLU + average pooling (config/config.yaml's smooth variant)."""
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
                         nn.Conv2d(width, 2 * width, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(2 * width * 49, 64), nn.SiLU(), nn.Linear(64, 10))


def _briefly_trained(model, data, steps=20):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(steps):
        idx = torch.arange(i * 50, i * 50 + 50) % len(data.train_x)
        loss = nn.functional.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("kind", ["small_cnn", "smooth_small_cnn", "smooth", "resnet18"])
def test_vision_evaluate_matches_the_reference(kind):
    data = _image_data(*((400, 200) if kind == "resnet18" else (1500, 600)))  # ResNet-18: BatchNorm, slow on CPU
    split = make_forget_split(data.train_y, "random", seed=0, fraction=0.1)
    torch.manual_seed(0)
    model = {"small_cnn": lambda: build_model("small_cnn", 0, in_channels=1, image_size=28, num_classes=10, width=8),
             "smooth_small_cnn": lambda: build_model("small_cnn", 0, in_channels=1, image_size=28, num_classes=10,
                                                     width=8, activation="silu", pool="avg"),
             "smooth": _smooth_cnn,
             "resnet18": lambda: build_model("resnet18", 0, in_channels=1, image_size=28, num_classes=10)}[kind]()
    model = _briefly_trained(model, data, steps=3 if kind == "resnet18" else 20)
    kw = {"seed": 3, "mia_max_samples": 150 if kind == "resnet18" else 300, "retain_max_samples": 700}
    ref = ref_vision_evaluate(model, data, split, **kw)
    new = V.evaluate(model, data, split, **kw)
    assert new == ref  # exact: UA, RA, TA and MIA-Efficacy
    assert 0 < ref["MIA-Efficacy"] < 1 and 0 < ref["TA"] < 1
    for bs in (1024, 37):  # the per-example values behind them, at any batch size
        pred = VM.predict(model, data.test_x, data.test_y, batch_size=bs)
        correct, conf = ref_predict(model, data.test_x, data.test_y)
        np.testing.assert_array_equal(pred.correct, correct)
        np.testing.assert_array_equal(pred.confidence, conf)


def test_fast_average_pooling_is_the_kernel_bit_for_bit():
    from ofmu.vision.models import AvgPool2x2

    g = torch.Generator().manual_seed(1)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 5, 8, 6, generator=g, dtype=dtype) * torch.logspace(-20, 20, 6, dtype=dtype)
        x[0, 0, 0, 0], x[1, 1, 2, 3], x[2, 2, 4, 4] = float("nan"), float("inf"), -float("inf")
        with torch.no_grad():
            torch.testing.assert_close(AvgPool2x2()(x), nn.AvgPool2d(2)(x), rtol=0, atol=0, equal_nan=True)
    odd = torch.randn(2, 3, 7, 7, generator=g)  # odd sizes and autograd: the kernel itself
    with torch.no_grad():
        assert torch.equal(AvgPool2x2()(odd), nn.AvgPool2d(2)(odd))
    y = x.float().requires_grad_()
    AvgPool2x2()(y).sum().backward()
    assert y.grad is not None
    with pytest.raises(ValueError, match="kernel_size"):
        AvgPool2x2(3)


def test_even_batches_cover_the_set_without_a_small_remainder():
    for n, size in [(1, 128), (128, 128), (129, 128), (1000, 128), (26000, 128)]:
        batches = VM.even_batches(n, size)
        assert batches[0][0] == 0 and batches[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))
        sizes = [j - i for i, j in batches]
        assert len(batches) == -(-n // size) and max(sizes) - min(sizes) <= 1 and max(sizes) <= size


def test_svc_predict_gives_libsvm_labels_also_at_the_decision_boundary():
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    members = np.r_[rng.beta(6, 1, 700), np.ones(100)].astype(np.float32)  # many exact 1.0 as from a trained model
    non = rng.beta(3, 1, 800).astype(np.float32)
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(np.r_[members, non].reshape(-1, 1).astype(float),
                                                   np.r_[np.ones(800), np.zeros(800)])
    grid = np.linspace(0, 1, 4001)
    dec = clf.decision_function(grid.reshape(-1, 1))
    # points within a few ulps of each sign change of the decision function: the labels libsvm gives there
    boundary = []
    for i in np.flatnonzero(np.sign(dec[:-1]) != np.sign(dec[1:])):
        lo, hi = grid[i], grid[i + 1]
        for _ in range(80):
            mid = (lo + hi) / 2
            same = np.sign(clf.decision_function([[mid]])[0]) == np.sign(dec[i])
            lo, hi = (mid, hi) if same else (lo, mid)
        boundary += [np.nextafter(lo, -1), lo, hi, np.nextafter(hi, 2)]
    assert boundary, "the fitted SVC should have a decision boundary in [0, 1]"
    x = np.r_[grid, boundary, rng.beta(4, 1, 3000), np.ones(50)]
    np.testing.assert_array_equal(VM.rbf_svc_predict(clf, x), clf.predict(x.reshape(-1, 1)))
    # the vectorized decision values are sklearn's (sign convention included)
    forget = np.r_[rng.beta(5, 1, 900), np.ones(100)].astype(np.float32)
    for seed, cap in [(0, None), (1, 300)]:
        new = VM.svc_mia_efficacy(members, non, forget, seed, cap)
        assert new == ref_svc_mia_efficacy(members, non, forget, seed, cap)


# ============================================================ LLM
SPEC = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 96}
EVAL = {"max_retain": 12, "max_new_tokens": 10, "max_length": 96}


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    from ofmu.llm.corpus import CorpusConfig

    corpus = tmp_path_factory.mktemp("llm_eval") / "corpus"
    S.build_corpus(corpus, CorpusConfig.smoke(), vocab_size=400)
    tok = S.load_corpus_tokenizer(corpus)
    # briefly trained: some greedy answers end at eos after a few tokens, others run to max_new_tokens
    model, _ = S.train_model(corpus, tok, None, train={"epochs": 3, "lr": 1e-2, "batch_size": 32, "max_length": 96},
                             spec=SPEC)
    return corpus, tok, model.eval()


def test_llm_evaluate_and_probes_match_the_reference(llm):
    corpus, tok, model = llm
    n_forget = len(S.split_rows(corpus, "forget10_perturbed"))
    refs = [{"forget_tr": np.linspace(0.2, 1.5, n_forget), "mia_auc": 0.4}]  # FQ and privleak against a retain model
    ref = ref_llm_evaluate(model, corpus, tok, "forget10", references=refs, eval_cfg=EVAL)
    new = S.evaluate(model, corpus, tok, "forget10", references=refs, eval_cfg=EVAL)
    assert_same_values(ref, new)
    gen = [len(g) for name in ("forget", "retain") for g in ref["per_sample"][name]["generated"]]
    assert min(gen) < max(gen), "the greedy answers should differ in length (early eos in some rows)"
    assert_same_values(ref_probe_evaluate(model, corpus, tok, "forget10", eval_cfg={**EVAL, "rouge": False}),
                       S.probe_evaluate(model, corpus, tok, "forget10", eval_cfg={**EVAL, "rouge": False}))
    # the other batch sizes and a split without perturbed answers
    rows = S.split_rows(corpus, "retain_perturbed")[:9]
    for bs, rouge in ((1, False), (4, True)):
        assert_same_values(ref_evaluate_split(model, tok, rows, rouge=rouge, batch_size=bs, max_new_tokens=6),
                           LM.evaluate_split(model, tok, rows, rouge=rouge, batch_size=bs, max_new_tokens=6))


def test_token_nlls_edge_cases_match_the_reference(llm):
    corpus, tok, model = llm
    rows = S.split_rows(corpus, "forget10_perturbed")[:5]
    q = [r["question"] for r in rows]
    a = [r["answer"] for r in rows]
    qs = q + q + q[:2] + [q[0]] * 3 + [q[1]]
    # duplicates, answers that share their first tokens, a blank and a one-letter answer, long ones
    ans = a + [r["perturbed_answer"][0] for r in rows] + a[:2] + ["", "x", rows[0]["answer"] + " and more words"] \
        + [" ".join([rows[1]["answer"]] * 4)]
    p0 = len(encode_prompt(tok, q[0]))
    cases = [(qs, ans, {"batch_size": 64, "max_length": 96}), (qs, ans, {"batch_size": 3, "max_length": 96}),
             (qs, ans, {"batch_size": 2, "max_length": 40}),
             # answers cut to one and two tokens: nothing left after the shared prefix / one token left
             ([q[0]] * 4, ans[:2] + ans[10:12], {"max_length": p0 + 1}), ([q[0]] * 4, ans[:4], {"max_length": p0 + 2})]
    for qs_, ans_, kw in cases:
        r_nll, r_pred = ref_token_nlls(model, tok, qs_, ans_, **kw)
        n_nll, n_pred = LM.token_nlls(model, tok, qs_, ans_, **kw)
        assert len(n_nll) == len(r_nll)
        for i, (x, y) in enumerate(zip(r_nll, n_nll)):
            np.testing.assert_allclose(y, x, rtol=RTOL, atol=0, err_msg=f"pair {i} {kw}")
            np.testing.assert_array_equal(n_pred[i], r_pred[i])
    # a model whose forward has no logits_to_keep (any module returning .logits) scores all positions, same values
    class PlainForward(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    r_nll, _ = ref_token_nlls(PlainForward(model), tok, qs, ans, batch_size=4, max_length=96)
    n_nll, _ = LM.token_nlls(PlainForward(model), tok, qs, ans, batch_size=4, max_length=96)
    for x, y in zip(r_nll, n_nll):
        np.testing.assert_allclose(y, x, rtol=RTOL, atol=0)
    with pytest.raises(ValueError, match="max_length"):
        LM.token_nlls(model, tok, q, a, max_length=8)


def test_the_default_gpt2_activation_is_gpt2s_gelu():
    """GPT2Spec's fused tanh GELU computes transformers' "gelu_new" (GPT-2's own), with exact third derivatives."""
    from transformers.activations import ACT2FN

    from ofmu.llm.models import GPT2Spec

    x = torch.linspace(-8, 8, 2001, dtype=torch.float64, requires_grad=True)
    fused, reference = ACT2FN[GPT2Spec().activation_function], ACT2FN["gelu_new"]
    torch.testing.assert_close(fused(x), reference(x), rtol=0, atol=1e-15)
    d_fused, d_ref = fused(x), reference(x)
    for _ in range(3):  # first, second and third derivatives agree
        d_fused = torch.autograd.grad(d_fused.sum(), x, create_graph=True)[0]
        d_ref = torch.autograd.grad(d_ref.sum(), x, create_graph=True)[0]
        torch.testing.assert_close(d_fused, d_ref, rtol=1e-9, atol=1e-12)


def test_the_comparison_catches_shifted_nlls_and_early_stops(llm, monkeypatch):
    """The oracle is sensitive: an NLL shifted by one token or generation cut short fails it."""
    corpus, tok, model = llm
    rows = S.split_rows(corpus, "forget10_perturbed")[:6]
    ref = ref_evaluate_split(model, tok, rows, max_new_tokens=8)
    assert_same_values(ref, LM.evaluate_split(model, tok, rows, max_new_tokens=8))

    plain = ref_token_nlls

    @torch.no_grad()
    def shifted_token_nlls(model, tokenizer, questions, answers, batch_size=64, max_length=128, device="cpu"):
        # an off-by-one bug: each answer token scored by the logits one position late
        _, preds = plain(model, tokenizer, questions, answers, batch_size, max_length, device)
        batch = QACollator(tokenizer, max_length)([{"question": x, "answer": y} for x, y in zip(questions, answers)])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 1:]
        labels = batch["labels"][:, 1:]
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
        return [nll[b][labels[b] != -100].numpy().astype(float) for b in range(len(questions))], preds

    monkeypatch.setitem(globals(), "ref_token_nlls", shifted_token_nlls)  # what ref_evaluate_split calls
    shifted = ref_evaluate_split(model, tok, rows, max_new_tokens=8)
    monkeypatch.undo()
    with pytest.raises(AssertionError):
        assert_same_values(ref, shifted)
    cut = ref_evaluate_split(model, tok, rows, max_new_tokens=4)  # generation stopped early
    with pytest.raises(AssertionError, match="generated"):
        assert_same_values(ref, cut)
    off = {**ref, "nll": ref["nll"] * (1 + 1e-5)}
    with pytest.raises(AssertionError, match="nll"):
        assert_same_values(ref, off)
