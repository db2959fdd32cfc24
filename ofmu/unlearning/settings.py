"""Method settings: one YAML file per registered method, ``config/methods/<Method>.yaml``, the only place
a method's values are written (each with its source or reason as a comment).

A file holds
    domains:  [vision, llm]   the stages the method runs in
    defaults: {key: value}    every setting the method accepts, with its value
    vision:   {key: value}    optional: values that differ in the vision stage
    llm:      {key: value}    optional: values that differ in the LLM stage
    sweep:    {vision: {key: [values]}, llm: {...}}
                              optional: the grid the selection seed runs per stage (every combination;
                              ``a+b: [values]`` ties two settings to one value); a stage's ``sweep:
                              {points: N, seed: s}`` runs a seeded sample of N of them (``sample_points``)
    sensitivity: {key: [values]}
                              optional: one-at-a-time variations around the selected setting (ablations)
The keys a method accepts are declared by its class (``Method.keys``); a file that misses one or adds an
unknown one is an error naming the file and the key. The directory is ``config/methods`` of this
repository, or ``$OFMU_METHODS_DIR`` when set (a tier or a user may keep its own copies there).
"""

from __future__ import annotations

import functools
import itertools
import os
from pathlib import Path
from typing import Any

import yaml

DOMAINS = ("vision", "llm")
FILE_KEYS = ("domains", "defaults", *DOMAINS, "sweep", "sensitivity")


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
    for block in ("defaults", *DOMAINS, "sweep", "sensitivity"):
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


def _grid_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _checked_grid(name: str, grid: Any, defaults: dict, where: str) -> dict[str, list]:
    """A grid {key or "a+b": [values]}: every key accepted, every list non-empty, values of the default's
    kind, learning rates > 0."""
    if not isinstance(grid, dict):
        raise SettingsError(f"{where}: a grid must be a mapping of setting -> list of values, got {grid!r}")
    for key, values in grid.items():
        parts = key.split("+")
        check_keys(name, dict.fromkeys(parts), f"{where}.{key}", complete=False)
        if not isinstance(values, list) or not values:
            raise SettingsError(f"{where}.{key}: the grid is empty or not a list ({values!r}); give at least one value")
        for part in parts:
            for v in values:
                check_kinds(name, defaults, {part: v}, f"{where}.{key}")
                if part.endswith("lr") and not (isinstance(v, (int, float)) and v > 0):
                    raise SettingsError(f"{where}.{key}: learning rate {v!r} is not positive; every rate of a grid must be > 0")
    return grid


def method_grid(name: str, domain: str, directory: str | os.PathLike | None = None) -> dict[str, list]:
    """The sweep grid of ``name`` in ``domain`` ({} when the file has none: the defaults are the only point)."""
    spec = method_spec(name, directory)
    where = f"{methods_dir(directory) / f'{name}.yaml'} (sweep.{domain})"
    sweep = spec.get("sweep") or {}
    unknown = sorted(set(sweep) - set(DOMAINS))
    if unknown:
        raise SettingsError(f"{where}: unknown stage(s) {unknown} under 'sweep'; valid: {list(DOMAINS)}")
    return _checked_grid(name, sweep.get(domain) or {}, spec.get("defaults") or {}, where)


def _coarse(values: list, limit: int | None) -> list:
    if limit is None or len(values) <= limit:
        return values
    if limit == 1:
        return values[:1]
    return [values[round(i * (len(values) - 1) / (limit - 1))] for i in range(limit)]


