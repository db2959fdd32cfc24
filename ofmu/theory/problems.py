"""Convex synthetic problem families with a well-posed inner problem, and their cvxpy references.

Every family shares the forget objective (maximized by the inner loop)

    Phi(theta) = L_f(theta) = -1/(2 n_f) ||X_f theta - y_f||^2        (concave quadratic, beta = 0)

read as "fit uninformative targets y_f on the forget inputs": its maximizers form the affine set
S = {theta : A theta = b}, A = X_f^T X_f / n_f (rank n_f < d), b = X_f^T y_f / n_f, and
grad Phi(theta) = b - A theta, so the penalty ||grad Phi||^2 = ||A theta - b||^2 is a convex quadratic.
(Maximizing a convex forget *loss* instead would make the inner problem unbounded; see THEOREMS.md.)

The families differ in the retain loss L_r:
    quadratic_strong   1/(2 n_r) ||X_r theta - y_r||^2 + mu/2 ||theta||^2      strongly convex, quadratic
    quadratic_convex   1/(2 n_r) ||X_r theta - y_r||^2 with n_r + n_f < d       merely convex (F too)
    logistic_ridge     mean log(1 + exp(-y_i x_i^T theta)) + mu/2 ||theta||^2  strongly convex, not quadratic

References: cvxpy (CLARABEL) solves the penalized problem min_theta L_r + rho ||A theta - b||^2 and the
bi-level problem min L_r s.t. A theta = b; a status other than optimal raises ``ReferenceError``. The
cvxpy point is then polished by Newton steps on the optimality conditions (exact for quadratics) and
must agree with cvxpy's objective to ``VALUE_TOL`` (1e-8), so errors are measured against a reference
that cvxpy certifies to 1e-8 and that is itself accurate to ~1e-13.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import torch

from ofmu.registry import PROBLEMS

VALUE_TOL = 1e-8  # cvxpy and the polished reference must agree on the objective to this (absolute)
KKT_TOL = 1e-9  # gradient-norm residual the polished reference must reach


class ReferenceError(RuntimeError):
    """A cvxpy reference solve did not certify an optimum."""


@dataclass
class ConvexProblem:
    """One instance: data, the torch objectives, exact constants and the cvxpy references."""

    family: str
    seed: int
    X_f: np.ndarray
    y_f: np.ndarray
    X_r: np.ndarray
    y_r: np.ndarray
    retain: str  # "squares" or "logistic"
    mu: float  # ridge weight of L_r (0 for merely convex)
    w_r: np.ndarray | None = None  # per-sample weights of the logistic retain loss (None: the plain mean)
    _cache: dict = field(default_factory=dict, repr=False)

    # ---- derived linear algebra -------------------------------------------------------------
    @property
    def d(self) -> int:
        return self.X_f.shape[1]

    @property
    def A(self) -> np.ndarray:
        return self.X_f.T @ self.X_f / len(self.y_f)

    @property
    def b(self) -> np.ndarray:
        return self.X_f.T @ self.y_f / len(self.y_f)

    def _eig_A(self):
        if "eig_A" not in self._cache:
            w, V = np.linalg.eigh(self.A)
            keep = w > 1e-10 * w.max()
            self._cache["eig_A"] = (w[keep], V[:, keep], V[:, ~keep])
        return self._cache["eig_A"]

    @property
    def sigma_min_A(self) -> float:
        """Smallest positive eigenvalue of A = -Hess(Phi)."""
        return float(self._eig_A()[0].min())

    @property
    def lambda_max_A(self) -> float:
        return float(self._eig_A()[0].max())

    def project_onto_argmax_phi(self, theta: np.ndarray) -> np.ndarray:
        """Euclidean projection onto S = argmax Phi = {A theta = b}."""
        w, V, _ = self._eig_A()
        return theta - V @ ((V.T @ (self.A @ theta - self.b)) / w)

    def retain_hessian_bounds(self) -> tuple[float, float]:
        """(mu_r, L_r): global strong convexity and smoothness constants of L_r."""
        ev = np.linalg.eigvalsh((self.X_r.T * self._weights()) @ self.X_r)  # sum_i w_i x_i x_i^T
        lowest = float(ev.min()) if ev.min() > 1e-10 * ev.max() else 0.0  # round-off is not curvature
        if self.retain == "squares":
            return lowest + self.mu, float(ev.max() + self.mu)
        return float(self.mu), float(ev.max() / 4 + self.mu)  # logistic'' <= 1/4

    def penalty_hessian(self, rho: float, theta: np.ndarray | None = None) -> np.ndarray:
        """Hessian of F_rho = L_r + rho ||A theta - b||^2 (at theta for the logistic family)."""
        return self.retain_hessian(theta) + 2 * rho * self.A @ self.A

    def penalty_smoothness(self, rho: float) -> float:
        """A global smoothness constant L_F of F_rho (exact for quadratics)."""
        if self.retain == "squares":
            return float(np.linalg.eigvalsh(self.penalty_hessian(rho)).max())
        return self.retain_hessian_bounds()[1] + 2 * rho * self.lambda_max_A**2

    def penalty_strong_convexity(self, rho: float) -> float:
        """A global strong-convexity constant mu_F of F_rho (exact for quadratics; 0 if merely convex)."""
        if self.retain == "squares":
            ev = np.linalg.eigvalsh(self.penalty_hessian(rho))
            return float(ev.min()) if ev.min() > 1e-10 * ev.max() else 0.0  # round-off is not curvature
        return self.mu

    # ---- objectives in numpy (references) and torch (solvers) -------------------------------
    def retain_value(self, theta: np.ndarray) -> float:
        if self.retain == "squares":
            r = self.X_r @ theta - self.y_r
            return float(0.5 * r @ r / len(r) + 0.5 * self.mu * theta @ theta)
        z = -self.y_r * (self.X_r @ theta)
        return float(self._weights() @ np.logaddexp(0.0, z) + 0.5 * self.mu * theta @ theta)

    def retain_gradient(self, theta: np.ndarray) -> np.ndarray:
        if self.retain == "squares":
            return self.X_r.T @ (self.X_r @ theta - self.y_r) / len(self.y_r) + self.mu * theta
        s = 1.0 / (1.0 + np.exp(self.y_r * (self.X_r @ theta)))  # sigmoid(-y x^T theta)
        return -self.X_r.T @ (self._weights() * self.y_r * s) + self.mu * theta

    def retain_hessian(self, theta: np.ndarray | None = None) -> np.ndarray:
        n = len(self.y_r)
        if self.retain == "squares":
            return self.X_r.T @ self.X_r / n + self.mu * np.eye(self.d)
        p = 1.0 / (1.0 + np.exp(-(self.X_r @ theta)))
        return (self.X_r.T * (self._weights() * p * (1 - p))) @ self.X_r + self.mu * np.eye(self.d)

    def _weights(self) -> np.ndarray:
        return self.w_r if self.w_r is not None else np.full(len(self.y_r), 1.0 / len(self.y_r))

    def penalty_value(self, theta: np.ndarray, rho: float) -> float:
        r = self.A @ theta - self.b
        return self.retain_value(theta) + rho * float(r @ r)

    def grad_phi_norm(self, theta: np.ndarray) -> float:
        return float(np.linalg.norm(self.b - self.A @ theta))

    def torch_objectives(self):
        """(forget_loss, retain_loss) as callables of a parameter list [theta] (float64)."""
        X_f, y_f = torch.from_numpy(self.X_f), torch.from_numpy(self.y_f)
        X_r, y_r = torch.from_numpy(self.X_r), torch.from_numpy(self.y_r)
        mu = self.mu

        def forget_loss(params):
            r = X_f @ params[0] - y_f
            return -0.5 * (r @ r) / len(y_f)

        if self.retain == "squares":
            def retain_loss(params):
                r = X_r @ params[0] - y_r
                return 0.5 * (r @ r) / len(y_r) + 0.5 * mu * (params[0] @ params[0])
        else:
            w_r = torch.from_numpy(self._weights())

            def retain_loss(params):
                z = -y_r * (X_r @ params[0])
                return w_r @ torch.nn.functional.softplus(z) + 0.5 * mu * (params[0] @ params[0])

        return forget_loss, retain_loss

    def penalty_value_and_grad(self, theta: np.ndarray, beta: float, rho: float,
                               cos_eps: float = 1e-12) -> tuple[float, np.ndarray]:
        """F_rho = L_r + rho ||grad Phi||^2 with Phi = L_f - beta cos(grad L_f, grad L_r), and its gradient,
        computed with torch.func transforms, independently of the solver's autograd code (``ofmu.core``):
        the claims measure the solver's iterates with this, not with what the solver reports."""
        from torch.func import grad, grad_and_value

        f_loss, r_loss = self.torch_objectives()
        lf = lambda t: f_loss([t])  # noqa: E731
        lr = lambda t: r_loss([t])  # noqa: E731

        def phi(t):
            if beta == 0:
                return lf(t)
            gf, gr = grad(lf)(t), grad(lr)(t)
            cos = gf @ gr / (torch.sqrt(gf @ gf + cos_eps**2) * torch.sqrt(gr @ gr + cos_eps**2))
            return lf(t) - beta * cos

        def penalty(t):
            g = grad(phi)(t)
            return lr(t) + rho * (g @ g)

        g, value = grad_and_value(penalty)(torch.from_numpy(np.asarray(theta, dtype=np.float64)))
        return float(value), g.numpy()

    def initial_point(self) -> np.ndarray:
        """A seeded starting point away from both optima (the 'original model')."""
        rng = np.random.default_rng(10_000 + self.seed)
        return rng.standard_normal(self.d)

    # ---- cvxpy references ------------------------------------------------------------------
    def _cvx_retain(self, theta: cp.Variable):
        n = len(self.y_r)
        if self.retain == "squares":
            expr = 0.5 * cp.sum_squares(self.X_r @ theta - self.y_r) / n
        else:
            expr = self._weights() @ cp.logistic(-cp.multiply(self.y_r, self.X_r @ theta))
        return expr + 0.5 * self.mu * cp.sum_squares(theta) if self.mu > 0 else expr

    def _solve(self, problem: cp.Problem, what: str) -> None:
        try:
            problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9, max_iter=500)
        except cp.error.SolverError as err:
            raise ReferenceError(f"cvxpy failed on the {what} of {self.family} (seed {self.seed}): {err}") from err
        if problem.status != cp.OPTIMAL:
            raise ReferenceError(
                f"cvxpy reference for the {what} of {self.family} (seed {self.seed}) ended with status "
                f"{problem.status!r}, not 'optimal'; the instance is ill-posed or the solver failed"
            )

    def penalized_reference(self, rho: float) -> np.ndarray:
        """argmin F_rho (for the merely convex family: the minimizer nearest the initial point)."""
        key = ("penalized", rho)
        if key in self._cache:
            return self._cache[key]
        theta = cp.Variable(self.d)
        prob = cp.Problem(cp.Minimize(self._cvx_retain(theta) + rho * cp.sum_squares(self.A @ theta - self.b)))
        self._solve(prob, f"penalized problem (rho={rho:g})")
        x = np.asarray(theta.value, dtype=float)
        cvx_value = float(prob.value)
        for _ in range(30):  # Newton polish; lstsq gives the minimum-norm step when F is singular
            g = self.retain_gradient(x) + 2 * rho * self.A @ (self.A @ x - self.b)
            if np.linalg.norm(g) <= KKT_TOL * 1e-3:
                break
            x = x - np.linalg.lstsq(self.penalty_hessian(rho, x), g, rcond=1e-13)[0]
        self._check(cvx_value, self.penalty_value(x, rho), np.linalg.norm(
            self.retain_gradient(x) + 2 * rho * self.A @ (self.A @ x - self.b)), f"penalized (rho={rho:g})")
        if self.retain == "squares" and self.penalty_strong_convexity(rho) <= 0:
            # merely convex: the solution set is x + null(Hess F); keep the point nearest theta_0
            x = self.nearest_minimizer(x, rho, self.initial_point())
        self._cache[key] = x
        return x

    def nearest_minimizer(self, x_star: np.ndarray, rho: float, theta: np.ndarray) -> np.ndarray:
        """Projection of theta onto the minimizer set x_star + null(Hess F_rho) (quadratic F)."""
        w, V = np.linalg.eigh(self.penalty_hessian(rho))
        N = V[:, w <= 1e-10 * w.max()]
        return x_star + N @ (N.T @ (theta - x_star))

    def bilevel_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """(theta*, lambda*): argmin L_r over S = argmax Phi, and the minimum-norm multiplier with
        grad L_r(theta*) + A lambda* = 0."""
        if "bilevel" in self._cache:
            return self._cache["bilevel"]
        theta = cp.Variable(self.d)
        # A theta = b written with A's eigenvectors (full row rank); the rank-deficient form makes
        # the KKT system degenerate and CLARABEL fails on it
        w, V, _ = self._eig_A()
        prob = cp.Problem(cp.Minimize(self._cvx_retain(theta)), [V.T @ theta == (V.T @ self.b) / w])
        self._solve(prob, "bi-level problem")
        cvx_value = float(prob.value)
        _, V, N = self._eig_A()
        x = self.project_onto_argmax_phi(np.asarray(theta.value, dtype=float))
        for _ in range(30):  # Newton on the null-space parametrization x + N z
            g = N.T @ self.retain_gradient(x)
            if np.linalg.norm(g) <= KKT_TOL * 1e-3:
                break
            x = x - N @ np.linalg.lstsq(N.T @ self.retain_hessian(x) @ N, g, rcond=1e-13)[0]
        if self.mu == 0 and self.retain == "squares":
            # merely convex: theta* is not unique; keep the solution nearest the initial point
            ww, U = np.linalg.eigh(N.T @ self.retain_hessian(x) @ N)
            Z = N @ U[:, ww <= 1e-10 * max(ww.max(), 1e-300)]
            x = x + Z @ (Z.T @ (self.initial_point() - x))
        grad = self.retain_gradient(x)
        w, V, _ = self._eig_A()
        lam = -V @ ((V.T @ grad) / w)  # minimum-norm multiplier, lies in range(A)
        self._check(cvx_value, self.retain_value(x), np.linalg.norm(grad + self.A @ lam), "bi-level")
        if np.linalg.norm(self.A @ x - self.b) > KKT_TOL:
            raise ReferenceError(f"bi-level reference of {self.family} is infeasible after polishing")
        self._cache["bilevel"] = (x, lam)
        return x, lam

    def _check(self, cvx_value: float, polished_value: float, kkt: float, what: str) -> None:
        if abs(cvx_value - polished_value) > VALUE_TOL * max(1.0, abs(polished_value)):
            raise ReferenceError(
                f"{what} reference of {self.family} (seed {self.seed}): cvxpy objective {cvx_value:.12g} and "
                f"the polished optimum {polished_value:.12g} differ by more than {VALUE_TOL:g}"
            )
        if kkt > KKT_TOL:
            raise ReferenceError(
                f"{what} reference of {self.family} (seed {self.seed}): optimality residual {kkt:.2e} > {KKT_TOL:g}"
            )


