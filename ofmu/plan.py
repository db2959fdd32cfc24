"""What the pipeline runs, from a validated config: the runs of each unlearning stage and the checks that
a dry run must fail on (so a config mistake costs seconds, not a stage).

A run is (method, setting id, complete settings). Setting ids: ``default`` for a method listed in
``<stage>.methods`` (its file's values, ``config/methods/<Method>.yaml``), the variant's name for an
ablation variant (``<stage>.variants``: that method with some settings replaced).
Nothing here imports torch until a method name has to be checked against the registry.
"""

from __future__ import annotations

from typing import Any

from ofmu.unlearning.settings import SettingsError, method_settings

RESERVED_SETTINGS = ("default", "reference")
REFERENCE_LABELS = ("Original", "Retrain", "Finetuned", "Retain")  # rows every cell has; never a run's label


class ConfigError(ValueError):
    """Everything a config gets wrong, one line each, with the fix."""


def canonical(value: Any) -> Any:
    """The same value with every mapping's keys sorted, so its repr (what Snakemake compares to decide a
    rerun) does not change when a config's keys are reordered."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def pick(stage: dict, *keys: str) -> dict:
    """The part of a stage config a job uses, canonical (params hold only what their job reads)."""
    return canonical({k: stage.get(k) for k in keys})


def stage_runs(domain: str, stage: dict) -> dict[tuple[str, str], dict]:
    """{(method, setting id): complete settings} for every method and variant of a stage (variants by name,
    so reordering a config's keys never reorders runs)."""
    runs = {(m, "default"): method_settings(m, domain) for m in stage["methods"]}
    for name, variant in sorted((stage.get("variants") or {}).items()):
        runs[(variant["method"], name)] = method_settings(variant["method"], domain, variant.get("hparams"))
    return {key: canonical(value) for key, value in runs.items()}


def _message(err: Exception) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def _run_errors(where: str, method: str, domain: str, overrides: dict | None = None) -> list[str]:
    """Keys and values of one run's settings: the method's class checks the values (ranges, choices)."""
    from ofmu.unlearning.settings import method_class

    try:
        method_class(method)(**method_settings(method, domain, overrides))
    except (SettingsError, KeyError, ValueError, TypeError) as err:
        return [f"{where}: {_message(err)}"]
    return []


def _settings_errors(domain: str, stage: dict) -> list[str]:
    errors = []
    for method in stage.get("methods", []):
        if method == "Retrain":
            errors.append(f"{domain}.methods: Retrain is the reference every cell has; remove it from the list")
            continue
        errors += _run_errors(f"{domain}.methods", method, domain)
    for name, variant in (stage.get("variants") or {}).items():
        if name in (*RESERVED_SETTINGS, *REFERENCE_LABELS) or name in stage.get("methods", []):
            errors.append(f"{domain}.variants.{name}: the name is taken (a method, a reference row or one of "
                          f"{RESERVED_SETTINGS}); rename the variant")
        errors += _run_errors(f"{domain}.variants.{name}", variant["method"], domain, variant.get("hparams"))
    return errors


def _theory_errors(theory: dict, claims_file) -> list[str]:
    from ofmu.theory.stage import claim_spec
    from ofmu.theory.verdicts import load_claims

    errors, claims = [], load_claims(claims_file)
    for claim in theory.get("overrides") or {}:
        if claim not in claims:
            errors.append(f"theory.overrides.{claim}: no such claim in {claims_file}; valid claims: {', '.join(claims)}")
            continue
        try:
            claim_spec(claims_file, claim, theory["overrides"])
        except ValueError as err:
            errors.append(str(err))
    return errors


def _llm_errors(llm: dict) -> list[str]:
    from ofmu.llm.corpus import CorpusConfig

    errors = []
    try:
        corpus = CorpusConfig.from_dict(llm.get("corpus") or {})
    except (TypeError, ValueError) as err:
        return [f"llm.corpus: {err}"]
    available = [f"forget{p:02d}" for p in corpus.forget_percents]
    for split in [*llm.get("splits", []), llm.get("sample_costs", {}).get("split")]:
        if split is not None and split not in available:
            errors.append(f"llm split {split!r} is not in the corpus (llm.corpus.forget_percents gives {available}); "
                          f"add its percentage to llm.corpus.forget_percents or drop the split")
    for method in llm.get("sample_costs", {}).get("methods", []):
        errors += _run_errors("llm.sample_costs.methods", method, "llm")
    return errors


def check_config(config: dict, claims_file) -> None:
    """Raise one ConfigError listing every problem a dry run can see (after the schema's checks)."""
    errors = _theory_errors(config["theory"], claims_file) if "theory" in config["stages"] else []
    for domain in ("vision", "llm"):
        if domain in config["stages"]:
            if domain not in config:
                errors.append(f"stages lists {domain!r} but the config has no '{domain}' section; add it or drop the stage")
                continue
            errors += _settings_errors(domain, config[domain])
    if "llm" in config["stages"] and "llm" in config:
        errors += _llm_errors(config["llm"])
    if errors:
        raise ConfigError("the config cannot run:\n  - " + "\n  - ".join(errors))
