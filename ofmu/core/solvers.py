"""Registered solvers over generic objectives: OFMU and its competitors in the same framework.

    ofmu         T ascent steps on Phi, then one descent step on F = L_r + rho ||grad Phi||^2
    penalty_gd   gradient descent on F alone (OFMU with T = 0)
    scalarized   gradient descent on the weighted sum L_r - weight * L_f

Each solver takes the parameter list (updated in place), a ``make_objectives`` callable, a settings
dict and an iteration count, and returns per-iteration diagnostics. ``callback(k, params, diag)``
runs after iteration k (1-based), so callers can record iterates at checkpoints.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ofmu.core.ofmu import MakeObjectives, OFMUConfig, check_scalarized, run_ofmu, scalarized_iteration
from ofmu.registry import SOLVERS

Callback = Callable[[int, Sequence[torch.Tensor], dict], None]


@SOLVERS.register("ofmu")
def solve_ofmu(params, make_objectives: MakeObjectives, settings: dict, iterations: int,
               callback: Callback | None = None) -> list[dict]:
    return run_ofmu(params, make_objectives, OFMUConfig.from_dict(settings), iterations, callback)


@SOLVERS.register("penalty_gd")
def solve_penalty_gd(params, make_objectives: MakeObjectives, settings: dict, iterations: int,
                     callback: Callback | None = None) -> list[dict]:
    settings = {**settings, "inner_steps": 0}
    return run_ofmu(params, make_objectives, OFMUConfig.from_dict(settings), iterations, callback)


@SOLVERS.register("scalarized")
def solve_scalarized(params, make_objectives: MakeObjectives, settings: dict, iterations: int,
                     callback: Callback | None = None) -> list[dict]:
    unknown = sorted(set(settings) - {"weight", "lr"})
    if unknown or not {"weight", "lr"} <= set(settings):
        raise ValueError(f"scalarized solver takes exactly the settings 'weight' and 'lr'; got {sorted(settings)}")
    check_scalarized(settings["weight"], settings["lr"])
    history = []
    for k in range(iterations):
        diag = scalarized_iteration(params, make_objectives, settings["weight"], settings["lr"], iteration=k)
        diag["iteration"] = k
        history.append(diag)
        if callback is not None:
            callback(k + 1, params, diag)
    return history