def _forget_data(rng: np.random.Generator, d: int, n_f: int, cond: float):
    """X_f such that A = X_f^T X_f / n_f has its nonzero eigenvalues spread evenly in [1/cond, 1]."""
    U, _ = np.linalg.qr(rng.standard_normal((n_f, n_f)))
    V, _ = np.linalg.qr(rng.standard_normal((d, n_f)))
    s = np.sqrt(np.linspace(1.0 / cond, 1.0, n_f) * n_f)
    return (U * s) @ V.T, rng.standard_normal(n_f)


@PROBLEMS.register("quadratic_strong")
def quadratic_strong(seed: int, d: int = 30, n_f: int = 8, n_r: int = 40, mu: float = 0.5) -> ConvexProblem:
    rng = np.random.default_rng(seed)
    X_f, y_f = _forget_data(rng, d, n_f, cond=8.0)
    X_r = rng.standard_normal((n_r, d))
    y_r = X_r @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n_r)
    return ConvexProblem("quadratic_strong", seed, X_f, y_f, X_r, y_r, "squares", mu)


@PROBLEMS.register("quadratic_convex")
def quadratic_convex(seed: int, d: int = 30, n_f: int = 8, n_r: int = 40, flat: int = 3) -> ConvexProblem:
    # X_r annihilates `flat` directions Z chosen inside null(A): F_rho is then flat along Z for every
    # rho (merely convex). Z must be planted: with X_r generic and rank-deficient, the unconstrained
    # minimizer of L_r would meet S and the bi-level problem would be trivial (multiplier 0).
    rng = np.random.default_rng(seed)
    X_f, y_f = _forget_data(rng, d, n_f, cond=8.0)
    null_A = np.linalg.svd(X_f)[2][n_f:].T
    Z = null_A @ np.linalg.qr(rng.standard_normal((d - n_f, flat)))[0]
    X_r = rng.standard_normal((n_r, d)) @ (np.eye(d) - Z @ Z.T)
    y_r = rng.standard_normal(n_r)
    return ConvexProblem("quadratic_convex", seed, X_f, y_f, X_r, y_r, "squares", 0.0)


