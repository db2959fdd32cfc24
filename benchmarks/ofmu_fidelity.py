"""How far the first-order OFMU is from the exact one, standalone (the pipeline's rules
``*_first_order_fidelity`` run the same library code on the pipeline's own models: fig11, tab7).

A. float64 V-curves: relative error of first-order grad Phi / grad F against autograd's over difference
   steps, forward and central, on a theory problem and a small smooth network ("auto" steps marked).
B. float32 along an OFMU run on the default tier's real cells (benchmarks/cases.py): at every outer
   iteration, the first-order grad F at each candidate step (and at the inner ascent's own step) against
   the exact one; median and percentiles over the run.

    python benchmarks/ofmu_fidelity.py [--iterations 12] [--domains vision llm]
        [--output benchmarks/results/ofmu_fidelity.json] [--figure benchmarks/results/ofmu_fidelity.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import CASES  # noqa: E402

from ofmu.io import provenance, write_json_atomic  # noqa: E402
from ofmu.plotting.fidelity import plot_fidelity  # noqa: E402
from ofmu.unlearning.fidelity import along_run, summarize, v_curves  # noqa: E402
from ofmu.unlearning.settings import method_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=12, help="OFMU outer iterations per real cell")
    parser.add_argument("--domains", nargs="*", default=["vision", "llm"], choices=sorted(CASES))
    parser.add_argument("--output", default=str(HERE / "results" / "ofmu_fidelity.json"))
    parser.add_argument("--figure", default=str(HERE / "results" / "ofmu_fidelity.png"))
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    torch.set_num_threads(1)
    rows = v_curves()
    for domain in args.domains:
        case = CASES[domain](HERE / "results" / "cache")
        forget, retain = case.loaders(0)
        rows += along_run(case.model, forget, retain, case.task, method_settings("OFMU", domain), args.iterations,
                          f"{domain} cell")
    summary = summarize(rows)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    write_json_atomic(args.output, {"summary": summary.to_dict("records"), "rows": rows,
                                    "provenance": provenance({"iterations": args.iterations, "domains": args.domains})})
    steps = {method_settings("OFMU", d)["fd_step"] for d in args.domains}
    plot_fidelity(summary, steps.pop() if len(steps) == 1 else None, args.figure)
    print(f"wrote {args.output} and {args.figure}")


if __name__ == "__main__":
    main()
