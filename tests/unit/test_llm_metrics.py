"""TOFU / OpenUnlearning metrics against hand computations on tiny cases."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import math

import numpy as np
import pytest
import torch
from torch import nn

from ofmu.llm import metrics as M


def test_probability_and_truth_ratio_by_hand():
    correct = np.array([0.5, 2.0])
    wrong = np.array([[1.0, 3.0], [1.0, 1.0]])
    assert np.allclose(M.probability(correct), [math.exp(-0.5), math.exp(-2.0)])
    # TR = exp(-mean wrong NLL) / exp(-correct NLL): row 0 exp(-2)/exp(-0.5), row 1 exp(-1)/exp(-2)
    tr = M.truth_ratio(correct, wrong)
    assert np.allclose(tr, [math.exp(-1.5), math.e], rtol=1e-8)
    # forget aggregate mean min(TR, 1/TR); retain aggregate mean max(0, 1 - TR)
    assert M.truth_ratio_forget(tr) == pytest.approx((math.exp(-1.5) + 1 / math.e) / 2, rel=1e-8)
    assert M.truth_ratio_true_better(tr) == pytest.approx((1 - math.exp(-1.5) + 0) / 2, rel=1e-8)
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        M.truth_ratio(correct, wrong[0])


def test_normalized_probability_by_hand():
    correct = np.array([np.log(2)])  # P = 1/2
    wrong = np.array([[np.log(4), np.log(4)]])  # P = 1/4 each
    assert M.normalized_probability(correct, wrong) == pytest.approx([0.5])


def test_rouge_l_recall_by_hand():
    # reference 4 tokens, LCS with the prediction "born in paris" = 3 tokens ("born in paris") -> recall 3/4
    r = M.rouge_l_recall(["born in paris", "nothing"], ["she was born in paris"[4:], "a b"])
    assert r[0] == pytest.approx(3 / 4) and r[1] == 0.0


def test_forget_quality_by_hand():
    # fully separated samples of 3 and 3: D = 1, exact two-sided p = 2 / C(6, 3) = 0.1
    fq = M.forget_quality([1, 2, 3], [4, 5, 6])
    assert fq["ks_statistic"] == 1.0 and fq["forget_quality"] == pytest.approx(0.1)
    assert M.forget_quality([1, 2, 3], [1, 2, 3])["forget_quality"] == pytest.approx(1.0)


def test_model_utility_is_the_harmonic_mean_of_nine_numbers():
    values = {k: 0.5 for k in M.MU_KEYS}
    values["wf_tr"] = 1.0
    assert M.model_utility(values) == pytest.approx(9 / (8 * 2 + 1))
    values["ra_rouge"] = 0.0
    assert M.model_utility(values) == 0.0
    with pytest.raises(KeyError, match="retain_prob"):
        M.model_utility({"ra_tr": 1.0})


def test_min_k_mia_auc_and_privleak_by_hand():
    assert M.min_k_score([1, 5, 2, 4, 3], k=0.4) == pytest.approx(4.5)  # top 40% of 5 tokens: 5, 4
    assert M.min_k_score([2.0], k=0.4) == 2.0  # at least one token
    assert M.mia_auc([0.1, 0.2], [0.3, 0.4]) == 1.0  # holdout scores all higher: fully exposed
    # pairs (forget, holdout) with holdout higher: (1,2) (1,4) (3,4) of 4 -> 3/4
    assert M.mia_auc([1, 3], [2, 4]) == pytest.approx(0.75)
    assert M.privleak(0.5, 0.5) == 0.0
    assert M.privleak(1.0, 0.5) == pytest.approx(-100.0)
    assert M.privleak(0.6, 0.4) == pytest.approx(((0.4) - 0.6) / 0.6 * 100)


def test_extraction_strength_by_hand():
    assert M.extraction_strength([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0  # k* = 0
    assert M.extraction_strength([9, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.75)  # k* = 1
    assert M.extraction_strength([1, 2, 3, 9], [1, 2, 3, 4]) == 0.0  # last token wrong: k* = T
    assert M.extraction_strength([1, 9, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.5)


class BigramLM(nn.Module):
    """A fake causal LM whose next-token logits depend only on the current token: known log-probs."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(vocab, vocab, generator=g, dtype=torch.float64))

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"logits": self.table[input_ids]})()


class CharTokenizer:
    """Characters 'a'..'z' and space as ids 2..28; pad 0, eos 1 (also BOS). A text or a list, as HF tokenizers."""

    pad_token_id, eos_token_id, bos_token_id = 0, 1, 1

    def __call__(self, text, add_special_tokens=False):
        if isinstance(text, list):
            return {"input_ids": [[self._id(c) for c in t] for t in text]}
        return {"input_ids": [self._id(c) for c in text]}

    @staticmethod
    def _id(c):
        return 28 if not c.isalpha() else 2 + ord(c.lower()) - ord("a")


