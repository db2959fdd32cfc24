"""Pareto fronts, hypervolume and the selection rule, against hand computations and brute force."""

import numpy as np
import pandas as pd
import pytest

from ofmu.unlearning.fronts import SelectionRule, hypervolume, pareto_mask, select


def brute_force_mask(p):
    p = np.asarray(p, dtype=float)
    return np.array([not any((q >= x).all() and (q > x).any() for q in p) for x in p])


def test_pareto_mask_by_hand_and_against_brute_force():
    pts = [(1, 5), (2, 4), (2, 2), (3, 1), (0, 5), (2, 4), (1, 1)]
    # (0, 5) is dominated by (1, 5); (2, 2) by (2, 4); (1, 1) by everything above; the duplicate (2, 4) stays
    assert pareto_mask(pts).tolist() == [True, True, False, True, False, True, False]
    rng = np.random.default_rng(0)
    for n in (1, 2, 10, 200):
        p = rng.integers(0, 6, size=(n, 2)).astype(float)  # many ties and duplicates
        np.testing.assert_array_equal(pareto_mask(p), brute_force_mask(p))


def test_hypervolume_by_hand_and_against_a_grid_count():
    # staircase (3,1) (2,2) (1,3) above (0,0): 3*1 + 2*1 + 1*1 = 6
    assert hypervolume([(3, 1), (2, 2), (1, 3), (1, 1)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume([(3, 1), (2, 2), (1, 3)], (1, 0)) == pytest.approx(2 * 1 + 1 * 1)  # x = 1 adds nothing
    assert hypervolume([(-1, 5)], (0, 0)) == 0.0 and hypervolume(np.zeros((0, 2)), (0, 0)) == 0.0
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, size=(15, 2))
    grid = (np.arange(400) + 0.5) / 400  # cell centres of a 400 x 400 grid on [0, 1]^2
    gx, gy = np.meshgrid(grid, grid)
    covered = np.zeros_like(gx, dtype=bool)
    for x, y in p:
        covered |= (gx <= x) & (gy <= y)
    assert hypervolume(p, (0, 0)) == pytest.approx(covered.mean(), abs=5e-3)


def test_bad_points_are_named():
    with pytest.raises(ValueError, match="shape"):
        pareto_mask([1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        hypervolume([(np.nan, 1)], (0, 0))


def rows(**columns):
    return pd.DataFrame(columns)


def test_selection_optimizes_the_metric_with_ties_broken_then_config_order():
    r = rows(setting=["a", "b", "c", "d"], gap=[0.3, 0.1, 0.1, 0.2], ua=[5, 7, 6, 9])
    assert select(r, SelectionRule("gap", "min"))[0] == 1  # b and c tie: config order
    assert select(r, SelectionRule("gap", "min", tie_break="ua", tie_direction="max"))[0] == 1
    assert select(r, SelectionRule("gap", "min", tie_break="ua", tie_direction="min"))[0] == 2
    assert select(r, SelectionRule("ua", "max"))[0] == 3


def test_selection_utility_floor_against_the_reference():
    r = rows(fq=[0.9, 0.5, 0.2, 0.95], mu=[0.2, 0.5, 0.6, 0.1], prob=[0.1, 0.3, 0.2, 0.05])
    rule = SelectionRule("fq", "max", utility="mu", utility_fraction=0.9, utility_reference="Finetuned",
                         tie_break="prob")
    idx, reason = select(r, rule, {"Finetuned": {"mu": 0.55}})  # floor 0.495: rows 1 and 2 compete
    assert idx == 1 and "0.495" in reason
    idx, reason = select(r, rule, {"Finetuned": {"mu": 0.9}})  # nobody keeps 0.81: highest utility
    assert idx == 2 and "no row keeps" in reason
    with pytest.raises(ValueError, match="Finetuned"):
        select(r, rule, {"Retain": {"mu": 0.5}})


def test_bad_rules_get_one_clear_error():
    with pytest.raises(ValueError, match="direction"):
        SelectionRule("fq", "maximum")
    with pytest.raises(ValueError, match="utility_reference"):
        SelectionRule("fq", "max", utility="mu")
    with pytest.raises(ValueError, match="utility_fraction"):
        SelectionRule("fq", "max", utility="mu", utility_reference="Finetuned", utility_fraction=0)
    with pytest.raises(ValueError, match="unknown selection keys"):
        SelectionRule.from_dict({"metric": "fq", "seed": 3})
    with pytest.raises(ValueError, match="'metric'"):
        SelectionRule.from_dict({"direction": "max"})
    with pytest.raises(ValueError, match=r"metrics \['forget_quality'\].*valid"):
        SelectionRule("forget_quality").check_metrics(["UA", "RA"])
    with pytest.raises(ValueError, match="no finished run"):
        select(pd.DataFrame({"gap": []}), SelectionRule("gap"))