def sample_points(grid: dict[str, list], points: int, seed: int, where: str) -> list[tuple]:
    """``points`` distinct combinations of ``grid`` (key -> values), in the grid's product order: a discrete
    Latin hypercube, i.e. per key a column in which every value appears ``points // len(values)`` or one more
    times, shuffled independently (seeded), so every value of every key is tried (the edges of every range
    included: tab8's "at a grid edge" stays meaningful) and equally often. The whole product when it has no
    more than ``points`` combinations."""
    import numpy as np

    combos = list(itertools.product(*grid.values()))
    if len(combos) <= points:
        return combos
    required = max(len(values) for values in grid.values())
    if points < required:
        key = max(grid, key=lambda k: len(grid[k]))
        raise SettingsError(f"{where}: a sample of {points} grid points cannot try every value of {key!r} "
                            f"({required} values); the sampling budget must be >= {required}: raise the stage's "
                            f"sweep.points or give {key!r} fewer values")
    rng = np.random.default_rng(seed)
    index = {combo: i for i, combo in enumerate(combos)}

    def balanced(rows) -> bool:
        return all(set(np.bincount([values.index(r[k]) for r in rows], minlength=len(values)))
                   <= {points // len(values), points // len(values) + 1} for k, values in enumerate(grid.values()))

    for _ in range(1000):
        columns = [rng.permutation(np.resize(np.arange(len(values)), points)) for values in grid.values()]
        chosen = {tuple(values[c[r]] for values, c in zip(grid.values(), columns)) for r in range(points)}
        if len(chosen) < points:  # two rows coincide (a sample near the whole grid): a balanced random subset
            chosen = {combos[i] for i in rng.choice(len(combos), points, replace=False)}
        if balanced(chosen):
            return sorted(chosen, key=index.__getitem__)
    raise SettingsError(f"{where}: no sample of {points} distinct points trying every value found (seed {seed}); "
                        f"lower sweep.points or add values")


def sweep_points(name: str, domain: str, overrides: dict | None = None,
                 directory: str | os.PathLike | None = None, limit: int | None = None,
                 sample: dict | None = None) -> dict[str, dict[str, Any]]:
    """{setting id: complete settings} for every point of the method's grid, in the file's order; ``overrides``
    (a variant's fixed settings) apply to every point and remove their keys from the grid; ``limit`` keeps
    at most that many values per key, the first and last among them (the smoke tier's coarse grids);
    ``sample`` ({"points": N, "seed": s}, the stage's ``sweep``) keeps N points of the grid (``sample_points``)
    so every method gets the same number of trials. The setting id names the grid values, e.g.
    ``lr=0.001,forget_weight=0.5`` (``default`` without a grid)."""
    base = method_settings(name, domain, overrides, directory)
    grid = {k: _coarse(v, limit) for k, v in method_grid(name, domain, directory).items()
            if not set(k.split("+")) & set(overrides or {})}
    if not grid:
        return {"default": base}
    where = f"{methods_dir(directory) / f'{name}.yaml'} (sweep.{domain})"
    combos = (sample_points(grid, int(sample["points"]), int(sample.get("seed", 0)), where) if sample
              else itertools.product(*grid.values()))
    points = {}
    for combo in combos:
        settings = dict(base)
        for key, value in zip(grid, combo):
            settings.update(dict.fromkeys(key.split("+"), value))
        points[",".join(f"{k}={_grid_value(v)}" for k, v in zip(grid, combo))] = settings
    return points


def sensitivity_grid(name: str, directory: str | os.PathLike | None = None) -> dict[str, list]:
    """The method file's ``sensitivity`` block, checked like a sweep grid ({} when it has none)."""
    spec = method_spec(name, directory)
    return _checked_grid(name, spec.get("sensitivity") or {}, spec.get("defaults") or {},
                         f"{methods_dir(directory) / f'{name}.yaml'} (sensitivity)")


def sensitivity_points(base: dict[str, Any], grid: dict[str, list]) -> dict[str, dict]:
    """One-at-a-time variations of ``base`` (the selected setting) over ``grid`` (``sensitivity_grid``):
    {"selected": base, "<key>=<value>": base with that one value, ...} (values equal to base's skipped)."""
    points = {"selected": dict(base)}
    for key, values in grid.items():
        for value in values:
            if any(base.get(part) != value for part in key.split("+")):
                points[f"{key}={_grid_value(value)}"] = {**base, **dict.fromkeys(key.split("+"), value)}
    return points
