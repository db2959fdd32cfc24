"""The cluster profile (workflow/profiles/slurm) against a real SLURM: a private one-node cluster runs one cell of
each stage of the smoke tier through the slurm executor plugin, every job is submitted to it, and the results equal
those of the local smoke run. Skipped, with the reason, only where the machine cannot run SLURM.

One cell per stage, not the whole smoke DAG (issue 20, item 7: the whole DAG, 159 SLURM jobs at ~7 s of
submission and polling each, took ~20 of the suite's 39 minutes): the theory table (every theory job), OFMU on the
vision random-forgetting cell and OFMU on the LLM forget split with its attacks (corpus, training, references,
sweep, selection, run: every kind of model job) -- 33 jobs. What it no longer runs on SLURM: the other methods
(the same rules with other wildcards), the class-wise cell, the sensitivity, first-order-fidelity and cost jobs,
and the table/figure/verdict rules, all of which the local smoke run covers."""

import importlib.util
import re
import subprocess

import pandas as pd
import pytest
from private_slurm import PARTITION, PrivateSlurm, unavailable_reason
from snakemake_runs import REPO, SMOKE, snakemake


REASON = unavailable_reason() or (None if importlib.util.find_spec("snakemake_executor_plugin_slurm") else
                                  "snakemake-executor-plugin-slurm is not installed (requirements.txt pins it)")
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

THEORY = ["paper_tables/tab1_theory_claims.csv"]
RUNS = ["results/vision/runs/digits/random/OFMU.csv", "results/llm/runs/forget10/OFMU.csv",
        "results/llm/runs/forget10/OFMU.attacks.csv"]
COSTS = ["wall_seconds", "peak_memory_mib"]  # measured, not computed: they differ between any two runs


@pytest.fixture
def cluster(tmp_path):
    slurm = PrivateSlurm(tmp_path / "slurm")
    try:
        try:
            slurm.start()
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:  # the daemons cannot run here
            logs = "".join(f"\n{f.name}: {f.read_text()[-600:]}" for f in sorted((slurm.base / "log").glob("*.log")))
            pytest.skip(f"this machine cannot start a one-node SLURM ({type(err).__name__}: {err}){logs}")
        yield slurm
    finally:
        slurm.stop()


@pytest.mark.slow
def test_smoke_tier_on_a_real_slurm_gives_the_local_metrics(cluster, smoke_run, tmp_path, capsys):
    local, local_out = smoke_run
    assert local_out.returncode == 0, local_out.stderr[-3000:]
    work = tmp_path / "on_slurm"
    work.mkdir()
    # the profile as a site uses it; the site's edit (its partition) given on the command line
    # the targets after "--": --configfile and --default-resources take several values and would swallow them
    out = snakemake(work, "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
                    "--default-resources", f"slurm_partition={PARTITION}", "--", *THEORY, *RUNS[:2], config=SMOKE,
                    env=cluster.env, cores=None, timeout=3600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:] + (cluster.base / "log" / "slurmctld.log").read_text()[-2000:]

    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    planned = int(re.search(r"^total\s+(\d+)$", log, re.M).group(1))
    assert planned >= 30 and len(submitted) == planned, (len(submitted), planned)  # file targets: no local rule
    # the cluster's own record: each of those SLURM jobs ran to exit status 0
    controller = (cluster.base / "log" / "slurmctld.log").read_text()
    succeeded = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", controller))
    assert succeeded == {slurm_id for _, slurm_id in submitted}
    for name in THEORY:
        assert (work / name).read_bytes() == (local / name).read_bytes(), name
    for name in RUNS:  # every computed column (metrics, settings, counts, hparams, code version) equal
        on_slurm, here = (pd.read_csv(d / name).drop(columns=COSTS, errors="ignore") for d in (work, local))
        pd.testing.assert_frame_equal(on_slurm, here, check_exact=True, obj=name)
    with capsys.disabled():  # the evidence, in the test log even when the test passes
        print(f"\n[slurm] {len(submitted)} of {planned} jobs submitted to the private SLURM and completed there with "
              f"status 0 (SLURM job ids {min(map(int, succeeded))}..{max(map(int, succeeded))}).\n[slurm] equal to "
              f"the local smoke run's: {', '.join(THEORY)} byte for byte; {', '.join(RUNS)} in every column but "
              f"{', '.join(COSTS)}")
