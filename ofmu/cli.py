"""``python -m ofmu``: run one theory check or one solver outside Snakemake.

    python -m ofmu check C3 --family quadratic_strong --seed 0
    python -m ofmu solve --problem logistic_ridge --solver ofmu --iterations 200 --set beta=0 --set inner_steps=5
    python -m ofmu mutations --seed 0      # every claim against each deliberately wrong solver (THEOREMS.md)
    python -m ofmu compare RUN/paper_tables paper_tables   # which metric cells differ (`make compare`)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLAIMS = REPO / "theory" / "claims.yaml"


def _parse_settings(pairs: list[str]) -> dict:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value  # a bare word such as exact/cheap
    return settings


def _cmd_check(args) -> int:
    from ofmu.theory.stage import ClaimFailed, claim_spec
    from ofmu.theory.claims import run_claim
    from ofmu.theory.verdicts import check_claim

    spec = claim_spec(args.claims_file, args.claim)
    families = [args.family] if args.family else spec["families"]
    import pandas as pd

    rows = pd.concat([run_claim(args.claim, spec, f, s) for f in families for s in args.seed], ignore_index=True)
    verdicts = check_claim(args.claim, spec, rows)
    cols = ["family", "seed", "quantity", "group", "predicted", "fitted", "max_value_over_bound", "passed"]
    print(verdicts[cols].to_string(index=False))
    if args.output:
        from ofmu.io import write_csv_atomic

        write_csv_atomic(args.output, rows)
    if not verdicts["passed"].all():
        print(f"claim {args.claim}: FAILED", file=sys.stderr)
        return 1
    print(f"claim {args.claim}: all {len(verdicts)} checks pass")
    return 0


def _cmd_solve(args) -> int:
    import torch

    from ofmu.core import solvers  # noqa: F401 - registers the solvers
    from ofmu.registry import PROBLEMS, SOLVERS
    from ofmu.theory.problems import make_problem

    if args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    solver = SOLVERS.get(args.solver)
    PROBLEMS.get(args.problem)  # validates the name before any work
    problem = make_problem(args.problem, args.seed)
    params = [torch.tensor(problem.initial_point(), dtype=torch.float64, requires_grad=True)]
    f_loss, r_loss = problem.torch_objectives()
    history = solver(params, lambda: (f_loss, r_loss), _parse_settings(args.set), args.iterations)
    theta = params[0].detach().numpy()
    theta_star, _ = problem.bilevel_reference()
    last = history[-1] if history else {}
    report = {"problem": args.problem, "solver": args.solver, "seed": args.seed, "iterations": args.iterations,
              "final": {k: v for k, v in last.items() if isinstance(v, (int, float))},
              "distance_to_bilevel_optimum": float(((theta - theta_star) ** 2).sum() ** 0.5),
              "grad_phi_norm": problem.grad_phi_norm(theta)}
    print(json.dumps(report, indent=2))
    return 0


def _cmd_mutations(args) -> int:
    from ofmu.theory.mutation import MUTANTS, failing_checks, mutation_table
    from ofmu.theory.verdicts import load_claims

    claims = load_claims(args.claims_file)
    runs = {c: (spec, spec["families"], args.seed) for c, spec in claims.items()}
    results = {m: failing_checks(m, runs) for m in [None, *MUTANTS]}
    print(mutation_table(results))
    missed = [m for m in MUTANTS if results[m].empty]
    if not results[None].empty or missed:
        print(f"the correct solver failed checks, or mutants were not caught: {missed}", file=sys.stderr)
        return 1
    return 0


def _cmd_compare(args) -> int:
    from ofmu.tables import LEVELS, metric_tables, reproduction

    result = reproduction(args.run, args.reference, rtol=args.rtol)
    for line in result.diffs[: args.max_lines]:
        print(line)
    if len(result.diffs) > args.max_lines:
        print(f"... and {len(result.diffs) - args.max_lines} more differing cells")
    n = len(metric_tables(args.reference))
    print(f"{len(result.diffs)} differing cell(s) in the {n} metric tables of {args.run} against {args.reference}; "
          f"{len(result.outside_tolerance)} outside the tolerance (rtol {args.rtol:g} or one unit of the last digit)")
    for line in result.outside_tolerance[: args.max_lines]:
        print(f"  outside tolerance: {line}")
    for line in result.verdict_changes:
        print(f"  verdict: {line}")
    explain = {LEVELS[0]: "every metric table is the same, byte for byte",
               LEVELS[1]: "every differing number is within the tolerance",
               LEVELS[2]: "numbers beyond the tolerance differ, but every decision of tab10_verdict is the same",
               LEVELS[3]: "a decision of tab10_verdict differs: the run does not reproduce the verdict",
               "not comparable": "a table is missing or reshaped, or the verdict table is missing"}
    print(f"level: {result.level} ({explain[result.level]})")
    strict_fail = args.strict and result.level != LEVELS[0]
    return 1 if strict_fail or result.level in (LEVELS[3], "not comparable") else 0


def build_parser() -> argparse.ArgumentParser:
    from ofmu.core import solvers  # noqa: F401
    from ofmu.registry import PROBLEMS, SOLVERS
    from ofmu.theory import problems  # noqa: F401
    from ofmu.theory.verdicts import CLAIM_IDS

    parser = argparse.ArgumentParser(prog="python -m ofmu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run one theory claim (theory/claims.yaml) and print its verdicts")
    check.add_argument("claim", choices=CLAIM_IDS)
    check.add_argument("--family", help=f"one problem family ({', '.join(PROBLEMS.names())}); default: all of the claim's")
    check.add_argument("--seed", type=int, nargs="+", default=[0])
    check.add_argument("--claims-file", default=str(DEFAULT_CLAIMS))
    check.add_argument("--output", help="write the tidy rows to this CSV")
    check.set_defaults(func=_cmd_check)
    solve = sub.add_parser("solve", help="run one solver on one convex problem instance")
    solve.add_argument("--problem", required=True, help=f"one of: {', '.join(PROBLEMS.names())}")
    solve.add_argument("--solver", required=True, help=f"one of: {', '.join(SOLVERS.names())}")
    solve.add_argument("--iterations", type=int, default=100)
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="solver setting (OFMUConfig fields for ofmu/penalty_gd; weight, lr for scalarized)")
    solve.set_defaults(func=_cmd_solve)
    mutations = sub.add_parser("mutations", help="run every claim against each deliberately wrong solver and "
                                                  "print which checks fail (markdown table)")
    mutations.add_argument("--seed", type=int, nargs="+", default=[0])
    mutations.add_argument("--claims-file", default=str(DEFAULT_CLAIMS))
    mutations.set_defaults(func=_cmd_mutations)
    compare = sub.add_parser("compare", help="compare a run's metric tables (tab*.csv, not the *_costs tables) with "
                                              "reference ones; print every differing cell and which level holds "
                                              "(bit-identical, equal within tolerance, verdict unchanged, verdict "
                                              "changed); exit 1 if the verdict changed or a table is missing")
    compare.add_argument("run", help="the run's paper_tables/ folder")
    compare.add_argument("reference", help="the reference paper_tables/ folder (e.g. the committed one)")
    compare.add_argument("--rtol", type=float, default=0.05,
                         help="relative tolerance of 'equal within tolerance' (default 0.05; one unit of the last "
                              "printed digit always counts as equal)")
    compare.add_argument("--strict", action="store_true", help="exit 1 on any difference (bit-identical or fail)")
    compare.add_argument("--max-lines", type=int, default=40, help="differing cells printed (default 40)")
    compare.set_defaults(func=_cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ofmu.core.ofmu import NonFiniteError
    from ofmu.registry import UnknownNameError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UnknownNameError, ValueError, NonFiniteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
