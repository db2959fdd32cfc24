"""One loader for TOFU-format QA splits (generated corpus or the real locuslab/TOFU) and the QA collator.

Both sources go through ``datasets.load_dataset`` and the same column checks, so the paper tier (real
TOFU from the hub) and the default tier (generated corpus, JSON lines) share one code path:

    load_tofu_split("results/llm/s0/corpus", "forget10_perturbed")   # a local directory of <split>.jsonl
    load_tofu_split("locuslab/TOFU", "forget10_perturbed")        # the hub dataset (needs network)

Training examples are "Question: <q>\\nAnswer: <a><eos>" with labels on the answer tokens only (-100
elsewhere), the usual TOFU fine-tuning loss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ofmu.io import is_missing_local_path

TOFU_HUB_ID = "locuslab/TOFU"
PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
IGNORE_INDEX = -100  # label of tokens that carry no loss (prompt, padding)
REQUIRED_COLUMNS = ("question", "answer")
LOCAL_SUFFIXES = (".jsonl", ".json")


class TofuUnavailableError(RuntimeError):
    """The requested TOFU source cannot be read (offline hub, missing file, wrong columns)."""


def _local_file(directory: Path, split: str) -> Path:
    for suffix in LOCAL_SUFFIXES:
        f = directory / f"{split}{suffix}"
        if f.is_file():
            return f
    available = sorted({p.stem for s in LOCAL_SUFFIXES for p in directory.glob(f"*{s}")})
    raise TofuUnavailableError(
        f"split {split!r} not found in {directory} (looked for {split}.jsonl / {split}.json); "
        f"available splits: {', '.join(available) or 'none'}. Regenerate the corpus "
        f"(ofmu.llm.corpus.write_corpus) or pick one of the available splits"
    )


def load_tofu_split(source: str | os.PathLike, split: str, cache_dir: str | None = None, allow_empty: bool = False):
    """A TOFU-format split as a ``datasets.Dataset``.

    ``source`` is a local directory holding ``<split>.jsonl`` or ``<split>.json`` files (the generated
    corpus, or a local copy of TOFU in the same layout), or a hub dataset id such as ``locuslab/TOFU``
    whose configs are the split names. A local split without rows is an error unless ``allow_empty`` (a
    probe split can be empty in a tiny corpus).
    """
    import datasets

    path = Path(source)
    if is_missing_local_path(source):  # fails now, not at the hub
        raise TofuUnavailableError(f"corpus directory {source} does not exist; the pipeline writes it (rule "
                                   "llm_corpus), or pass a hub dataset id of the form org/name")
    if path.is_dir():
        data_file = _local_file(path, split)
        if not data_file.read_text().strip():
            if allow_empty:  # the json builder cannot infer columns from nothing
                return datasets.Dataset.from_list([])
            raise TofuUnavailableError(f"{data_file} holds no rows, and split {split!r} is needed here; regenerate "
                                       f"the corpus (delete {path} and rerun: rule llm_corpus writes it)")
        if data_file.read_text().lstrip().startswith("{"):  # JSON lines (.jsonl, and TOFU's own .json files)
            _check_json_lines(data_file)
        ds = datasets.load_dataset("json", data_files=str(data_file), split="train", cache_dir=cache_dir)
    elif path.exists():
        raise TofuUnavailableError(f"TOFU source {source} is a file; pass the directory that holds <split>.jsonl")
    else:
        ds = _load_hub(str(source), split, cache_dir)
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise TofuUnavailableError(
            f"split {split!r} of {source} lacks column(s) {missing} (has {ds.column_names}); TOFU-format "
            f"splits need {list(REQUIRED_COLUMNS)} and, for truth ratios, perturbed_answer (a list)"
        )
    return ds


def _check_json_lines(data_file: Path) -> None:
    """Every line of a local split is a JSON object with the required fields: one error naming the file, the
    line and the fix, before the json builder fails on it with its own traceback (or loads a missing field as
    None and a later step fails far from the cause)."""
    import json

    fix = "regenerate the corpus (delete its folder and rerun; ofmu.llm.corpus.write_corpus writes it)"
    for number, line in enumerate(data_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TofuUnavailableError(f"{data_file} line {number} is not JSON ({err.msg}); {fix}") from None
        missing = [c for c in REQUIRED_COLUMNS if not isinstance(row, dict) or row.get(c) is None]
        if missing:
            raise TofuUnavailableError(f"{data_file} line {number} lacks {missing} (TOFU-format rows need "
                                       f"{list(REQUIRED_COLUMNS)}); {fix}")


def _load_hub(repo_id: str, split: str, cache_dir: str | None):
    import datasets

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return datasets.load_dataset(repo_id, split, split="train", cache_dir=cache_dir)
    except Exception as exc:  # datasets raises several types (ConnectionError, DatasetNotFoundError, ...)
        hint = (
            "HF_HUB_OFFLINE=1 is set and the dataset is not in the local Hugging Face cache. Either run "
            f"once with network access (unset HF_HUB_OFFLINE; `python -c \"import datasets; "
            f"datasets.load_dataset('{repo_id}', '{split}')\"` fills the cache), or download the repository "
            f"(`huggingface-cli download {repo_id} --repo-type dataset --local-dir DIR`) and pass a local "
            f"directory of <split>.json files as the source"
            if offline else
            f"check the dataset id and split name (TOFU configs: forget01, forget01_perturbed, retain99, "
            f"retain_perturbed, holdout01, real_authors_perturbed, world_facts_perturbed, full, ...) and "
            f"network access, or pass a local directory of <split>.json files as the source"
        )
        raise TofuUnavailableError(f"cannot load split {split!r} of {repo_id!r}: {exc}. {hint}") from exc


# locuslab/TOFU: 200 fictitious authors x 20 QA; forget01 / 05 / 10 = 2 / 10 / 20 authors (Maini et al., 2024)
TOFU_FORGET_ROWS = {"forget01": 40, "forget05": 200, "forget10": 400}
TOFU_SHARED_SPLITS = ("full", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


def tofu_split_files(forget_splits: Sequence[str]) -> list[str]:
    """The TOFU splits the LLM stage reads for ``forget_splits``: each one's forget, perturbed, retain and holdout
    sets, plus the full set and the four evaluation sets shared by every split."""
    names = list(TOFU_SHARED_SPLITS)
    for split in forget_splits:
        if not split.startswith("forget") or not split[6:].isdigit():
            raise ValueError(f"forget split {split!r} is not of the form forgetNN (TOFU: forget01, forget05, forget10)")
        p = int(split[6:])
        names += [split, f"{split}_perturbed", f"retain{100 - p:02d}", f"holdout{p:02d}"]
    return names


def export_tofu(source: str | os.PathLike, out_dir: str | os.PathLike, forget_splits: Sequence[str]) -> dict[str, int]:
    """Copy the splits the stage reads from a TOFU-format ``source`` (``locuslab/TOFU`` on the hub, or a local folder
    of ``<split>.json`` files in TOFU's layout) into ``out_dir`` as ``<split>.jsonl``, so every later job reads one
    local layout whatever the source; returns the rows per split. Each file is written atomically."""
    import json

    from ofmu.io import atomic_path

    counts = {}
    for name in tofu_split_files(forget_splits):
        rows = load_tofu_split(source, name).to_list()
        with atomic_path(Path(out_dir) / f"{name}.jsonl") as tmp:
            Path(tmp).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        counts[name] = len(rows)
    return counts


def training_split_names(source: str | os.PathLike, forget_split: str | None) -> list[str]:
    """Splits a "full" (``forget_split=None``) or "retain" model is fine-tuned on.

    The generated corpus adds ``knowledge`` (real_authors/world_facts analogs) to both models, standing in
    for the pretraining knowledge a hub model already has; real TOFU has no such split.
    """
    if forget_split is None:
        names = ["full"]
    else:
        if not forget_split.startswith("forget") or not forget_split[6:].isdigit():
            raise ValueError(f"forget split {forget_split!r} is not of the form forgetNN (e.g. forget10)")
        names = [f"retain{100 - int(forget_split[6:]):02d}"]
    path = Path(source)
    if path.is_dir() and any((path / f"knowledge{s}").is_file() for s in LOCAL_SUFFIXES):
        names.append("knowledge")
    return names


def load_training_rows(source: str | os.PathLike, forget_split: str | None) -> list[dict]:
    """Question/answer rows of the full or the retain model's fine-tuning data."""
    rows = []
    for name in training_split_names(source, forget_split):
        ds = load_tofu_split(source, name)
        rows += [{"question": q, "answer": a} for q, a in zip(ds["question"], ds["answer"])]
    return rows


# ----------------------------------------------------------------------------------------------
def _chat(tokenizer) -> dict | None:
    """The chat format of a pretrained model's tokenizer (``ofmu.llm.pretrained``); None for the plain format."""
    return getattr(tokenizer, "ofmu_chat", None)


def chat_messages(question: str, system_prompt: str | None) -> list[dict]:
    return [*([{"role": "system", "content": system_prompt}] if system_prompt is not None else []),
            {"role": "user", "content": question}]


def _answer_end(tokenizer, chat: dict) -> str:
    """What the chat template writes after an assistant turn's content (ChatML: "<|im_end|>", Llama-3: "<|eot_id|>"):
    read off a rendered turn, once per tokenizer; trailing whitespace dropped (generation stops at the token)."""
    if "answer_end" not in chat:
        marker = "@@ofmu-answer@@"
        text = tokenizer.apply_chat_template([*chat_messages("q", chat["system_prompt"]),
                                              {"role": "assistant", "content": marker}], tokenize=False)
        chat["answer_end"] = text[text.index(marker) + len(marker):].rstrip()
    return chat["answer_end"]


def encode_prompts(tokenizer, questions: Sequence[str]) -> list[list[int]]:
    """Token ids of each question's prompt, what generation continues from (one batched tokenizer call): the chat
    template's user turn and assistant header for a pretrained chat model, else "Question: <q>\nAnswer:" after BOS."""
    if not questions:
        return []
    chat = _chat(tokenizer)
    if chat is not None:  # the template writes its own special tokens (BOS, headers) as text
        texts = [tokenizer.apply_chat_template(chat_messages(q, chat["system_prompt"]), add_generation_prompt=True,
                                               tokenize=False) for q in questions]
        return [list(p) for p in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    ids = tokenizer([PROMPT_TEMPLATE.format(question=q) for q in questions], add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return [bos + list(p) for p in ids]


def encode_answers(tokenizer, answers: Sequence[str]) -> list[list[int]]:
    """Token ids of each answer and its end: the chat template's end of turn for a chat model, else " <answer>"
    and EOS (one batched tokenizer call)."""
    if not answers:
        return []
    chat = _chat(tokenizer)
    if chat is not None:
        end = _answer_end(tokenizer, chat)
        return [list(a) for a in tokenizer([a + end for a in answers], add_special_tokens=False)["input_ids"]]
    ids = tokenizer([" " + a for a in answers], add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [list(a) + eos for a in ids]


def encode_prompt(tokenizer, question: str) -> list[int]:
    return encode_prompts(tokenizer, [question])[0]


def join_qa(prompt: list[int], answer: list[int], max_length: int, question: str = "") -> dict[str, list[int]]:
    """Token ids and labels of an encoded prompt + answer; labels are IGNORE_INDEX on the prompt."""
    if len(prompt) >= max_length:
        raise ValueError(f"the prompt of question {question[:60]!r}... has {len(prompt)} tokens, not below "
                         f"max_length={max_length}; raise max_length")
    answer = answer[: max_length - len(prompt)]  # keep the question whole; cut the answer's tail
    return {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer}


def encode_qa(tokenizer, question: str, answer: str, max_length: int = 128) -> dict[str, list[int]]:
    """Token ids and labels of one QA pair; labels are IGNORE_INDEX on the prompt.

    Prompt and answer are tokenized separately so the answer's tokens are the same whatever the question
    (a joint tokenization could merge across the boundary).
    """
    return join_qa(encode_prompt(tokenizer, question), encode_answers(tokenizer, [answer])[0], max_length, question)


def pad_batch(encoded: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad encoded examples into input_ids / attention_mask / labels tensors."""
    if not encoded:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        labels[i, :n] = torch.tensor(e["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class QACollator:
    """Collate rows {question, answer} (dicts or a datasets batch) into a padded LM batch."""

    def __init__(self, tokenizer, max_length: int = 128, question_key: str = "question",
                 answer_key: str = "answer"):
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token = tokenizer.eos_token")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.question_key = question_key
        self.answer_key = answer_key

    def encode(self, questions: Sequence[str], answers: Sequence[str]) -> list[dict[str, list[int]]]:
        return [encode_qa(self.tokenizer, q, a, self.max_length) for q, a in zip(questions, answers)]

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        enc = self.encode([r[self.question_key] for r in rows], [r[self.answer_key] for r in rows])
        return pad_batch(enc, self.tokenizer.pad_token_id)
