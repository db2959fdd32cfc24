import os

import pytest
import torch

# forced, not defaulted: no hub on these machines, so a hub call fails at once instead of after its retries
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine OpenMP spin-waiting
    made such modules 15x slower with 2 threads. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def float64():
    """Finite differences need float64; restore the default so other test modules are unaffected. Use with
    ``pytestmark = pytest.mark.usefixtures("float64")``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
