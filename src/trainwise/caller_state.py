"""The process-wide state a run changes, handed back to the caller when it returns.

A run seeds the python, numpy and torch RNGs (Fabric's seed_everything, so that its results
repeat), which also sets PL_GLOBAL_SEED / PL_SEED_WORKERS, and pins torch's CPU thread count
to the idle cores. In a notebook those would outlive the call: every later "random" cell would
draw the same numbers after each run, and a thread count set in code would be lost. The
command line ends its process anyway; the Python API restores them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from trainwise.train.position import capture_rng, restore_rng

SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")  # what seed_everything sets


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """Run the body, then put back the global RNG states, the seed variables and torch's
    thread count as they were, even if the body raised (Ctrl-C included)."""
    # CUDA's state only if already started: reading it would start it (seconds, device memory)
    rng = capture_rng()
    variables = {name: os.environ.get(name) for name in SEED_VARIABLES}
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        restore_rng(rng)
        if "cuda" not in rng and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.seed_all()  # the run started and seeded it: a fresh seed, as untouched
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)
