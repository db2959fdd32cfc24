"""`python -m ofmu`: the solver run agrees with a hand computation; bad names give one clear error."""

import json
import subprocess
import sys

import numpy as np

from ofmu.cli import main
from ofmu.theory.problems import make_problem


def test_solve_reports_the_distance_to_the_bilevel_optimum(capsys):
    # penalty GD for 3 iterations, recomputed by hand in numpy
    assert main(["solve", "--problem", "quadratic_strong", "--solver", "penalty_gd", "--iterations", "3",
                 "--set", "outer_lr=0.05", "--set", "rho0=2"]) == 0
    report = json.loads(capsys.readouterr().out)
    p = make_problem("quadratic_strong", 0)
    x = p.initial_point()
    for _ in range(3):
        x = x - 0.05 * (p.retain_gradient(x) + 2 * 2.0 * p.A @ (p.A @ x - p.b))
    theta_star, _ = p.bilevel_reference()
    assert abs(report["distance_to_bilevel_optimum"] - np.linalg.norm(x - theta_star)) < 1e-10


def test_unknown_solver_lists_the_valid_ones(capsys):
    assert main(["solve", "--problem", "quadratic_strong", "--solver", "adam"]) == 2
    assert "valid solvers: ofmu, penalty_gd, scalarized" in capsys.readouterr().err


def test_bad_setting_names_the_key(capsys):
    assert main(["solve", "--problem", "logistic_ridge", "--solver", "ofmu", "--set", "gamma=0.5"]) == 2
    assert "'gamma'" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "ofmu", "--help"], capture_output=True, text=True, check=True)
    assert "check" in out.stdout and "solve" in out.stdout


def test_settings_of_the_wrong_kind_or_range_are_named_not_run(capsys):
    cases = [(["--solver", "ofmu", "--set", "beta=true"], "'beta' = True: expected a number"),
             (["--solver", "ofmu", "--set", "beta=abc"], "'beta' = 'abc': expected a number"),
             (["--solver", "ofmu", "--set", "outer_backtracking=1"], "'outer_backtracking' = 1: expected true or false"),
             (["--solver", "scalarized", "--set", "weight=0.5", "--set", "lr=0"], "'lr' = 0: expected a finite number > 0"),
             (["--solver", "scalarized", "--set", "weight=-1", "--set", "lr=0.1"], "'weight' = -1: expected a finite number >= 0"),
             (["--solver", "scalarized", "--set", "weight=1", "--set", "lr=Infinity"], "'lr' = inf: expected a finite"),
             (["--solver", "ofmu", "--set", "rho0=Infinity"], "'rho0' = inf: expected a finite number"),
             (["--solver", "ofmu", "--set", "beta=1e400"], "'beta' = inf: expected a finite number"),
             (["--solver", "scalarized", "--set", "weight=1", "--set", "lr=1e3"], "diverged: lower lr or weight"),
             (["--solver", "ofmu", "--iterations", "0"], "--iterations must be >= 1, got 0")]
    for args, message in cases:
        assert main(["solve", "--problem", "quadratic_strong", *args]) == 2, args
        assert message in capsys.readouterr().err, args


def test_the_scalarized_method_rejects_a_bad_step_or_weight():
    import pytest

    from ofmu.unlearning.methods import make_method

    for bad in ({"lr": -0.1}, {"weight": -0.5}):
        with pytest.raises(ValueError, match="scalarized setting"):
            make_method("Scalarized", "vision", **bad)
    with pytest.raises(ValueError, match="'lr' of method 'Scalarized' must be a number"):
        make_method("Scalarized", "vision", lr=True)


