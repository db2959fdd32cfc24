"""OFMU vs GradDiff cost at equal passes over the forget set, from the pipeline's own runs.

Each method runs in its own job (process) on the same model, data and seed: one warm-up pass before the
timer, wall seconds and peak resident memory of the unlearning run alone (``ofmu.unlearning.cells``).
Also: LLM cost from the smallest to the largest forget split.

    python benchmarks/cost_ratios.py [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ofmu.tables import read_results
from ofmu.unlearning.cells import cost_ratios


def _summary(ratios: pd.DataFrame, label: str) -> dict:
    return {"stage": label, "cells": len(ratios),
            "time per forget pass, OFMU / GradDiff": f"{ratios['time_ratio'].mean():.2f} "
                                                     f"(range {ratios['time_ratio'].min():.2f}-{ratios['time_ratio'].max():.2f})",
            "peak memory, OFMU / GradDiff": f"{ratios['memory_ratio'].mean():.2f} "
                                            f"(range {ratios['memory_ratio'].min():.2f}-{ratios['memory_ratio'].max():.2f})"}


def _runs(root: Path) -> pd.DataFrame:
    return read_results(sorted(p for p in root.rglob("s*.csv") if p.name.count(".") == 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="the pipeline's results folder")
    args = parser.parse_args()
    rows = []
    vision = _runs(Path(args.results) / "vision" / "runs")
    if len(vision):
        rows.append(_summary(cost_ratios(vision, ["dataset", "scenario"]), "vision (small CNN)"))
    llm = _runs(Path(args.results) / "llm" / "runs")
    if len(llm):
        rows.append(_summary(cost_ratios(llm, ["split"]), "LLM (GPT-2)"))
        for setting in sorted(set(llm.loc[(llm["method"] == "OFMU") & (llm["setting"] != "default"), "setting"])):
            rows.append(_summary(cost_ratios(llm, ["split"], setting=setting), f"LLM, {setting}"))
        ok = llm[(llm["status"] == "ok") & (llm["setting"] == "default")]
        growth = ok[ok["method"].isin(["GradDiff", "OFMU"])].groupby(["method", "split"])["wall_seconds"].mean()
        print("LLM wall seconds per unlearning run by split (mean over seeds):")
        print(growth.unstack().round(2).to_markdown())
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
