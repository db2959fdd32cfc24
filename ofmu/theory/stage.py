"""File-level entry points of the theory stage, shared by the Snakemake scripts and ``python -m ofmu``."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from ofmu.io import provenance, write_csv_atomic, write_json_atomic
from ofmu.theory.verdicts import check_claim, check_numbers, load_claims


class ClaimFailed(RuntimeError):
    """At least one verdict of a claim failed; the message lists which."""


def claim_spec(claims_file: str | Path, claim_id: str, overrides: dict | None = None) -> dict:
    """The spec of one claim from claims.yaml, with per-claim overrides (e.g. the smoke tier) applied."""
    claims = load_claims(claims_file)
    if claim_id not in claims:
        raise ValueError(f"claim {claim_id!r} is not in {claims_file}; claims there: {', '.join(claims)}")
    spec = copy.deepcopy(claims[claim_id])
    for key, value in (overrides or {}).get(claim_id, {}).items():
        if key not in spec:
            raise ValueError(f"override theory.overrides.{claim_id}.{key}: {claim_id} has no key {key!r}; "
                             f"its keys: {sorted(spec)}")
        spec[key] = value
    check_numbers(spec, f"theory.overrides.{claim_id} (after overrides)")
    return spec


def run_claim_to_csv(claim_id: str, spec: dict, family: str, seeds: list[int], out_csv: str | Path) -> pd.DataFrame:
    """Run one claim on one family for every seed; write tidy rows (CSV + JSON sidecar) atomically."""
    from ofmu.theory.claims import run_claim  # torch + cvxpy: only the compute step pays for them
    rows = pd.concat([run_claim(claim_id, spec, family, seed) for seed in seeds], ignore_index=True)
    write_csv_atomic(out_csv, rows)
    write_json_atomic(Path(out_csv).with_suffix(".json"),
                      provenance({"claim": claim_id, "family": family, "spec": spec, "seeds": seeds}, seed=seeds))
    return rows


def check_claim_files(claim_id: str, spec: dict, run_csvs: list[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """Verdicts for one claim over all its run files; raises ClaimFailed (after logging) if any fails."""
    rows = pd.concat([pd.read_csv(p, keep_default_na=True, dtype={"group": str}).fillna({"group": ""})
                      for p in run_csvs], ignore_index=True)
    verdicts = check_claim(claim_id, spec, rows)
    failed = verdicts[~verdicts["passed"]]
    if len(failed):
        raise ClaimFailed(f"claim {claim_id} failed {len(failed)} of {len(verdicts)} checks:\n"
                          + failed.to_string(index=False))
    write_csv_atomic(out_csv, verdicts)
    return verdicts