def test_answer_nlls_and_truth_ratio_of_a_model_with_known_log_probs():
    tok, model = CharTokenizer(), BigramLM(29)
    logp = torch.log_softmax(model.table.detach(), -1)

    def hand_nll(answer):
        # answer tokens: " " + answer + eos, each predicted from the previous token (the prompt ends ":")
        ids = [tok._id(":")] + [tok._id(c) for c in " " + answer] + [1]
        return float(np.mean([-logp[a, b] for a, b in zip(ids[:-1], ids[1:])]))

    q = ["who", "where"]
    nll = M.mean_nll(model, tok, q, ["ab", "cde"], batch_size=1)
    assert np.allclose(nll, [hand_nll("ab"), hand_nll("cde")], atol=1e-10)
    wrong = M.perturbed_mean_nll(model, tok, q, [["x", "yy"], ["zzz", "q"]])
    assert np.allclose(wrong, [[hand_nll("x"), hand_nll("yy")], [hand_nll("zzz"), hand_nll("q")]], atol=1e-10)
    tr = M.truth_ratio(nll, wrong)
    assert tr[0] == pytest.approx(math.exp(-(hand_nll("x") + hand_nll("yy")) / 2) / math.exp(-hand_nll("ab")))
    with pytest.raises(ValueError, match="fixed K"):
        M.perturbed_mean_nll(model, tok, q, [["x"], ["y", "z"]])


def test_evaluate_split_and_summarize_on_a_tiny_gpt2():
    from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
    from ofmu.llm.models import GPT2Spec, build_gpt2
    from ofmu.llm.tokenizer import train_tokenizer

    c = generate_corpus(CorpusConfig.smoke())
    tok = train_tokenizer(corpus_texts(c), vocab_size=400)
    model = build_gpt2(tok, GPT2Spec(n_layer=1, n_embd=16, n_head=2, n_positions=128), seed=0).eval()
    kw = {"max_new_tokens": 4, "batch_size": 16}
    ev = {name: M.evaluate_split(model, tok, c[split][:6], correct_key=key, **kw)
          for name, split, key in [("forget", "forget10_perturbed", "paraphrased_answer"),
                                   ("retain", "retain_perturbed", "paraphrased_answer"),
                                   ("ra", "real_authors_perturbed", "answer"),
                                   ("wf", "world_facts_perturbed", "answer"),
                                   ("holdout", "holdout10", "paraphrased_answer")]}
    f = ev["forget"]
    assert f["tr"].shape == (6,) and f["wrong_nll"].shape == (6, 5) and len(f["generated"]) == 6
    assert np.allclose(ev["ra"]["correct_nll"], ev["ra"]["nll"])  # RA/WF: the original answer is "correct"
    ref = {"forget_tr": f["tr"], "mia_auc": 0.5}
    s = M.summarize(ev["forget"], ev["retain"], ev["ra"], ev["wf"], holdout=ev["holdout"], reference=ref)
    assert s["forget_quality"] == pytest.approx(1.0)  # identical truth ratios
    assert 0 <= s["model_utility"] <= 1 and set(M.MU_KEYS) <= set(s)
    assert s["forget_truth_ratio"] == pytest.approx(M.truth_ratio_forget(f["tr"]))
    # a row without the wrong answers the others have, or without its paraphrase: named, not a KeyError later
    rows = [dict(r) for r in c["forget10_perturbed"][:3]]
    del rows[1]["perturbed_answer"]
    with pytest.raises(ValueError, match=r"rows \[2\] of the split lack perturbed_answer"):
        M.evaluate_split(model, tok, rows, **kw)
    rows = [dict(r) for r in c["forget10_perturbed"][:3]]
    rows[2]["paraphrased_answer"] = None
    with pytest.raises(ValueError, match=r"rows \[3\] of the split lack 'paraphrased_answer'"):
        M.evaluate_split(model, tok, rows, **kw)


def test_greedy_answers_with_left_padding_match_one_by_one_generation():
    from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
    from ofmu.llm.models import GPT2Spec, build_gpt2
    from ofmu.llm.tokenizer import train_tokenizer

    c = generate_corpus(CorpusConfig.smoke())
    tok = train_tokenizer(corpus_texts(c), vocab_size=400)
    model = build_gpt2(tok, GPT2Spec(n_layer=1, n_embd=16, n_head=2, n_positions=128), seed=1).eval()
    qs = ["Who wrote it?", "Where was the author of a very long book title born in the end?"]
    batched = M.greedy_answers(model, tok, qs, max_new_tokens=6, batch_size=2)
    single = [M.greedy_answers(model, tok, [q], max_new_tokens=6)[0] for q in qs]
    assert batched == single


def test_normalized_probability_survives_underflow():
    """A collapsed model: every option's probability underflows to 0; the ratio is still a softmax, by hand."""
    from ofmu.llm.metrics import normalized_probability

    got = normalized_probability(np.array([1.0, 800.0]), np.array([[2.0, 3.0], [801.0, 802.0]]))
    hand = np.exp(-1) / (np.exp(-1) + np.exp(-2) + np.exp(-3))  # the second row is the first shifted by 799 nats
    np.testing.assert_allclose(got, [hand, hand], rtol=1e-12)
