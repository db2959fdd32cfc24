"""Method settings: one YAML file per registered method, ``config/methods/<Method>.yaml``, the only place
a method's values are written (each with its source or reason as a comment).

A file holds
    domains:  [vision, llm]   the stages the method runs in
    defaults: {key: value}    every setting the method accepts, with its value
    vision:   {key: value}    optional: values that differ in the vision stage
    llm:      {key: value}    optional: values that differ in the LLM stage
The keys a method accepts are declared by its class (``Method.keys``); a file that misses one or adds an
unknown one is an error naming the file and the key. The directory is ``config/methods`` of this
repository, or ``$OFMU_METHODS_DIR`` when set (a tier or a user may keep its own copies there).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

DOMAINS = ("vision", "llm")
FILE_KEYS = ("domains", "defaults", *DOMAINS)


class SettingsError(ValueError):
    """A method file, a method name or a setting key that cannot be used; the message names the fix."""


def methods_dir(directory: str | os.PathLike | None = None) -> Path:
    if directory is not None:
        return Path(directory)
    env = os.environ.get("OFMU_METHODS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "config" / "methods"


def method_class(name: str):
    """The registered class of ``name``; the LLM-only methods register on first need (they import transformers)."""
    from ofmu.registry import METHODS
    from ofmu.unlearning import methods  # noqa: F401  (registers the shared methods)

    if name not in METHODS:
        from ofmu.llm import unlearn  # noqa: F401  (registers NPO, SimNPO, IdkDPO, RMU)
    return METHODS.get(name)


def registered_methods() -> list[str]:
    from ofmu.llm import unlearn  # noqa: F401
    from ofmu.registry import METHODS
    from ofmu.unlearning import methods  # noqa: F401

    return METHODS.names()


@functools.lru_cache(maxsize=None)
def _read(path: str, mtime: float) -> dict:
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise SettingsError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(spec, dict):
        raise SettingsError(f"{path} must be a mapping with keys {list(FILE_KEYS)}")
    unknown = sorted(set(spec) - set(FILE_KEYS))
    if unknown:
        raise SettingsError(f"{path}: unknown top-level key(s) {unknown}; valid keys: {list(FILE_KEYS)}")
    domains = spec.get("domains")
    if not isinstance(domains, list) or not domains or not set(domains) <= set(DOMAINS):
        raise SettingsError(f"{path}: 'domains' must be a non-empty list drawn from {list(DOMAINS)}, got {domains!r}")
    for block in ("defaults", *DOMAINS):
        if not isinstance(spec.get(block) or {}, dict):
            raise SettingsError(f"{path}: '{block}' must be a mapping of setting -> value")
    return spec


def method_spec(name: str, directory: str | os.PathLike | None = None) -> dict:
    """The parsed, structurally checked file of method ``name``."""
    path = methods_dir(directory) / f"{name}.yaml"
    if not path.is_file():
        raise SettingsError(f"no settings file for method {name!r}: expected {path} (one file per registered "
                            f"method; copy a neighbour's and edit it)")
    return _read(str(path), path.stat().st_mtime)


def check_keys(name: str, values: dict, where: str, complete: bool = True) -> None:
    """Every key ``values`` has is one the method accepts and, with ``complete``, every accepted key has a value."""
    accepted = method_class(name).keys
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {unknown} for method {name!r}; valid: {sorted(accepted)}")
    missing = sorted(set(accepted) - set(values)) if complete else []
    if missing:
        raise SettingsError(f"{where}: method {name!r} has no value for {missing}; add them to its 'defaults'")


def _kind(value: Any) -> str | None:
    """The kind a setting's value must keep when it is replaced: bool, number or text (None: unchecked)."""
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return None if value == "auto" else "text"  # "auto" stands for a number the class computes
    return None


def check_kinds(name: str, defaults: dict, values: dict, where: str) -> None:
    """A value that replaces a default keeps its kind: ``beta: true`` or ``lr: 1e-4`` (which YAML reads as
    text) is an error naming the key, not a run with beta = 1 or a TypeError inside a job."""
    for key, value in values.items():
        kind = _kind(defaults.get(key))
        if kind is not None and value is not None and _kind(value) != kind:
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if kind == "a number" and isinstance(value, str) else ""
            raise SettingsError(f"{where}: setting {key!r} of method {name!r} must be {kind} like its default "
                                f"{defaults[key]!r}, got {value!r}{hint}")


def method_settings(name: str, domain: str | None = None, overrides: dict | None = None,
                    directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every setting of ``name``: the file's defaults, its ``domain`` block, then ``overrides``."""
    method_class(name)  # an unknown name fails here, listing the registered methods
    spec = method_spec(name, directory)
    where = str(methods_dir(directory) / f"{name}.yaml")
    if domain is not None and domain not in spec["domains"]:
        raise SettingsError(f"method {name!r} does not run in the {domain} stage ({where} lists domains "
                            f"{spec['domains']}); remove it from {domain}.methods")
    for block in ("defaults", *DOMAINS):  # every block, not only the one in use: a typo anywhere is named
        check_keys(name, spec.get(block) or {}, f"{where} ('{block}' block)", complete=False)
    defaults = spec.get("defaults") or {}
    block = (spec.get(domain) or {}) if domain else {}
    check_kinds(name, defaults, block, f"{where} ('{domain}' block)")
    check_kinds(name, defaults, overrides or {}, f"settings of {name!r}")
    values = {**defaults, **block}
    check_keys(name, values, where)
    values.update(overrides or {})
    check_keys(name, values, f"settings of {name!r}")
    return values
