"""Provenance of a pipeline run: code commit, config hash, library versions, wall time per rule."""

from __future__ import annotations

import csv
from pathlib import Path

from ofmu.io import provenance


def collect_provenance(config: dict, benchmarks_dir: str | Path, outputs: list[str]) -> dict:
    """Sum the wall seconds of every benchmark file (Snakemake `benchmark:` TSVs) per rule."""
    per_rule: dict[str, float] = {}
    root = Path(benchmarks_dir)
    for tsv in sorted(root.rglob("*.tsv")):  # <rule>/<job>.tsv; a job name may hold a folder (vision cells)
        with open(tsv) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        rule = tsv.relative_to(root).parts[0]
        if rows and rule != tsv.name:
            per_rule[rule] = per_rule.get(rule, 0.0) + float(rows[-1]["s"])
    info = provenance(config)
    info["wall_seconds_per_rule"] = {k: round(v, 2) for k, v in sorted(per_rule.items())}
    info["outputs"] = sorted(outputs)
    return info
