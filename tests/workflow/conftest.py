"""The smoke tier run once per session and shared: the end-to-end checks, the HTML report and the SLURM run
(whose metrics must equal this local run's) all read it."""

import pytest
from snakemake_runs import SMOKE, snakemake


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """(workdir, completed process) of the smoke tier run locally on 2 cores."""
    work = tmp_path_factory.mktemp("smoke") / "ok"
    work.mkdir()
    return work, snakemake(work, config=SMOKE)
