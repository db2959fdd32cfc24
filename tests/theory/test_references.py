"""cvxpy references against independent closed forms, and refusal of non-optimal solves."""

import cvxpy as cp
import numpy as np
import pytest

from ofmu.registry import PROBLEMS, UnknownNameError
from ofmu.theory.problems import ReferenceError, make_problem


@pytest.mark.parametrize("seed", [0, 1])
def test_penalized_reference_solves_the_normal_equations(seed):
    p = make_problem("quadratic_strong", seed)
    rho = 7.0
    # F = 1/(2n)||X_r t - y_r||^2 + mu/2 ||t||^2 + rho ||A t - b||^2  =>  linear system
    n = len(p.y_r)
    H = p.X_r.T @ p.X_r / n + p.mu * np.eye(p.d) + 2 * rho * p.A @ p.A
    rhs = p.X_r.T @ p.y_r / n + 2 * rho * p.A @ p.b
    np.testing.assert_allclose(p.penalized_reference(rho), np.linalg.solve(H, rhs), rtol=1e-9, atol=1e-10)


def test_bilevel_reference_solves_the_kkt_system():
    p = make_problem("quadratic_strong", 2)
    n = len(p.y_r)
    H = p.X_r.T @ p.X_r / n + p.mu * np.eye(p.d)
    # [H  C^T; C 0] with C = X_f (same null space as A = X_f^T X_f / n_f)
    C = p.X_f
    K = np.block([[H, C.T], [C, np.zeros((C.shape[0], C.shape[0]))]])
    sol = np.linalg.solve(K, np.concatenate([p.X_r.T @ p.y_r / n, p.y_f]))
    theta_star, lam = p.bilevel_reference()
    np.testing.assert_allclose(theta_star, sol[: p.d], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(_grad(p, theta_star) + p.A @ lam, 0, atol=1e-9)


def _grad(p, t):
    return p.retain_gradient(t)


def test_logistic_reference_gradient_matches_finite_differences():
    p = make_problem("logistic_ridge", 0)
    t = p.initial_point()
    h = 1e-6
    fd = np.array([(p.retain_value(t + h * e) - p.retain_value(t - h * e)) / (2 * h) for e in np.eye(p.d)])
    np.testing.assert_allclose(p.retain_gradient(t), fd, rtol=1e-6, atol=1e-8)


def test_merely_convex_family_is_flat_and_its_multiplier_nonzero():
    p = make_problem("quadratic_convex", 0)
    assert p.penalty_strong_convexity(1e3) == 0.0
    _, lam = p.bilevel_reference()
    assert np.linalg.norm(lam) > 1e-2  # a trivial bi-level problem would have lambda* = 0


def test_non_optimal_status_raises():
    p = make_problem("quadratic_strong", 0)
    x = cp.Variable()
    with pytest.raises(ReferenceError, match="not 'optimal'|failed"):
        p._solve(cp.Problem(cp.Minimize(x), [x >= 1, x <= 0]), "infeasible test problem")


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid problems: logistic_ridge, logistic_tail, quadratic_convex, quadratic_strong"):
        make_problem("quadratic", 0)
    assert PROBLEMS.names() == ["logistic_ridge", "logistic_tail", "quadratic_convex", "quadratic_strong"]
