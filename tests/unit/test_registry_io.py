import json

import pytest

from ofmu.io import atomic_path, provenance, write_json_atomic
from ofmu.registry import Registry, UnknownNameError


def test_unknown_name_lists_valid_names():
    reg = Registry("method")
    reg.register("GA")(object)
    reg.register("OFMU")(object)
    with pytest.raises(UnknownNameError, match=r"unknown method 'GD'; valid methods: GA, OFMU"):
        reg.get("GD")


def test_duplicate_registration_is_an_error():
    reg = Registry("solver")
    reg.register("x")(object)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("x")(object)


def test_atomic_write_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out" / "result.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_replaces_old_content_only_on_success(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})  # not serializable: old file must survive intact
    assert json.loads(target.read_text()) == {"a": 1}


def test_provenance_carries_seed_config_hash_and_code_version():
    info = provenance({"beta": 0.5}, seed=3)
    assert info["seed"] == 3 and info["config"] == {"beta": 0.5}
    assert info["config_hash"] == provenance({"beta": 0.5})["config_hash"] != provenance({"beta": 0.6})["config_hash"]
    assert info["code_version"] and info["versions"]["torch"].startswith("2.14.1")


def test_a_job_that_fails_on_bad_input_prints_one_error_line_and_keeps_the_traceback_in_its_log(tmp_path):
    import subprocess
    import sys

    def job(raise_):
        code = f"from ofmu.logs import log_to\nwith log_to({str(tmp_path / 'job.log')!r}):\n    print('working')\n    {raise_}\n"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    out = job("raise ValueError('vision.lr = -1: expected a number > 0')")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[0] == "error: ValueError: vision.lr = -1: expected a number > 0"
    log = (tmp_path / "job.log").read_text()
    assert "working" in log and "Traceback" in log and "expected a number > 0" in log
    bug = job("{}['missing']")  # a bug, not bad input: its traceback is what a developer needs
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "KeyError" in bug.stderr
