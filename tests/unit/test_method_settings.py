"""config/methods/<Method>.yaml is the only place a method's settings are written: one file per registered
method, every key one the method's class accepts, every accepted key given a value; bad files and bad keys
fail with the file and the key named."""

from pathlib import Path

import pytest
import yaml

from ofmu.unlearning.methods import make_method
from ofmu.unlearning.settings import (
    DOMAINS, SettingsError, method_class, method_settings, methods_dir, registered_methods,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_registered_method_has_exactly_one_file_and_no_file_lacks_a_method():
    files = sorted(p.stem for p in (REPO / "config" / "methods").glob("*"))
    assert files == sorted(registered_methods())
    assert methods_dir() == REPO / "config" / "methods"


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "config" / "methods").glob("*.yaml")))
def test_every_key_in_a_file_is_accepted_and_every_accepted_key_has_a_value(name):
    spec = yaml.safe_load((REPO / "config" / "methods" / f"{name}.yaml").read_text())
    accepted = set(method_class(name).keys)
    assert set(spec["defaults"]) == accepted
    for domain in DOMAINS:
        assert set(spec.get(domain) or {}) <= accepted
    for domain in spec["domains"]:
        expected = {**spec["defaults"], **(spec.get(domain) or {})}
        assert make_method(name, domain).hparams == expected


def test_every_value_has_its_source_or_reason_on_its_line():
    for path in (REPO / "config" / "methods").glob("*.yaml"):
        lines = [l for l in path.read_text().splitlines() if l.startswith("  ") and ":" in l]
        undocumented = [l for l in lines if "#" not in l and not l.rstrip().endswith(":")]  # a block's header has no value
        assert undocumented == [], f"{path.name}: values without a comment: {undocumented}"


def test_domain_blocks_change_only_their_domain():
    assert make_method("GA", "llm").hparams["lr"] == 0.01 and make_method("GA", "vision").hparams["lr"] == 1e-4
    assert make_method("OFMU", "llm").hparams["inner_lr"] == 0.05


def _write(tmp_path, name, spec):
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


def test_bad_files_and_keys_are_named(tmp_path):
    good = yaml.safe_load((REPO / "config" / "methods" / "GA.yaml").read_text())
    d = _write(tmp_path, "GA", {**good, "defaults": {**good["defaults"], "learning_rate": 1.0}})
    with pytest.raises(SettingsError, match=r"GA.yaml.*unknown setting\(s\) \['learning_rate'\].*valid"):
        method_settings("GA", "vision", directory=d)
    missing = {k: v for k, v in good["defaults"].items() if k != "momentum"}
    d = _write(tmp_path, "GA", {**good, "defaults": missing, "llm": {}})
    with pytest.raises(SettingsError, match=r"no value for \['momentum'\]"):
        method_settings("GA", "vision", directory=d)
    d = _write(tmp_path, "GA", {**good, "sweeps": {}})
    with pytest.raises(SettingsError, match="unknown top-level key"):
        method_settings("GA", directory=d)
    with pytest.raises(SettingsError, match="no settings file for method 'GradDiff'"):
        method_settings("GradDiff", directory=d)
    with pytest.raises(SettingsError, match=r"does not run in the llm stage.*remove it from llm.methods"):
        method_settings("SalUn", "llm")
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) \['bta'\]"):
        method_settings("OFMU", "vision", {"bta": 0.0})


def test_a_replaced_value_keeps_the_kind_of_its_default(tmp_path):
    with pytest.raises(SettingsError, match=r"'beta' of method 'OFMU' must be a number.*got True"):
        method_settings("OFMU", "vision", {"beta": True})
    with pytest.raises(SettingsError, match=r"'outer_backtracking' .* must be a boolean"):
        method_settings("OFMU", "vision", {"outer_backtracking": 1})
    good = yaml.safe_load((REPO / "config" / "methods" / "GA.yaml").read_text())
    (tmp_path / "GA.yaml").write_text(yaml.safe_dump(good).replace("lr: 0.01", "lr: 1e-2"))
    assert yaml.safe_load((tmp_path / "GA.yaml").read_text())["llm"]["lr"] == "1e-2"  # YAML 1.1: text
    with pytest.raises(SettingsError, match=r"GA.yaml \('llm' block\).*'lr'.*write 1.0e-4"):
        method_settings("GA", "llm", directory=tmp_path)
    assert method_settings("GA", "vision", {"grad_clip": 1.0})["grad_clip"] == 1.0  # None default: any value
    assert method_settings("OFMU", "vision", {"inner_steps": 2, "beta": 0})["beta"] == 0  # int for float is fine
