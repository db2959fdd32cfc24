"""The LLM stage as a ``Domain`` of the one cell runner, and its file-level entry points.

    corpus_files        corpus + tokenizer directory of one replicate (corpus seed = the replicate's seed)
    train_model_files   the full model or a retain-only model of a replicate (save_pretrained, safetensors)
    reference_files     a replicate's retain-model references of one split (forget truth ratios, MIA AUC) for FQ
    LLMDomain           one forget split of one replicate: start model (Finetuned), loaders, TOFU evaluation with per-sample
                        values and hard probes, references (Finetuned, Retain)
    run_sample_costs    Figure 1 analog for one method (difficulty vs utility loss per forget sample)

``cfg`` is the part of the stage config a job uses (device, eval, train, model, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ofmu.io import write_csv_atomic, write_json_atomic
from ofmu.llm import api as S
from ofmu.llm.unlearn import LanguageModelTask
from ofmu.seeds import replicate_model_seed
from ofmu.tables import Column, fmt_median_range, summary_table
from ofmu.unlearning.cells import Domain, Evaluation


def corpus_files(cfg: dict, out_dir, seed: int) -> dict:
    """The corpus of replicate ``seed``: other authors and facts for every seed (``llm.corpus.seed`` is ignored), or
    with ``llm.dataset`` (real TOFU) the same data for every seed; its tokenizer is trained on it, or with a pretrained
    ``llm.model`` the model's own."""
    return S.build_corpus(out_dir, {**(cfg.get("corpus") or {}), "seed": int(seed)}, vocab_size=cfg.get("vocab_size", 1024),
                          model=cfg.get("model"), dataset=cfg.get("dataset"), splits=cfg.get("splits") or ())


def train_model_files(cfg: dict, corpus_dir, out_dir, split: str | None, replicate: int, model: int) -> dict:
    """Full model (``split=None``) or the retain-only model of ``split``, number ``model`` of replicate
    ``replicate`` (training seed: ``ofmu.seeds.replicate_model_seed``); cached in ``out_dir``."""
    tok = S.load_corpus_tokenizer(corpus_dir)
    _, info = S.train_model(corpus_dir, tok, split, out_dir=out_dir, train=cfg["train"], spec=cfg["model"],
                            seed=replicate_model_seed(replicate, model), device=cfg["device"])
    return {k: v for k, v in info.items() if k != "history"}


def reference_files(cfg: dict, corpus_dir, split: str, retain_dirs: list, out_json) -> None:
    """Forget truth ratios and MIA AUC of each retain-only model of ``split`` (FQ / privleak references)."""
    tok = S.load_corpus_tokenizer(corpus_dir)
    refs = []
    for path in retain_dirs:
        model = S.load_causal_lm(path, device=cfg["device"])
        stats = S.reference_stats(S.evaluate(model, corpus_dir, tok, split, eval_cfg=_eval_settings(cfg, rouge=False),
                                             device=cfg["device"]))
        refs.append({"model": str(path), "forget_tr": stats["forget_tr"].tolist(), "mia_auc": stats["mia_auc"]})
    write_json_atomic(out_json, {"split": split, "references": refs})


def _eval_settings(cfg: dict, rouge: bool = True) -> dict:
    return {**cfg["eval"], "rouge": rouge and cfg["eval"].get("rouge", True)}


def _load_refs(path) -> list[dict]:
    refs = json.loads(Path(path).read_text())["references"]
    return [{"forget_tr": np.asarray(r["forget_tr"]), "mia_auc": r["mia_auc"], "model": r["model"]} for r in refs]


