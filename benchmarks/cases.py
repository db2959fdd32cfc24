"""The real cells the benchmarks measure on: the default tier's vision and LLM setups, built in-process.

``vision_case``: Fashion-MNIST, random 10% forget set (seed 0), the default tier's small CNN trained for
one epoch (the model only has to be a realistic point: the same one for every method compared).
``llm_case``: the default tier's corpus (40 authors x 8 facts), tokenizer and GPT-2, trained for a few
epochs, forget10. Both read the default tier's config, so a change there is what is measured.
Trained models are cached under ``cache_dir`` (safetensors), so a second run starts at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

os.environ["HF_HUB_OFFLINE"] = "1"  # offline machines: never wait for a hub time-out

ROOT = Path(__file__).resolve().parents[1]


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@dataclass
class Case:
    domain: str
    model: Any
    loaders: Any  # callable seed -> (forget loader, retain loader)
    task: Any
    batch_size: int


def vision_case(cache_dir: Path, epochs: float = 1.0) -> Case:
    from ofmu.vision import api
    from ofmu.vision.models import load_checkpoint, save_checkpoint

    cfg = default_config()["vision"]
    data = api.load_data("fashion_mnist", root=cfg.get("data_root"))
    split = api.forget_split(data, "random", 0, fraction=cfg["forget_fraction"])
    path = cache_dir / f"vision_small_cnn_{'_'.join(f'{k}{v}' for k, v in sorted(cfg['model_kwargs'].items()))}.safetensors"
    model = api.new_model(data, cfg["model"], 0, **cfg["model_kwargs"])
    if path.is_file():
        load_checkpoint(model, path)
    else:
        model = api.train_original(data, cfg["model"], 0, epochs=epochs, lr=cfg["train"]["lr"],
                                   batch_size=cfg["train"]["batch_size"], model_kwargs=cfg["model_kwargs"]).model
        save_checkpoint(model, path)
    batch = cfg["unlearn"]["batch_size"]
    return Case("vision", model, lambda seed: api.make_loaders(data, split, batch, seed), api.task_for(data), batch)


def llm_case(cache_dir: Path, epochs: int = 5, split: str = "forget10") -> Case:
    from ofmu.llm import api
    from ofmu.llm.corpus import CorpusConfig
    from ofmu.llm.unlearn import LanguageModelTask
    from ofmu.seeds import replicate_model_seed

    cfg = default_config()["llm"]
    corpus = cache_dir / "llm_corpus"
    if not (corpus / "tokenizer").exists():
        # the selection replicate's corpus and full-model seed (as the pipeline's), trained for fewer epochs
        api.build_corpus(corpus, CorpusConfig.from_dict({**cfg["corpus"], "seed": cfg["selection_seed"]}),
                         vocab_size=cfg["vocab_size"])
    tok = api.load_corpus_tokenizer(corpus)
    model, _ = api.train_model(corpus, tok, None, out_dir=cache_dir / "llm_full",
                               train={**cfg["train"], "epochs": epochs}, spec=cfg["model"],
                               seed=replicate_model_seed(cfg["selection_seed"], cfg["model_seed"]))
    batch = cfg["unlearn"]["batch_size"]
    return Case("llm", model.train(), lambda seed: api.make_loaders(corpus, tok, split, batch, seed),
                LanguageModelTask(), batch)


CASES = {"vision": vision_case, "llm": llm_case}
