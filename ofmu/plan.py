"""What the pipeline runs, from a validated config: the runs of each unlearning stage and the checks that
a dry run must fail on (so a config mistake costs seconds, not a stage).

A run is (method, setting id, complete settings). Setting ids: ``default`` for a method listed in
``<stage>.methods`` (its file's values, ``config/methods/<Method>.yaml``), the variant's name for an
ablation variant (``<stage>.variants``: that method with some settings replaced).
Nothing here imports torch until a method name has to be checked against the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ofmu.unlearning.settings import SettingsError, method_settings, sweep_points

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


def stage_sweeps(domain: str, stage: dict) -> dict[str, dict]:
    """{label: {"method": name, "points": {setting id: complete settings}}} for every method (label = its
    name) and variant (label = the variant's name: the method's grid with the variant's settings fixed) of a
    stage; the points are the method's sweep grid (``config/methods/<Method>.yaml``, ``sweep``)."""
    labels = {m: (m, None) for m in stage["methods"]}
    labels.update({name: (v["method"], v.get("hparams")) for name, v in sorted((stage.get("variants") or {}).items())})
    limit, sample = stage.get("grid_limit"), stage.get("sweep")
    # each point's settings in canonical key order; the points in the file's grid order (ties in the selection
    # fall back to it)
    return {label: {"method": method, "points": {setting: canonical(values) for setting, values in
                                                  sweep_points(method, domain, overrides, limit=limit,
                                                               sample=sample).items()}}
            for label, (method, overrides) in labels.items()}


# What the selection rule may name, per domain (the columns every run row has)
SELECTION_METRICS = {
    "vision": ("UA", "RA", "TA", "MIA-Efficacy", "Avg.Gap"),
    "llm": ("forget_quality", "model_utility", "forget_truth_ratio", "forget_prob", "forget_es", "forget_rouge",
            "retain_prob", "retain_rouge", "retain_tr", "mia_auc", "privleak"),
}


def _message(err: Exception) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def _run_errors(where: str, method: str, domain: str, overrides: dict | None = None) -> list[str]:
    """Keys and values of every grid point of a run: the method's class checks the values (ranges, choices)."""
    from ofmu.unlearning.settings import method_class

    try:
        for setting, values in sweep_points(method, domain, overrides).items():
            try:
                method_class(method)(**values)
            except (KeyError, ValueError, TypeError) as err:
                return [f"{where} (grid point {setting}): {_message(err)}"]
    except (SettingsError, KeyError, ValueError, TypeError) as err:
        return [f"{where}: {_message(err)}"]
    return []


def _trial_errors(domain: str, stage: dict, method: str) -> list[str]:
    """Equal trials (``<stage>.sweep.points``): every method's grid has at least that many points, and a
    sample of that size can try every value of every key."""
    sample = stage.get("sweep")
    if not sample:
        return []
    try:
        full = sweep_points(method, domain, limit=stage.get("grid_limit"))
        if len(full) < sample["points"]:
            return [f"{domain}.sweep.points: {sample['points']} trials per method, but the grid of {method} has "
                    f"{len(full)} point(s); every method gets the same number: add values to its grid "
                    f"(config/methods/{method}.yaml, sweep.{domain}) or lower {domain}.sweep.points"]
        sweep_points(method, domain, limit=stage.get("grid_limit"), sample=sample)
    except SettingsError as err:
        return [f"{domain}.sweep: {err}"]
    return []


def _settings_errors(domain: str, stage: dict) -> list[str]:
    errors = []
    for method in stage.get("methods", []):
        if method == "Retrain":
            errors.append(f"{domain}.methods: Retrain is the reference every cell has; remove it from the list")
            continue
        errors += _run_errors(f"{domain}.methods.{method}", method, domain)
        errors += _trial_errors(domain, stage, method)
    for name, variant in (stage.get("variants") or {}).items():
        if name in (*RESERVED_SETTINGS, *REFERENCE_LABELS) or name in stage.get("methods", []):
            errors.append(f"{domain}.variants.{name}: the name is taken (a method, a reference row or one of "
                          f"{RESERVED_SETTINGS}); rename the variant")
        errors += _run_errors(f"{domain}.variants.{name}", variant["method"], domain, variant.get("hparams"))
    return errors + _protocol_errors(domain, stage)


def _protocol_errors(domain: str, stage: dict) -> list[str]:
    """Selection seed, selection rule, sensitivity: what makes the comparison's reported numbers fresh."""
    from ofmu.unlearning.fronts import SelectionRule

    errors = []
    if stage.get("selection_seed") in stage.get("seeds", []):
        errors.append(f"{domain}.selection_seed: {stage['selection_seed']} is also a reported seed ({domain}.seeds "
                      f"{stage['seeds']}); the reported seeds must never enter the selection: pick another seed")
    try:
        SelectionRule.from_dict(stage.get("selection") or {}).check_metrics(SELECTION_METRICS[domain],
                                                                            f"{domain}.selection")
    except (TypeError, ValueError) as err:
        errors.append(f"{domain}.selection: {err}")
    if stage.get("methods") and "GradDiff" not in stage["methods"]:
        errors.append(f"{domain}.methods: GradDiff (one gradient per forget batch) sets the gradient budget of the "
                      f"equal-compute table (tab11_{domain}_equal_compute); add it to {domain}.methods")
    if 1.0 not in (stage.get("checkpoints") or [1.0]):
        errors.append(f"{domain}.checkpoints: {stage['checkpoints']} must include 1.0, the end of the budget every "
                      f"method is given (the cost tables and the budget's fairness are read there)")
    sens = stage.get("sensitivity")
    if sens:
        cells = stage_cells(domain, stage)
        if canonical(sens["cell"]) not in cells:
            errors.append(f"{domain}.sensitivity.cell: {sens['cell']} is not a configured cell; valid: {cells}")
        extra = sorted(set(sens["seeds"]) - set(stage.get("seeds", [])))
        if extra:
            errors.append(f"{domain}.sensitivity.seeds: {extra} are not reported seeds ({domain}.seeds)")
        if "OFMU" not in stage.get("methods", []):
            errors.append(f"{domain}.sensitivity: OFMU's sensitivity runs around its selected setting; add OFMU to "
                          f"{domain}.methods or drop the sensitivity key")
    return errors


def cell_path(cell: dict) -> str:
    """A cell as a path: vision "<dataset>/<scenario>", LLM "<split>" (its values in key order)."""
    return "/".join(str(v) for v in cell.values())


def stage_cells(domain: str, stage: dict) -> list[dict]:
    """The cells of a stage: vision {dataset, scenario}; LLM {split}."""
    if domain == "vision":
        return [{"dataset": d, "scenario": sc} for sc, datasets in stage["datasets"].items() for d in datasets]
    return [{"split": split} for split in stage["splits"]]


def _theory_errors(theory: dict, claims_file) -> list[str]:
    from ofmu.theory.stage import claim_spec
    from ofmu.theory.verdicts import load_claims

    try:
        claims = load_claims(claims_file)
    except ValueError as err:
        return [f"theory.claims_file: {err}"]
    errors = []
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
    if "seed" in (llm.get("corpus") or {}):
        errors.append("llm.corpus.seed: each replicate's corpus seed is its seed (llm.selection_seed, llm.seeds); "
                      "remove the key")
    if llm.get("model_seed", 0) in llm.get("reference_seeds", []):
        errors.append(f"llm.reference_seeds {llm['reference_seeds']} contain llm.model_seed {llm.get('model_seed', 0)}: "
                      f"a retain-only model would share the full model's training seed; use other numbers")
    errors += _start_model_errors(llm.get("model") or {})
    if llm.get("attacks"):
        from ofmu.llm.attacks import AttackConfig

        try:
            AttackConfig.from_dict(llm["attacks"])
        except (TypeError, ValueError) as err:
            errors.append(str(err))
    if llm.get("dataset"):
        return errors + _dataset_errors(llm) if not errors else errors
    try:
        corpus = CorpusConfig.from_dict(llm.get("corpus") or {})
    except (TypeError, ValueError) as err:
        return [*errors, f"llm.corpus: {err}"]
    available = [f"forget{p:02d}" for p in corpus.forget_percents]
    for split in [*llm.get("splits", []), llm.get("sample_costs", {}).get("split")]:
        if split is not None and split not in available:
            errors.append(f"llm split {split!r} is not in the corpus (llm.corpus.forget_percents gives {available}); "
                          f"add its percentage to llm.corpus.forget_percents or drop the split")
    for method in (llm.get("sample_costs") or {}).get("methods", []):
        errors += _run_errors("llm.sample_costs.methods", method, "llm")
    return errors + _split_size_errors(llm, corpus) if not errors else errors


def _start_model_errors(model: dict) -> list[str]:
    """A pretrained ``llm.model``: its fields, that it can be found here (a folder, a GGUF file in its folder or
    package, a cached hub id when offline) and, for a folder, that its tokenizer has a chat template or one is given
    (a GGUF file's template is read by the corpus job, the chain's first)."""
    from ofmu.llm.pretrained import PretrainedSpec, PretrainedUnavailableError, folder_has_chat_template, is_pretrained, locate

    if not is_pretrained(model):
        return []
    try:
        spec = PretrainedSpec.from_dict(model)
        where, gguf = locate(spec)
    except (TypeError, ValueError, PretrainedUnavailableError) as err:
        return [f"llm.model: {err}"]
    if spec.chat_template is None and gguf is None and Path(where).is_dir() and not folder_has_chat_template(where):
        return [f"llm.model: the tokenizer in {where} has no chat template; give one as llm.model.chat_template (a "
                f"Jinja string, e.g. the Llama-3 or ChatML template)"]
    return []


def _dataset_errors(llm: dict) -> list[str]:
    """``llm.dataset`` (real TOFU): a local folder holds every split the stage reads; the step counts from its
    forget splits' sizes (the hub's from TOFU's published sizes)."""
    from ofmu.io import is_missing_local_path
    from ofmu.llm.data import TOFU_FORGET_ROWS, tofu_split_files

    source = str(llm["dataset"])
    try:
        needed = tofu_split_files(llm.get("splits", []))
    except ValueError as err:
        return [f"llm.splits: {err}"]
    folder = Path(source).expanduser()
    if folder.is_dir():
        files = {p.stem: p for suffix in (".json", ".jsonl") for p in folder.glob(f"*{suffix}")}
        missing = [name for name in needed if name not in files]
        if missing:
            return [f"llm.dataset {source}: no {', '.join(f'{m}.json' for m in missing)}; a TOFU-format folder needs "
                    f"every split the stage reads ({', '.join(needed)})"]
        sizes = {s: sum(1 for line in files[s].read_text().splitlines() if line.strip()) for s in llm.get("splits", [])}
    elif is_missing_local_path(source):
        return [f"llm.dataset {source}: no such folder; give locuslab/TOFU (the hub) or a folder of <split>.json files"]
    else:
        unknown = [s for s in llm.get("splits", []) if s not in TOFU_FORGET_ROWS]
        if unknown:
            return [f"llm.splits {unknown}: not a split of {source} (TOFU's: {', '.join(TOFU_FORGET_ROWS)})"]
        sizes = {s: TOFU_FORGET_ROWS[s] for s in llm.get("splits", [])}
    return _split_size_errors(llm, sizes=[sizes], seeds=["(every one: one dataset)"])


def _split_size_errors(llm: dict, corpus=None, sizes=None, seeds=None) -> list[str]:
    """On every split and replicate (corpus seed = the selection seed and each reported one: the forget splits'
    sizes differ between corpora), counted from the corpora (``corpus``, a CorpusConfig) or from given split sizes
    per replicate (``sizes``, named by ``seeds``):

    * FQ can fall below signal.max_fq_finetuned at all: the KS test of n forget truth ratios against n reference
      ones has a smallest p-value (both samples apart, statistic 1), and a split whose smallest p-value is above
      the threshold fails the signal check by construction (4 QA: 0.029 > 0.01);
    * every method takes >= min_steps optimizer steps and OFMU >= min_outer_iterations outer iterations (T + 1
      forget batches each) at every grid point, from the budget."""
    import math
    from dataclasses import replace

    from scipy.stats import ks_2samp

    from ofmu.llm.corpus import generate_corpus

    signal = llm.get("signal") or {}
    min_steps, min_outer = signal.get("min_steps", 0), signal.get("min_outer_iterations", 0)
    max_fq = signal.get("max_fq_finetuned")
    if not (min_steps or min_outer or max_fq):
        return []
    if sizes is None:  # the generated corpus: its size differs between replicates
        seeds = [llm.get("selection_seed", 0), *llm.get("seeds", [])]
        sizes = [{split: len(part) for split, part in generate_corpus(replace(corpus, seed=int(s))).items()} for s in seeds]
    errors = []
    for split in llm.get("splits", []) if max_fq else []:
        # FQ is scored on the evaluation rows (<split>_perturbed: one per fact; the training split may hold more)
        n, seed = min((size.get(split + "_perturbed", size[split]), s) for size, s in zip(sizes, seeds))
        smallest = float(ks_2samp(range(n), range(n, 2 * n)).pvalue)
        if smallest >= max_fq:
            errors.append(f"llm {split}: {n} forget QA on replicate {seed}; the KS test of {n} against {n} truth "
                          f"ratios cannot give a p-value below {smallest:.3g}, so FQ(Finetuned) can never be < "
                          f"signal.max_fq_finetuned {max_fq} and the signal check fails by construction; use a "
                          f"larger split or more authors (llm.corpus.n_authors)")
    budget = llm["unlearn"]
    for split in llm.get("splits", []) if (min_steps or min_outer) else []:
        rows, seed = min((size[split], s) for size, s in zip(sizes, seeds))  # the smallest replicate's split
        batches = round(budget["epochs"] * math.ceil(rows / budget["batch_size"]))
        if batches < min_steps:
            errors.append(f"llm {split}: {batches} optimizer steps per method on replicate {seed} (llm.unlearn: "
                          f"{budget['epochs']} epochs x {math.ceil(rows / budget['batch_size'])} batches of its {rows} "
                          f"rows) < signal.min_steps {min_steps}; "
                          f"raise llm.unlearn.epochs or lower llm.unlearn.batch_size")
        if "OFMU" in llm.get("methods", []):
            inner = {values["inner_steps"] for values in sweep_points("OFMU", "llm").values()}
            outer = batches // (max(inner) + 1)
            if outer < min_outer:
                errors.append(f"llm {split}: OFMU takes {outer} outer iterations on replicate {seed} (T = {max(inner)}: "
                              f"{max(inner) + 1} forget batches each, {batches} in the budget) < signal.min_outer_iterations "
                              f"{min_outer}; "
                              f"raise llm.unlearn.epochs")
    return errors


def _verdict_errors(config: dict) -> list[str]:
    """The computed verdict (``verdict``): an equivalence margin for every headline metric of every unlearning
    stage, each finite and > 0, declared before the run; alpha in (0, 1); enough reported seeds for a paired
    t-interval."""
    import math

    from ofmu.unlearning.verdict import METRICS, MIN_SEEDS

    verdict = config.get("verdict")
    if not verdict:
        return []
    errors = []
    alpha = verdict.get("alpha")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        errors.append(f"verdict.alpha: {alpha!r} must be a number in (0, 1), e.g. 0.05")
    margins = verdict.get("margins") or {}
    for stage in (s for s in ("vision", "llm") if s in config["stages"] and s in config):
        declared = margins.get(stage) or {}
        for metric in METRICS[stage]:
            value = declared.get(metric.key)
            where = f"verdict.margins.{stage}.{metric.key}"
            if value is None:
                errors.append(f"{where}: missing; declare the equivalence margin of {metric.title} "
                              f"({metric.unit or 'its unit'}) before the run, a number > 0")
            elif (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                  or value <= 0):
                errors.append(f"{where}: {value!r} must be a finite number > 0 ({metric.title}, {metric.unit or 'its unit'})")
        unknown = sorted(set(declared) - {m.key for m in METRICS[stage]})
        if unknown:
            errors.append(f"verdict.margins.{stage}: unknown metrics {unknown}; valid: {[m.key for m in METRICS[stage]]}")
        seeds = config[stage].get("seeds", [])
        if len(seeds) < MIN_SEEDS:
            errors.append(f"{stage}.seeds: {len(seeds)} reported seed(s) {seeds} are too few for the verdict's paired "
                          f"t-interval (>= {MIN_SEEDS}); add seeds or drop the verdict section")
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
    errors += _verdict_errors(config)
    if errors:
        raise ConfigError("the config cannot run:\n  - " + "\n  - ".join(errors))
