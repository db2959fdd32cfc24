"""Seeds of a run: one run seed, independent random streams derived from it by name.

Each stream (model init, batch order of D_f and D_r, the method's own randomness, the MIA's subsample,
IdkDPO's "I don't know" answers, the vision training and test subsets) gets its own seed through numpy's SeedSequence, so changing how one
component draws never shifts another component's stream. Both domains use these names.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

STREAMS = {"model": 0, "forget_loader": 1, "retain_loader": 2, "method": 3, "mia": 4, "idk": 5, "train_subset": 6, "test_subset": 7}


def derive_seed(seed: int, stream: str) -> int:
    """An independent 31-bit seed for one named random stream of a run (numpy SeedSequence spawning)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; valid streams: {sorted(STREAMS)}")
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1)[0] & 0x7FFFFFFF)


REPLICATE_MODEL_TAG = 8  # a fixed third entropy word, apart from every stream's (0-7): changing it retrains every model


def replicate_model_seed(replicate: int, model: int) -> int:
    """The training seed of model ``model`` (e.g. 0 = the full model, 1-3 = the retain-only ones) of the LLM
    replicate ``replicate``: distinct for every (replicate, model), so no two replicates share an initialization."""
    return int(np.random.SeedSequence([int(replicate), int(model), REPLICATE_MODEL_TAG]).generate_state(1)[0] & 0x7FFFFFFF)


@contextlib.contextmanager
def seeded(seed: int):
    """Draw under a private RNG state seeded with ``seed``: building or re-initializing a model never
    shifts the caller's global stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
