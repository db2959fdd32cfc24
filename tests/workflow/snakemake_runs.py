"""Running the pipeline from tests: the repository's Snakefile in a work folder, offline."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "config" / "smoke.yaml"


def snakemake(workdir, *args, config=None, env=None, cores=2, **run):
    """``python -m snakemake`` on the repository's Snakefile in ``workdir`` (offline, as the Makefile runs it)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    cmd += ["--cores", str(cores)] if cores else []
    cmd += ["--configfile", str(config)] if config is not None else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=workdir, env=env, **run)