@PROBLEMS.register("logistic_ridge")
def logistic_ridge(seed: int, d: int = 30, n_f: int = 8, n_r: int = 60, mu: float = 0.2) -> ConvexProblem:
    rng = np.random.default_rng(seed)
    X_f, y_f = _forget_data(rng, d, n_f, cond=8.0)
    X_r = rng.standard_normal((n_r, d))
    w = rng.standard_normal(d)
    y_r = np.where(X_r @ w + 0.5 * rng.standard_normal(n_r) > 0, 1.0, -1.0)
    return ConvexProblem("logistic_ridge", seed, X_f, y_f, X_r, y_r, "logistic", mu)


@PROBLEMS.register("logistic_tail")
def logistic_tail(seed: int, d: int = 30, n_f: int = 8, n_r: int = 120, tail_weight: float = 1e-6) -> ConvexProblem:
    # Merely convex, not quadratic, bounded solution, and GD on it really is O(1/K) for thousands of steps:
    # no ridge; one direction z inside null(A) carries two logistic terms, label +1 with weight 1 - w and label
    # -1 with weight w (w = tail_weight), so along z the loss is ~ e^{-t} + w t with its minimum at
    # t* = log((1 - w)/w) ~ 13.8 and curvature ~ w there. Gradient descent on e^{-t} gives e^{-t_K} ~ 1/(eta K),
    # a gap that decays as 1/K until e^{-t} reaches w (K ~ 1/(eta w), far beyond max_iter). The other directions
    # see a noisy logistic regression (30% flipped labels, n_r = 4 d points) that is not separable: bounded.
    rng = np.random.default_rng(seed)
    X_f, y_f = _forget_data(rng, d, n_f, cond=8.0)
    null_A = np.linalg.svd(X_f)[2][n_f:].T
    z = null_A @ rng.standard_normal(d - n_f)
    z /= np.linalg.norm(z)
    X = rng.standard_normal((n_r, d)) @ (np.eye(d) - np.outer(z, z))
    y = np.where(X @ rng.standard_normal(d) > 0, 1.0, -1.0) * np.where(rng.random(n_r) < 0.3, -1.0, 1.0)
    X_r = np.vstack([X, 2 * z, 2 * z])  # |x| = 2: the tail's curvature is visible to the 1/L_F step
    y_r = np.concatenate([y, [1.0, -1.0]])
    w_r = np.concatenate([np.full(n_r, 0.5 / n_r), [0.5 * (1 - tail_weight), 0.5 * tail_weight]])
    return ConvexProblem("logistic_tail", seed, X_f, y_f, X_r, y_r, "logistic", 0.0, w_r=w_r)


def make_problem(family: str, seed: int) -> ConvexProblem:
    return PROBLEMS.get(family)(seed)