class LLMDomain(Domain):
    """One forget split of one replicate's corpus (``seed``); every run starts from its full ("Finetuned") model."""

    name = "llm"
    cell_keys = ("split",)
    metric_columns = ("forget_quality", "model_utility", "forget_truth_ratio")
    tables = ("samples", "probes", "attacks")  # attacks: only with llm.attacks (ofmu.llm.attacks)

    def __init__(self, cfg: dict, corpus_dir, split: str, full_dir, refs_json, retain_dirs=(), *, seed: int):
        self.cfg, self.corpus_dir, self.split, self.seed = cfg, Path(corpus_dir), split, int(seed)
        self.device = cfg["device"]
        self.tokenizer = S.load_corpus_tokenizer(corpus_dir)
        self.full = S.load_start_model(full_dir, cfg.get("model"), device=self.device)
        self.refs = _load_refs(refs_json)
        self.retain_dirs = [Path(p) for p in retain_dirs]

    @classmethod
    def from_files(cls, cfg: dict, cell: dict, seed: int, inputs: dict) -> "LLMDomain":
        return cls(cfg, Path(inputs["meta"]).parent, cell["split"], Path(inputs["full"]).parent, inputs["refs"],
                   [Path(p).parent for p in inputs.get("retain", [])], seed=seed)

    def cell(self):
        return {"split": self.split}

    def start_model(self):
        return self.full

    def task(self):
        return LanguageModelTask()

    def loaders(self, seed, batch_size):
        return S.make_loaders(self.corpus_dir, self.tokenizer, self.split, batch_size, seed)

    def evaluate(self, model, fq_references=None, detail=True):
        """TOFU metrics; with ``detail``, the per-sample values and the hard probes too (the probes cost
        about as much as the rest: a sweep's checkpoints skip them)."""
        refs = self.refs if fq_references is None else fq_references
        ev = S.evaluate(model, self.corpus_dir, self.tokenizer, self.split, references=refs,
                        eval_cfg=_eval_settings(self.cfg), device=self.device)
        if not detail:
            return Evaluation(ev["summary"])
        forget = ev["per_sample"]["forget"]
        samples = [{"row": i, "truth_ratio": float(forget["tr"][i]), "prob": float(forget["prob"][i])}
                   for i in range(len(forget["tr"]))]
        # probes: truth ratio and probability only (greedy decoding would double the cost of a run)
        probes = [{"probe": probe, **values} for probe, values in S.probe_evaluate(
            model, self.corpus_dir, self.tokenizer, self.split, eval_cfg=_eval_settings(self.cfg, rouge=False),
            device=self.device).items()]
        return Evaluation(ev["summary"], {"samples": samples, "probes": probes, "attacks": self._attacks(model, refs)})

    def _attacks(self, model, refs) -> list[dict]:
        """The relearning and quantization attacks on ``model`` (llm.attacks; none when it is absent), scored
        against the same FQ references as its row; the quantized models also with their model utility."""
        if not self.cfg.get("attacks"):
            return []
        from ofmu.llm.attacks import AttackConfig, attack

        forget_name, retain_name, _ = S.split_names(self.split)

        def utility(quantized):
            summary = S.evaluate(quantized, self.corpus_dir, self.tokenizer, self.split, eval_cfg=_eval_settings(self.cfg),
                                 device=self.device)["summary"]
            return {"model_utility": summary["model_utility"]}

        return attack(model, self.tokenizer, S.split_rows(self.corpus_dir, forget_name + "_perturbed"),
                      S.split_rows(self.corpus_dir, retain_name), refs, AttackConfig.from_dict(self.cfg["attacks"]),
                      seed=self.seed, evaluate_full=utility, device=self.device)

    def references(self):
        if not self.retain_dirs:
            raise ValueError("the reference rows need the retain-only models (inputs['retain'])")
        retain = S.load_causal_lm(self.retain_dirs[0], device=self.device)
        # Retain is scored against the OTHER retain-only models (leave-one-out), else its FQ is trivially 1
        others = [r for r in self.refs if Path(r["model"]) != self.retain_dirs[0]] or self.refs
        # both rows carry the replicate's seed: a method's row of seed s is paired with the references of seed s
        return [{"label": "Finetuned", "model": self.full, "seed": self.seed},
                {"label": "Retain", "model": retain, "seed": self.seed,
                 "evaluate": {"fq_references": others}}]


DOMAIN = LLMDomain


def run_sample_costs(cfg: dict, corpus_dir, full_dir, method: str, settings: dict, out_csv, seed: int) -> pd.DataFrame:
    """Figure 1 analog for one method on replicate ``seed``: per forget sample, difficulty and the utility cost of
    forgetting it alone."""
    sc = cfg["sample_costs"]
    tok = S.load_corpus_tokenizer(corpus_dir)
    full = S.load_causal_lm(full_dir, device=cfg["device"])
    rows = S.sample_costs(full, corpus_dir, tok, method, sc["split"], settings, steps=sc["steps"],
                          n_samples=sc["n_samples"], seed=seed, batch_size=cfg["batch_size"], device=cfg["device"])
    frame = pd.DataFrame(rows)
    write_csv_atomic(out_csv, frame)
    return frame


def _split_order(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["split"].unique(), key=lambda s: int(s.replace("forget", "")))


TOFU_COLUMNS = [Column("forget_quality", "FQ median [range]", fmt_median_range), Column("model_utility", "MU"),
                Column("forget_truth_ratio", "FTR")]
PROBE_COLUMNS = [Column("forget_truth_ratio", "FTR"), Column("prob", "prob")]


def tofu_table(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Table 1 analog: one row per label in ``order``; per split FQ (median [range] over seeds: a p-value), MU and
    FTR (mean ± std), seeds."""
    return summary_table(frame, ["label"], TOFU_COLUMNS, order, spread="split", spread_order=_split_order(frame))


def probe_table(probes: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Hard in-scope probes on the forget facts: truth-ratio aggregate and answer probability, per probe."""
    forget_side = probes[probes["probe"].str.startswith("forget_")]
    forget_side = forget_side.assign(probe=forget_side["probe"].str.replace("forget_", "", regex=False))
    return summary_table(forget_side, ["label"], PROBE_COLUMNS, order, spread="probe")
