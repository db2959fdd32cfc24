"""Atomic result writing and provenance: nothing half-written is ever left at a result path."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; results are meant to be shared like any other file (umask applies)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv_atomic(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def is_missing_local_path(name: str | os.PathLike) -> bool:
    """``name`` is written as a local path ("/...", "./...", "~...", or with 2+ folders), not as a hub id
    ("org/name" or "name"), and no such folder exists: a loader fails at once instead of asking the hub."""
    name = str(name)
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") >= 2 or (os.sep != "/" and os.sep in name)
    return looks_local and not Path(name).is_dir()


def code_version() -> str:
    """The git commit of the code (with '+dirty' when the work tree differs), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # the pipeline's own outputs (figures/, paper_tables/) are tracked and rewritten by every run:
        # they do not make the code dirty
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!figures", ":!paper_tables"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def config_hash(config: Any) -> str:
    """A short stable hash of a JSON-serializable config."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def provenance(config: Any, seed: int | list[int] | None = None) -> dict:
    """The sidecar every result carries: seed, config (and its hash), code version, library versions."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "seed": seed,
        "config": config,
        "config_hash": config_hash(config),
        "code_version": code_version(),
        "python": platform.python_version(),
        "versions": {name: installed(name) for name in ("torch", "torchvision", "transformers", "numpy", "cvxpy")},
    }
