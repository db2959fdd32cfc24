"""OFMU (first-order and exact derivatives) against GradDiff: wall time per pass over D_f and peak memory,
on the default tier's vision and LLM cells, same model, data, seed and budget.

Each (domain, method) runs in a process of its own (peak resident memory is a per-process high-water
mark), after the same warm-up as the pipeline's jobs (``ofmu.unlearning.cells.warm_up``). OFMU runs with
the settings the experiments use (config/methods/OFMU.yaml, beta > 0), once with ``derivatives:
first_order`` and once with ``exact``. Gradient evaluations per outer iteration are counted (calls of the
task's loss; in the first-order variant each is followed by exactly one first-order backward).

    python benchmarks/ofmu_cost.py [--domains vision llm] [--passes 1.0] [--repeats 3] [--set inner_steps=5]

The last lines are one JSON object per domain (ratios against GradDiff, median over ``repeats``).
Trained models are cached in benchmarks/results/cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / "results" / "cache"
VARIANTS = {"GradDiff": ("GradDiff", {}), "OFMU_first_order": ("OFMU", {"derivatives": "first_order"}),
            "OFMU_exact": ("OFMU", {"derivatives": "exact"})}
PASSES = {"vision": 1.0, "llm": 20.0}  # forget passes per run: >= 10 OFMU outer iterations in both domains (forget10 is 2 batches)


def measure(domain: str, variant: str, passes: float, seed: int, ofmu_overrides: dict) -> dict:
    """One run in this process: wall seconds, forget passes, peak memory, loss evaluations per step."""
    sys.path.insert(0, str(HERE))
    from cases import CASES

    from ofmu.seeds import derive_seed
    from ofmu.unlearning.cells import use_threads, warm_up
    from ofmu.unlearning.loop import run_unlearning
    from ofmu.unlearning.methods import make_method

    use_threads(1)  # the pipeline's jobs run on one thread each
    case = CASES[domain](CACHE)
    name, overrides = VARIANTS[variant]
    method = make_method(name, domain, **overrides, **(ofmu_overrides if name == "OFMU" else {}))
    task = case.task
    calls = {"n": 0}
    original_loss = task.loss

    def counting_loss(model, batch):
        calls["n"] += 1
        return original_loss(model, batch)

    warm_up(task, case.model, case.loaders(seed)[1], "cpu")
    task.loss = counting_loss
    forget, retain = case.loaders(seed)
    result = run_unlearning(case.model, method, forget, retain, task, epochs=passes,
                            seed=derive_seed(seed, "method"), device="cpu")
    return {"domain": domain, "variant": variant, "wall_seconds": result.wall_seconds,
            "forget_passes": result.forget_passes, "steps": result.steps,
            "peak_memory_mib": result.peak_memory_bytes / 2**20,
            "loss_evaluations_per_step": calls["n"] / max(1, result.steps),
            "settings": method.hparams}


def _in_subprocess(domain: str, variant: str, passes: float, seed: int, ofmu_overrides: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", domain, variant, str(passes), str(seed),
                          json.dumps(ofmu_overrides)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["vision", "llm"], choices=sorted(PASSES))
    parser.add_argument("--passes", type=float, default=None, help="forget passes per run (default per domain)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (median reported)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="OFMU settings to change, as YAML values (e.g. inner_steps=5 beta=0.0)")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        domain, variant, passes, seed, overrides = args.one
        print(json.dumps(measure(domain, variant, float(passes), int(seed), json.loads(overrides))))
        return
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    import yaml

    bad = [item for item in args.set if "=" not in item]
    if bad:
        parser.error(f"--set takes KEY=VALUE pairs; got {bad}")
    ofmu_overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    from ofmu.unlearning.methods import make_method

    for domain in args.domains:  # a bad key or value is named here, before any run starts
        make_method("OFMU", domain, **ofmu_overrides)
    summaries = []
    for domain in args.domains:
        passes = args.passes or PASSES[domain]
        runs = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):  # interleaved: drift of the machine hits every variant alike
            for variant in VARIANTS:
                runs[variant].append(_in_subprocess(domain, variant, passes, 0, ofmu_overrides))
        per_pass = {v: statistics.median(r["wall_seconds"] / r["forget_passes"] for r in rs) for v, rs in runs.items()}
        memory = {v: statistics.median(r["peak_memory_mib"] for r in rs) for v, rs in runs.items()}
        for v, rs in runs.items():
            r = rs[0]
            print(f"{domain:6s} {v:17s} {per_pass[v]:7.2f} s/pass  {memory[v]:7.1f} MiB  steps {r['steps']:4d}  "
                  f"forget passes {r['forget_passes']:.2f}  loss evaluations/step {r['loss_evaluations_per_step']:.1f}")
        ofmu = runs["OFMU_first_order"][0]
        summaries.append({
            "domain": domain,
            "wall_ratio_first_order": round(per_pass["OFMU_first_order"] / per_pass["GradDiff"], 3),
            "memory_ratio_first_order": round(memory["OFMU_first_order"] / memory["GradDiff"], 3),
            "wall_ratio_exact": round(per_pass["OFMU_exact"] / per_pass["GradDiff"], 3),
            "memory_ratio_exact": round(memory["OFMU_exact"] / memory["GradDiff"], 3),
            "grad_evals_per_outer_iteration": ofmu["loss_evaluations_per_step"],
            "inner_steps": ofmu["settings"]["inner_steps"], "beta": ofmu["settings"]["beta"],
            "forget_passes": passes, "repeats": args.repeats, "ofmu_settings_changed": ofmu_overrides,
        })
    for s in summaries:
        print(json.dumps(s))


if __name__ == "__main__":
    main()
