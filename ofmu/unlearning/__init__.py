"""The shared unlearning core of both stages: one loop, methods as loss hooks, method settings, one cell runner.

    loop      run_unlearning: the budget, timing and peak memory of any method on any model and task
    methods   the shared methods (registered in ``ofmu.registry.METHODS``); ``make_method``
    settings  config/methods/<Method>.yaml: the only place a method's settings are written
    cells     Domain (what a stage supplies), run_method / run_references (one tidy row), write_result
The stages: ``ofmu.vision`` (images) and ``ofmu.llm`` (TOFU protocol).
"""

from ofmu.unlearning import loop, methods  # noqa: F401  (registration side effects)
from ofmu.unlearning.loop import ClassificationTask, Method, Task, UnlearnResult, run_unlearning
from ofmu.unlearning.methods import make_method

__all__ = ["ClassificationTask", "Method", "Task", "UnlearnResult", "make_method", "run_unlearning"]
