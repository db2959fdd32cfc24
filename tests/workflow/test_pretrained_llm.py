"""The paper tier's LLM path end to end, at test size: a pretrained chat model (a tiny random-weight Llama in a
save_pretrained folder) fine-tuned and unlearned on a TOFU-format dataset in a local folder (written here in
locuslab/TOFU's layout), with the same rules, selection, tables and attacks as every tier."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake_runs import SMOKE, snakemake
from tiny_llama import write_tiny_llama

from ofmu.llm.corpus import CorpusConfig, corpus_texts, generate_corpus
from ofmu.llm.data import tofu_split_files

TOFU_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer")


def write_tofu_folder(folder: Path, splits=("forget10",)) -> dict[str, int]:
    """A TOFU-format dataset: one <split>.json (JSON lines) per split the stage reads, TOFU's columns only, from a
    small generated corpus (20 authors, so forget10 = 2 authors)."""
    corpus = generate_corpus(CorpusConfig.smoke())
    folder.mkdir(parents=True)
    counts = {}
    for name in tofu_split_files(splits):
        rows = [{k: r[k] for k in TOFU_COLUMNS if k in r} for r in corpus[name]]
        (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        counts[name] = len(rows)
    return counts


@pytest.mark.slow
def test_a_pretrained_llama_on_a_local_tofu_dataset_runs_the_llm_stage_end_to_end(tmp_path):
    counts = write_tofu_folder(tmp_path / "tofu")
    llama = write_tiny_llama(tmp_path / "llama", corpus_texts(generate_corpus(CorpusConfig.smoke())))
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["stages"] = ["llm"]
    llm = cfg["llm"]
    for key in ("corpus", "vocab_size", "sample_costs", "variants", "fidelity_iterations"):
        llm.pop(key, None)
    # the pretrained tier's means: the top 2 blocks trained, the frozen bottom cached (ofmu.llm.frozen)
    llm.update(dataset=str(tmp_path / "tofu"), model={"pretrained": str(llama), "trainable_blocks": 2, "frozen_cache": True},
               methods=["GA", "GradDiff", "OFMU"], train={"epochs": 2, "lr": 3.0e-3, "batch_size": 16})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    work.mkdir()
    out = snakemake(work, config=tmp_path / "cfg.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # every replicate's corpus is the TOFU folder's splits, copied; its tokenizer the model's, with its chat format
    for seed in [llm["selection_seed"], *llm["seeds"]]:
        corpus = work / "results" / "llm" / f"s{seed}" / "corpus"
        assert json.loads((corpus / "corpus.json").read_text())["splits"] == counts
        assert json.loads((corpus / "tokenizer" / "ofmu_chat_format.json").read_text())["system_prompt"] is None
        assert not (corpus / "knowledge.jsonl").exists()
    tofu = pd.read_csv(work / "paper_tables" / "tab4_llm_tofu.csv")
    assert list(tofu["label"]) == ["Finetuned", "Retain", "GA", "GradDiff", "OFMU"]
    attacks = pd.read_csv(work / "paper_tables" / "data" / "tab12_llm_attacks.rows.csv")
    assert set(attacks["label"]) == {"Finetuned", "Retain", "GA", "GradDiff", "OFMU"}
    assert set(attacks["attack"]) == {"relearn", "quantize"}
