"""Mutation tests: every deliberately wrong solver (ofmu/theory/mutation.py, injected through ofmu.core's
seams) must fail named claim checks, and the correct solver must pass the same small suite. The full table
(every claim, every family, seed 0) is `python -m ofmu mutations`, copied into theory/THEOREMS.md."""

import pytest

from ofmu.theory.mutation import MUTANTS, failing_checks
from ofmu.theory.stage import claim_spec

# a wrong gradient makes the Armijo search fail: the solver's warning is the expected outcome here
pytestmark = pytest.mark.filterwarnings("ignore::ofmu.core.ofmu.LineSearchWarning")
CLAIMS = "theory/claims.yaml"
# small instances of the claims the mutants are caught by (one family, seed 0): what the test can afford
SMALL = {
    "C1": {"rho_points": 7, "solver_rhos": [1.0, 10.0], "families": ["quadratic_strong"]},
    "C3": {"max_iter": 128, "families": ["quadratic_strong"]},
    "C4": {"max_iter": 64, "inner_steps": [8, 16, 32], "families": ["quadratic_strong"]},
    "C5": {"max_iter": 256, "families": ["quadratic_strong"]},
    "C6": {"families": ["quadratic_strong"]},
}
# mutant -> (claim, quantity [group]) checks that must fail on it
CAUGHT_BY = {
    "drop the Hessian-vector product in grad F": {
        ("C1", "solver_error"), ("C3", "distance"), ("C5", "grad_sq_at_failed_step"), ("C6", "iterates [T=0]")},
    "halve the Hessian-vector product in grad F": {("C1", "solver_error"), ("C3", "distance"), ("C6", "iterates [T=0]")},
    "flip the sign of the cosine term in Phi": {("C5", "grad_sq_at_failed_step")},
    "outer gradient at the anchor theta_k, not the inner iterate": {("C4", "bias"), ("C6", "iterates [T=4]")},
    "cheap grad F (Hess(L_f) for Hess(Phi)) at beta > 0": {("C5", "grad_sq_at_failed_step")},
    "rho schedule one iteration ahead": {("C6", "iterates [T=0]")},
    "first-order quotient divided by the wrong step": {("C3", "distance (first-order)")},
}


def _runs(claims):
    runs = {}
    for claim in sorted(claims):
        spec = claim_spec(CLAIMS, claim, {claim: SMALL[claim]})
        runs[claim] = (spec, spec["families"], [0])
    return runs


def _checks(failed):
    return {(c, q + (f" [{g}]" if g else "")) for c, q, g in zip(failed["claim"], failed["quantity"], failed["group"])}


def test_every_mutant_has_named_checks():
    assert set(CAUGHT_BY) == set(MUTANTS)


@pytest.mark.parametrize("mutant", list(CAUGHT_BY))
def test_mutant_fails_the_named_checks(mutant):
    expected = CAUGHT_BY[mutant]
    failed = failing_checks(mutant, _runs({claim for claim, _ in expected}))
    assert expected <= _checks(failed), f"not caught: {sorted(expected - _checks(failed))}"


def test_the_correct_solver_passes_the_same_checks():
    failed = failing_checks(None, _runs(SMALL))
    assert failed.empty, failed.to_string()
