"""The cluster profile (workflow/profiles/slurm) against a real SLURM: a private one-node cluster runs the smoke
tier through the slurm executor plugin, every job is submitted to it, and the metric tables equal those of the
local smoke run byte for byte. Skipped, with the reason, only where the machine cannot run SLURM."""

import importlib.util
import re
import subprocess

import pytest
from private_slurm import PARTITION, PrivateSlurm, unavailable_reason
from snakemake_runs import REPO, SMOKE, snakemake

from ofmu.tables import compare_tables, metric_tables

REASON = unavailable_reason() or (None if importlib.util.find_spec("snakemake_executor_plugin_slurm") else
                                  "snakemake-executor-plugin-slurm is not installed (requirements.txt pins it)")
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))


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
    out = snakemake(work, "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
                    "--default-resources", f"slurm_partition={PARTITION}", config=SMOKE, env=cluster.env,
                    cores=None, timeout=3600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:] + (cluster.base / "log" / "slurmctld.log").read_text()[-2000:]

    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    planned = int(re.search(r"^total\s+(\d+)$", log, re.M).group(1))
    assert len(submitted) == planned - 1, (len(submitted), planned)  # every job but the target rule `all`
    # the cluster's own record: each of those SLURM jobs ran to exit status 0
    controller = (cluster.base / "log" / "slurmctld.log").read_text()
    succeeded = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", controller))
    assert succeeded == {slurm_id for _, slurm_id in submitted}
    assert compare_tables(work / "paper_tables", local / "paper_tables") == []
    with capsys.disabled():  # the evidence, in the test log even when the test passes
        print(f"\n[slurm] {len(submitted)} of {planned} jobs submitted to the private SLURM and completed there with "
              f"status 0 (SLURM job ids {min(map(int, succeeded))}..{max(map(int, succeeded))}); the target rule "
              f"`all` ran locally.\n[slurm] metric tables equal to the local smoke run's, byte for byte: "
              f"{', '.join(metric_tables(local / 'paper_tables'))}")
    assert sorted(p.name for p in (work / "figures").glob("*.png")) == sorted(
        p.name for p in (local / "figures").glob("*.png"))
