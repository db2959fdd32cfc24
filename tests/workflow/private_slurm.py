"""A private one-node SLURM cluster for tests: munged, slurmctld and slurmd from Debian's packages, with every
file (config, munge key and socket, state, logs, pid files) under one folder and its own ports, so it touches
nothing under /etc, /run or /var and meets no other cluster on the machine. Only the daemons it starts are
stopped, by the pid files they wrote.

Clients reach it through ``SLURM_CONF`` (see ``env``). The slurm executor plugin's job step
(snakemake-executor-plugin-slurm-jobstep 0.6.1) drops ``SLURM_CONF`` from the environment of the ``srun`` it
starts inside each job, so ``bin/srun`` here, first on ``PATH``, puts it back: a site whose slurm.conf is not at
the compiled-in default path needs the same."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ["munged", "mungekey", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "scancel", "sinfo"]
PARTITION = "ofmutest"


def unavailable_reason() -> str | None:
    """Why this machine cannot run the private cluster, or None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root: munged and slurmd run as root in the private cluster"
    missing = [b for b in DAEMONS if shutil.which(b) is None]
    if missing:
        return (f"SLURM/munge programs missing ({', '.join(missing)}): `make test` installs them with apt "
                "(slurmctld slurmd munge) where apt is available")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (stopped daemons linger as zombies until PID 1 reaps them)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


class PrivateSlurm:
    def __init__(self, base: Path):
        self.base = Path(base)
        self.conf = self.base / "etc" / "slurm.conf"
        # munged wants every folder above its socket open to all (o+x), which a test's tmp_path is not: the
        # socket gets a folder of its own under the system's temporary folder, removed by stop()
        self.socket_dir = Path(tempfile.mkdtemp(prefix="ofmu-munge-"))
        self.socket = self.socket_dir / "munge.sock"
        self.pid_files = {"slurmd": self.base / "slurmd.pid", "slurmctld": self.base / "slurmctld.pid",
                          "munged": self.socket_dir / "munged.pid"}

    @property
    def env(self) -> dict:
        """A clean environment for clients of this cluster (no SLURM_*/SBATCH_* of an outer cluster)."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SNAKEMAKE_"))}
        return {**keep, "SLURM_CONF": str(self.conf), "PATH": f"{self.base / 'bin'}:{keep.get('PATH', '')}"}

    def _run(self, *cmd, **kw):
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=60, **kw)

    def start(self, timeout: float = 30.0) -> None:
        b = self.base
        for d in ["etc", "munge", "state/ctld", "state/d", "log", "bin"]:
            (b / d).mkdir(parents=True, exist_ok=True)
        (b / "munge").chmod(0o700)
        self.socket_dir.chmod(0o755)
        key = b / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        subprocess.run(["munged", f"--socket={self.socket}", f"--key-file={key}",
                        f"--pid-file={self.pid_files['munged']}", f"--seed-file={b / 'munge' / 'munged.seed'}",
                        f"--log-file={b / 'log' / 'munged.log'}"], check=True, capture_output=True)
        host = socket.gethostname().split(".")[0]
        memory = int(re.search(r"RealMemory=(\d+)", self._run("slurmd", "-C").stdout).group(1))
        (b / "etc" / "plugstack.conf").write_text("")
        self.conf.write_text("\n".join([
            "ClusterName=ofmutest", f"SlurmctldHost={host}", f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}", "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}", "MpiDefault=none", "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none", "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory", "SlurmUser=root", "SlurmdUser=root",
            f"StateSaveLocation={b / 'state/ctld'}", f"SlurmdSpoolDir={b / 'state/d'}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}", f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"SlurmctldLogFile={b / 'log/slurmctld.log'}", f"SlurmdLogFile={b / 'log/slurmd.log'}",
            f"PlugStackConfig={b / 'etc/plugstack.conf'}", "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none", "JobCompType=jobcomp/none",
            "MinJobAge=300",  # squeue (the profile's status command) sees a finished job this long
            "ReturnToService=2",
            f"NodeName={host} CPUs={os.cpu_count()} RealMemory={memory} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""]))
        srun = b / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF={self.conf}\nexec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)
        for daemon in ["slurmctld", "slurmd"]:
            self._run(daemon, check=True)
        deadline = time.time() + timeout
        while self._run("sinfo", "-h", "-o", "%t").stdout.strip() != "idle":
            if time.time() > deadline:
                raise RuntimeError(f"the private SLURM node is not idle after {timeout} s: {self._run('sinfo').stdout}"
                                   f"{(b / 'log/slurmctld.log').read_text()[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Cancel what is left in the partition, then stop slurmd, slurmctld and munged by their pid files."""
        if self.conf.exists() and self.pid_files["slurmctld"].exists():
            self._run("scancel", "--partition", PARTITION)
        for names in (["slurmd", "slurmctld"], ["munged"]):
            pids = [int(self.pid_files[n].read_text()) for n in names if self.pid_files[n].exists()]
            pids = [p for p, n in zip(pids, names) if _alive(p) and n in _command(p)]  # never a reused pid
            for pid in pids:
                os.kill(pid, 15)
            deadline = time.time() + 20
            while any(_alive(p) for p in pids) and time.time() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