def test_compare_names_each_differing_metric_cell_and_ignores_the_cost_tables(tmp_path, capsys):
    import pandas as pd

    ref, run = tmp_path / "ref", tmp_path / "run"
    for d in (ref, run):
        d.mkdir()
        pd.DataFrame({"dataset": ["mnist", "mnist"], "label": ["GA", "OFMU"], "UA": ["1.00 ± 0.10", "2.00 ± 0.20"]}).to_csv(
            d / "tab2_vision_random.csv", index=False)
        pd.DataFrame({"claim": ["C1"], "status": ["PASS"]}).to_csv(d / "tab1_theory_claims.csv", index=False)
        pd.DataFrame({"stage": ["vision"], "cell": ["mnist/random"], "metric": ["Avg. Gap"], "baseline": ["GA"],
                      "OFMU - baseline (mean)": ["0.5"], "decision": ["no detectable difference"]}).to_csv(
            d / "tab10_verdict.csv", index=False)
    pd.DataFrame({"label": ["GA"], "RTE (s)": ["1.0"]}).to_csv(ref / "tab2_vision_random_costs.csv", index=False)
    pd.DataFrame({"label": ["GA"], "RTE (s)": ["9.9"]}).to_csv(run / "tab2_vision_random_costs.csv", index=False)
    assert main(["compare", str(run), str(ref)]) == 0  # timing differs, metrics do not
    assert "level: bit-identical" in capsys.readouterr().out

    def edit(name, row, column, value):
        table = pd.read_csv(run / name, dtype=str, keep_default_na=False)
        table.loc[row, column] = value
        table.to_csv(run / name, index=False)

    edit("tab2_vision_random.csv", 1, "UA", "2.01 ± 0.20")  # one printed digit: within the tolerance
    assert main(["compare", str(run), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "tab2_vision_random.csv: row 2 (mnist | OFMU), column 'UA': '2.01 ± 0.20' vs '2.00 ± 0.20'" in out
    assert "level: equal within tolerance" in out and "costs" not in out
    assert main(["compare", "--strict", str(run), str(ref)]) == 1
    capsys.readouterr()

    edit("tab2_vision_random.csv", 1, "UA", "2.50 ± 0.20")  # 25%: beyond it, the decisions still equal
    edit("tab10_verdict.csv", 0, "OFMU - baseline (mean)", "0.9")
    assert main(["compare", str(run), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "level: verdict unchanged" in out and "outside tolerance: tab2_vision_random.csv: row 2" in out

    edit("tab10_verdict.csv", 0, "decision", "OFMU worse")
    assert main(["compare", str(run), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "level: verdict changed" in out
    assert "verdict: vision | mnist/random | Avg. Gap | GA: 'OFMU worse' vs 'no detectable difference'" in out

    (run / "tab1_theory_claims.csv").unlink()
    assert main(["compare", str(run), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "tab1_theory_claims.csv: missing from" in out and "level: not comparable" in out


def test_cells_within_tolerance_by_hand():
    from ofmu.tables import cells_within

    assert cells_within("2.01 ± 0.20", "2.00 ± 0.20", 0.0)       # one unit of the last digit
    assert not cells_within("2.02 ± 0.20", "2.00 ± 0.20", 0.0)
    assert cells_within("1.2e-04 [5e-05, 1.7e-04]", "1.25e-04 [5e-05, 1.7e-04]", 0.05)
    assert not cells_within("1.2e-04", "5.2e-05", 0.05)
    assert not cells_within("PASS", "FAIL", 1.0) and not cells_within("3 (1 collapsed)", "3", 1.0)
    # counts, settings and words match exactly; a sign is not read out of a range
    for a, b in [("0", "1"), ("3 (1 collapsed)", "3 (2 collapsed)"), ("lr=0.003", "lr=0.004"),
                 ("seeds 0-2", "seeds 0-3"), ("24 of 24", "23 of 24")]:
        assert not cells_within(a, b, 1.0), (a, b)
    # "1e-05" and "2e-05" may both be printings of 1.5e-05 (one unit of the last digit); "3e-05" may not
    assert cells_within("-0.50", "-0.51", 0.0) and cells_within("1e-05", "2e-05", 0.0)
    assert not cells_within("1e-05", "3e-05", 0.05)
    assert cells_within("5.2e-05 [5.2e-05, 0.00017]", "5.3e-05 [5.2e-05, 0.00017]", 0.05)
