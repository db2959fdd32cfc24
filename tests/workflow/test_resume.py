"""`make` after `kill -9` of a running `make` finishes the run with no manual step (README "Resume"), and the
resumed run's metrics equal an uninterrupted run's. The theory stage of the smoke tier keeps it short."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path) -> Path:
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    path = tmp_path / "theory_smoke.yaml"
    path.write_text(yaml.safe_dump({"tier": "smoke", "stages": ["theory"], "theory": smoke["theory"]}))
    return path


def _make(workdir: Path, config: Path, **popen):
    # `-o data`: the theory stage needs no datasets (the data target installs them)
    cmd = ["make", "--no-print-directory", "-C", str(REPO), "-o", "data", "all", f"WORKDIR={workdir}",
           f"SNAKEMAKE_ARGS=--configfile {config}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _wait_until_gone(group: int, timeout: float = 60):
    """Until every process of the killed group has exited. run.wait() reaps `make` alone: flock, a sibling in the
    group, may still be exiting, with the lock still held, when the resumed `make` starts a millisecond later (CI
    saw that on a loaded machine). A user who types `make` after a kill -9 is never that fast."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


@pytest.mark.skipif(subprocess.run(["which", "flock"], capture_output=True).returncode != 0,
                    reason="flock (util-linux) is not installed: `make` cannot tell a stale lock from a live one")
def test_make_after_kill_9_resumes_and_gives_the_uninterrupted_metrics(tmp_path):
    config = _config(tmp_path)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    run = _make(killed, config, start_new_session=True)
    deadline = time.time() + 300
    while not list((killed / "results" / "theory" / "runs").glob("*/*.csv")):  # mid-run: one claim done
        assert run.poll() is None and time.time() < deadline, run.stdout.read() if run.poll() is not None else "timeout"
        time.sleep(0.5)
    os.killpg(run.pid, signal.SIGKILL)  # make, its shell, flock, snakemake and the running jobs
    run.wait()
    _wait_until_gone(run.pid)
    assert list((killed / ".snakemake" / "locks").iterdir()), "the kill left no Snakemake lock: not the case tested"
    assert not (killed / "paper_tables" / "tab1_theory_claims.csv").exists()

    resumed = _make(killed, config)
    out = resumed.communicate(timeout=900)[0]
    assert resumed.returncode == 0, out[-3000:]
    uninterrupted = _make(clean, config)
    out = uninterrupted.communicate(timeout=900)[0]
    assert uninterrupted.returncode == 0, out[-3000:]
    table = "paper_tables/tab1_theory_claims.csv"
    assert (killed / table).read_bytes() == (clean / table).read_bytes()


def test_a_second_make_on_a_running_workdir_stops_with_a_clear_error(tmp_path):
    config = _config(tmp_path)
    first = _make(tmp_path / "w", config, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "w" / ".snakemake" / "make.lock").exists():
            assert time.time() < deadline
            time.sleep(0.2)
        time.sleep(1)
        second = _make(tmp_path / "w", config)
        out = second.communicate(timeout=120)[0]
        assert second.returncode != 0 and "another 'make' is running the pipeline" in out, out
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
