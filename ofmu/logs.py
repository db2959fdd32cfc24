"""Send a step's stdout/stderr (and Python warnings/tracebacks) to its log file."""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path


def _states_its_cause(err: BaseException) -> bool:
    """The project's own errors (ofmu's classes, and the ValueError/OSError it raises on bad input) say what is
    wrong and how to fix it: their message is enough; anything else is a bug whose traceback matters."""
    return isinstance(err, (ValueError, OSError)) or type(err).__module__.split(".")[0] == "ofmu"


@contextlib.contextmanager
def log_to(path: str | Path):
    """Redirect stdout and stderr into ``path``. An exception's traceback is written there; an error that
    states its cause ends the step with one ``error: ...`` line on the real stderr (exit status 1), any other
    exception is re-raised with its traceback."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stderr = sys.stderr
    with open(path, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        try:
            yield handle
        except BaseException as err:
            traceback.print_exc(file=handle)
            if isinstance(err, Exception) and _states_its_cause(err):
                handle.flush()
                print(f"error: {type(err).__name__}: {err}\n(traceback in {path})", file=stderr)
                raise SystemExit(1) from None
            raise
