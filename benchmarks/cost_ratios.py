"""OFMU vs GradDiff cost at equal passes over the forget set, from the pipeline's own runs.

Each method runs in its own job (process) at its selected setting on the same model, data and seed (the rows
at the end of the budget): one warm-up pass before the
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
    # the reported runs, results/<stage>/runs/<cell>/<label>.csv (not their per-item tables, not the references)
    return read_results(sorted(p for p in root.rglob("*.csv") if p.name.count(".") == 1 and "reference" not in p.parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="the pipeline's results folder")
    args = parser.parse_args()
    rows = []
    stages = {"vision (small CNN)": ("vision", ["dataset", "scenario"]), "LLM (GPT-2)": ("llm", ["split"])}
    llm = pd.DataFrame()
    for label, (stage, cell_keys) in stages.items():
        runs = _runs(Path(args.results) / stage / "runs")
        if not len(runs):
            continue
        llm = runs if stage == "llm" else llm
        rows.append(_summary(cost_ratios(runs, cell_keys), label))
        for variant in sorted(set(runs.loc[(runs["method"] == "OFMU") & (runs["label"] != "OFMU"), "label"])):
            rows.append(_summary(cost_ratios(runs, cell_keys, method=variant), f"{label}, {variant}"))
    if len(llm):
        ok = llm[(llm["status"] == "ok") & (llm["checkpoint"] == llm["checkpoint"].max())]
        growth = ok[ok["method"].isin(["GradDiff", "OFMU"])].groupby(["method", "split"])["wall_seconds"].mean()
        print("LLM wall seconds per unlearning run by split (mean over seeds):")
        print(growth.unstack().round(2).to_markdown())
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
