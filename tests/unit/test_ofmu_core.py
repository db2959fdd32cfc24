"""The OFMU iteration against hand-derived updates on a quadratic problem, config and error handling."""

import math

import numpy as np
import pytest
import torch

from ofmu.core.ofmu import NonFiniteError, OFMUConfig, ofmu_iteration, rho_schedule, run_ofmu
from ofmu.core.solvers import solve_scalarized
from ofmu.theory.problems import make_problem


@pytest.fixture
def quad():
    return make_problem("quadratic_strong", 0)


def _params(theta):
    return [torch.tensor(theta, dtype=torch.float64, requires_grad=True)]


def _grad_lr(p, theta):
    return p.X_r.T @ (p.X_r @ theta - p.y_r) / len(p.y_r) + p.mu * theta


def test_one_iteration_matches_hand_update(quad):
    """T inner steps theta += eta_in (b - A theta); then theta -= eta_out (grad L_r + 2 rho A (A theta - b))."""
    theta = quad.initial_point()
    cfg = OFMUConfig(beta=0.0, rho0=2.0, inner_steps=3, inner_lr=0.4, outer_lr=0.05)
    params = _params(theta)
    f, r = quad.torch_objectives()
    ofmu_iteration(params, lambda: (f, r), cfg, rho=2.0)
    A, b = quad.A, quad.b
    x = theta.copy()
    for _ in range(3):
        x = x + 0.4 * (b - A @ x)
    x = x - 0.05 * (_grad_lr(quad, x) + 2 * 2.0 * A @ (A @ x - b))
    np.testing.assert_allclose(params[0].detach().numpy(), x, rtol=1e-12, atol=1e-12)


def test_anchor_point_takes_grad_F_at_theta_k(quad):
    theta = quad.initial_point()
    cfg = OFMUConfig(beta=0.0, rho0=1.0, inner_steps=2, inner_lr=0.3, outer_lr=0.05, outer_point="anchor")
    params = _params(theta)
    f, r = quad.torch_objectives()
    ofmu_iteration(params, lambda: (f, r), cfg, rho=1.0)
    A, b = quad.A, quad.b
    x = theta.copy()
    for _ in range(2):
        x = x + 0.3 * (b - A @ x)
    x = x - 0.05 * (_grad_lr(quad, theta) + 2 * A @ (A @ theta - b))
    np.testing.assert_allclose(params[0].detach().numpy(), x, rtol=1e-12, atol=1e-12)


def test_rho_grows_geometrically_up_to_the_cap():
    cfg = OFMUConfig(rho0=1.0, gamma=2.0, rho_max=5.0)
    assert [rho_schedule(cfg, k) for k in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_diagnostics_hold_the_quantities_of_the_paper(quad):
    params = _params(quad.initial_point())
    f, r = quad.torch_objectives()
    hist = run_ofmu(params, lambda: (f, r), OFMUConfig(beta=0.3, inner_steps=1, inner_lr=0.1, outer_lr=0.01), 2)
    assert set(hist[0]) >= {"L_f", "L_r", "F", "grad_Lf_norm", "grad_Lr_norm", "cos", "grad_phi_norm", "rho"}
    # F = L_r + rho ||grad Phi||^2 must hold between the reported numbers
    d = hist[1]
    assert d["F"] == pytest.approx(d["L_r"] + d["rho"] * d["grad_phi_norm"] ** 2, rel=1e-12)
    assert -1 <= d["cos"] <= 1


def test_armijo_step_gives_sufficient_decrease(quad):
    params = _params(quad.initial_point())
    f, r = quad.torch_objectives()
    cfg = OFMUConfig(beta=0.5, inner_steps=0, outer_lr=10.0, outer_backtracking=True)  # far too large a step
    hist = run_ofmu(params, lambda: (f, r), cfg, 6)
    for a, b in zip(hist, hist[1:]):
        assert b["F"] <= a["F"] - 0.5 * a["outer_lr"] * a["grad_F_norm"] ** 2 + 1e-12
    assert hist[0]["outer_lr"] < 10.0
    assert not any(h["line_search_failed"] for h in hist)


def test_a_line_search_without_decrease_is_a_failed_step_not_a_zero_step(quad, monkeypatch):
    # an ascent direction (grad F negated: a wrong gradient) can never pass Armijo's test: the step must be
    # reported failed and not taken, however small the trial steps get
    import ofmu.core.ofmu as solver
    exact = solver.penalty_grad
    monkeypatch.setattr(solver, "penalty_grad",
                        lambda *a, **k: (lambda g, d: (tuple(-x for x in g), d))(*exact(*a, **k)))
    theta = quad.initial_point()
    params = _params(theta)
    f, r = quad.torch_objectives()
    cfg = OFMUConfig(beta=0.5, inner_steps=0, outer_lr=1.0, outer_backtracking=True)
    with pytest.warns(solver.LineSearchWarning, match="no decrease of F"):
        hist = run_ofmu(params, lambda: (f, r), cfg, 2)
    assert [h["line_search_failed"] for h in hist] == [1.0, 1.0]
    assert [h["outer_lr"] for h in hist] == [0.0, 0.0]
    np.testing.assert_array_equal(params[0].detach().numpy(), theta)


def test_scalarized_step_matches_hand_update(quad):
    theta = quad.initial_point()
    params = _params(theta)
    f, r = quad.torch_objectives()
    solve_scalarized(params, lambda: (f, r), {"weight": 2.0, "lr": 0.1}, 1)
    grad_lf = quad.b - quad.A @ theta  # grad of -1/(2n)||X_f theta - y||^2
    expected = theta - 0.1 * (_grad_lr(quad, theta) - 2.0 * grad_lf)
    np.testing.assert_allclose(params[0].detach().numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("key,value,expected", [
    ("gamma", 0.5, "gamma"), ("inner_steps", -1, "inner_steps"), ("outer_grad", "approx", "outer_grad"),
    ("outer_point", "middle", "outer_point"), ("inner_lr", 0.0, "inner_lr"),
])
def test_bad_config_value_names_the_key(key, value, expected):
    with pytest.raises(ValueError, match=f"'{expected}'"):
        OFMUConfig(**{key: value})


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ValueError, match="unknown OFMU config key.*'betta'.*valid keys"):
        OFMUConfig.from_dict({"betta": 1.0})


def test_divergence_stops_with_a_clear_message(quad):
    params = _params(quad.initial_point())
    f, r = quad.torch_objectives()
    with pytest.raises(NonFiniteError, match="lower outer_lr"):
        run_ofmu(params, lambda: (f, r), OFMUConfig(rho0=100.0, inner_steps=0, outer_lr=100.0), 500)


def test_nan_input_is_reported(quad):
    theta = quad.initial_point()
    theta[0] = math.nan
    f, r = quad.torch_objectives()
    with pytest.raises(NonFiniteError, match="non-finite"):
        run_ofmu(_params(theta), lambda: (f, r), OFMUConfig(inner_steps=1), 1)
