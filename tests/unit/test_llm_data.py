"""One loader for the generated corpus and TOFU-format data; QA collation with answer-only labels."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # set before datasets is imported: a hub call must fail at once

import json

import pytest
import torch

from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus, write_corpus
from ofmu.llm.data import (
    IGNORE_INDEX, QACollator, TofuUnavailableError, encode_qa, load_tofu_split, load_training_rows,
    training_split_names,
)
from ofmu.llm.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(corpus_texts(generate_corpus(CorpusConfig.smoke())), vocab_size=400)


@pytest.fixture
def tofu_dir(tmp_path):
    """A tiny local dataset in real TOFU's layout and columns (<config>.json, JSON lines)."""
    rows = [
        {"question": "Who is this celebrated author?", "answer": "The author is Basil Mahfouz Al-Kuwaiti.",
         "paraphrased_answer": "Basil Mahfouz Al-Kuwaiti is the author.",
         "perturbed_answer": ["The author is Jon Doe.", "The author is Ann Lee.", "The author is Bo Li."],
         "paraphrased_question": "Which author is this?"},
        {"question": "Where was he born?", "answer": "He was born in Kuwait City.",
         "paraphrased_answer": "Kuwait City is his birthplace.",
         "perturbed_answer": ["He was born in Oslo.", "He was born in Lima.", "He was born in Rome."],
         "paraphrased_question": "What is his birthplace?"},
    ]
    with open(tmp_path / "forget01_perturbed.json", "w") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    with open(tmp_path / "retain99.json", "w") as fh:
        fh.write(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    with open(tmp_path / "bad.json", "w") as fh:
        fh.write(json.dumps({"prompt": "Q?"}) + "\n")
    return tmp_path


def test_tofu_format_directory_loads_through_the_shared_path(tofu_dir):
    ds = load_tofu_split(tofu_dir, "forget01_perturbed")
    assert ds.num_rows == 2 and ds[1]["perturbed_answer"][2] == "He was born in Rome."
    assert training_split_names(tofu_dir, "forget01") == ["retain99"]  # real TOFU: no knowledge split
    assert load_training_rows(tofu_dir, "forget01") == [{"question": "Q?", "answer": "A."}]


def test_generated_corpus_loads_through_the_same_path(tmp_path):
    write_corpus(tmp_path, CorpusConfig.smoke())
    ds = load_tofu_split(tmp_path, "forget10_perturbed")
    assert {"question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question"} <= set(ds.column_names)
    assert training_split_names(tmp_path, None) == ["full", "knowledge"]
    assert training_split_names(tmp_path, "forget05") == ["retain95", "knowledge"]
    full = load_training_rows(tmp_path, None)
    assert len(full) == load_tofu_split(tmp_path, "full").num_rows + load_tofu_split(tmp_path, "knowledge").num_rows


def test_loader_errors_name_the_fix(tofu_dir):
    with pytest.raises(TofuUnavailableError, match="available splits: bad, forget01_perturbed, retain99"):
        load_tofu_split(tofu_dir, "forget05")
    with pytest.raises(TofuUnavailableError, match=r"bad.json line 1 lacks \['question', 'answer'\].*regenerate"):
        load_tofu_split(tofu_dir, "bad")
    (tofu_dir / "broken.jsonl").write_text('{"question": "Q?", "answer": "A."}\n{"question": "Q2?", "ans')
    with pytest.raises(TofuUnavailableError, match=r"broken.jsonl line 2 is not JSON .*regenerate the corpus"):
        load_tofu_split(tofu_dir, "broken")
    (tofu_dir / "partial.jsonl").write_text('{"question": "Q?", "answer": "A."}\n{"question": "Q2?"}\n')
    with pytest.raises(TofuUnavailableError, match=r"partial.jsonl line 2 lacks \['answer'\]"):
        load_tofu_split(tofu_dir, "partial")
    with pytest.raises(ValueError, match="forgetNN"):
        training_split_names(tofu_dir, "retain90")
    (tofu_dir / "retain90.jsonl").write_text("\n")  # emptied (a newline only): a split a stage needs
    with pytest.raises(TofuUnavailableError, match=r"retain90.jsonl holds no rows.*regenerate the corpus"):
        load_tofu_split(tofu_dir, "retain90")
    assert load_tofu_split(tofu_dir, "retain90", allow_empty=True).num_rows == 0  # a probe split may be empty
    with pytest.raises(TofuUnavailableError, match="corpus directory results/llm/missing_corpus does not exist"):
        load_tofu_split("results/llm/missing_corpus", "forget10")  # a path: never sent to the hub


def test_hub_source_offline_gives_one_clear_error(monkeypatch):
    # the libraries read HF_HUB_OFFLINE at import; if another test imported them first, force it here too
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(TofuUnavailableError, match="HF_HUB_OFFLINE=1 is set.*huggingface-cli download locuslab/TOFU"):
        load_tofu_split("locuslab/TOFU", "forget01")


def test_encode_qa_labels_only_the_answer(tokenizer):
    enc = encode_qa(tokenizer, "Where was Ana born?", "Ana was born in Lima.")
    labels = enc["labels"]
    n_prompt = labels.count(IGNORE_INDEX)
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt and IGNORE_INDEX not in labels[n_prompt:]
    assert enc["input_ids"][0] == tokenizer.bos_token_id and labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(enc["input_ids"][:n_prompt]).endswith("Question: Where was Ana born?\nAnswer:")
    assert tokenizer.decode(labels[n_prompt:-1]) == " Ana was born in Lima."
    short = encode_qa(tokenizer, "Where was Ana born?", "Ana was born in Lima.", max_length=n_prompt + 2)
    assert len(short["input_ids"]) == n_prompt + 2  # the answer is cut, the question kept
    with pytest.raises(ValueError, match="raise max_length"):
        encode_qa(tokenizer, "Where was Ana born?", "x", max_length=4)


def test_collator_pads_right_and_masks_padding(tokenizer):
    batch = QACollator(tokenizer)([{"question": "Q?", "answer": "A long answer here."},
                                   {"question": "Q?", "answer": "Short."}])
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape == mask.shape == labels.shape and ids.shape[0] == 2
    n = int(mask[1].sum())
    assert torch.all(ids[1, n:] == tokenizer.pad_token_id) and torch.all(labels[1, n:] == IGNORE_INDEX)
    assert int(mask[0].sum()) == ids.shape[1]
