"""The LLM stage API end to end on the smoke corpus: build, train, cache, load, unlearn, evaluate, probes,
per-sample costs; the same seed gives the same numbers twice."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # forced: no hub on these machines, fail at once

import math

import numpy as np
import pytest
import torch

from ofmu.llm import api as S
from ofmu.llm.corpus import CorpusConfig

SPEC = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 96}
TRAIN = {"epochs": 3, "lr": 1e-2, "batch_size": 32, "max_length": 96}
EVAL = {"max_retain": 12, "max_new_tokens": 8, "max_length": 96}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm")
    corpus = root / "corpus"
    S.build_corpus(corpus, CorpusConfig.smoke(), vocab_size=400)
    tok = S.load_corpus_tokenizer(corpus)
    full, info = S.train_model(corpus, tok, None, out_dir=root / "full", train=TRAIN, spec=SPEC)
    retain, _ = S.train_model(corpus, tok, "forget10", out_dir=root / "retain", train=TRAIN, spec=SPEC, seed=1)
    return root, corpus, tok, full, info, retain


def test_models_are_cached_and_reloaded(stage):
    root, corpus, tok, full, info, _ = stage
    assert (root / "full" / "model.safetensors").is_file()
    again, info2 = S.train_model(corpus, tok, None, out_dir=root / "full", train=TRAIN, spec=SPEC)
    assert info2["wall_seconds"] == info["wall_seconds"]  # loaded, not retrained
    ids = torch.tensor([[1, 5, 9, 12]])
    assert torch.allclose(full(input_ids=ids).logits, again(input_ids=ids).logits, atol=1e-6)
    # another train config must not silently reuse the cache
    _, info3 = S.train_model(corpus, tok, None, out_dir=root / "full2", train={**TRAIN, "epochs": 1}, spec=SPEC)
    assert info3["key"]["train"]["epochs"] == 1


def _run(stage, method, seed):
    _, corpus, tok, full, _, retain = stage
    ref = S.reference_stats(S.evaluate(retain, corpus, tok, "forget10", eval_cfg=EVAL))
    model = S.copy_model(full)
    res = S.unlearn(model, corpus, tok, method, "forget10", epochs=1, seed=seed, batch_size=8, max_length=96)
    ev = S.evaluate(res.model, corpus, tok, "forget10", references=[ref, ref], eval_cfg=EVAL)
    return res, ev


@pytest.mark.parametrize("method", ["NPO", "OFMU"])
def test_unlearn_and_evaluate_round_trip_is_seeded(stage, method):
    res1, ev1 = _run(stage, method, seed=3)
    res2, ev2 = _run(stage, method, seed=3)
    assert res1.forget_passes > 0 and res1.wall_seconds > 0 and res1.peak_memory_bytes >= 0
    s1, s2 = ev1["summary"], ev2["summary"]
    for key in ("forget_quality", "model_utility", "forget_truth_ratio", "forget_es", "privleak", "mia_auc"):
        assert math.isfinite(s1[key]) and s1[key] == s2[key], key
    assert s1["n_references"] == 2 and s1["forget_quality_min"] == s1["forget_quality_max"]
    assert len(ev1["per_sample"]["forget"]["tr"]) == 12  # 2 forget authors x 6 facts
    np.testing.assert_array_equal(ev1["per_sample"]["retain"]["prob"], ev2["per_sample"]["retain"]["prob"])
    if method == "OFMU":
        assert {"cos", "grad_phi_norm", "rho"} <= set(res1.history[-1])


def test_probes_and_sample_costs(stage):
    _, corpus, tok, full, _, _ = stage
    probes = S.probe_evaluate(full, corpus, tok, "forget10", eval_cfg=EVAL)
    assert {"forget_paraphrase", "retain_paraphrase"} <= set(probes)
    assert all(0 <= v["prob"] <= 1 and v["n"] > 0 for v in probes.values())
    costs = S.sample_costs(full, corpus, tok, "GradDiff", "forget10", steps=2, n_samples=3, utility_rows=8,
                           batch_size=8, max_length=96)
    again = S.sample_costs(full, corpus, tok, "GradDiff", "forget10", steps=2, n_samples=3, utility_rows=8,
                           batch_size=8, max_length=96)
    assert len(costs) == 3 and costs == again
    assert all(c["prob_after"] < c["prob_full"] for c in costs)  # ascent on the one sample lowers it


def test_bad_split_names_the_form():
    with pytest.raises(ValueError, match="forgetNN"):
        S.split_names("forget_ten")
