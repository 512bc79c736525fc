"""The process-wide state a run changes, handed back to the caller when it returns.

A run seeds the python, numpy and torch RNGs (Fabric's seed_everything, so that its results
repeat), which also sets PL_GLOBAL_SEED / PL_SEED_WORKERS, and pins torch's CPU thread count
to the idle cores. In a notebook those would outlive the call: every later "random" cell would
draw the same numbers after each run, and a thread count set in code would be lost. The
command line ends its process anyway; the Python API restores them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")  # what seed_everything sets


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """Run the body, then put back the global RNG states, the seed variables and torch's
    thread count as they were, even if the body raised (Ctrl-C included)."""
    python, numpy, torch_cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    # only a CUDA already started: reading its state would start it (seconds, device memory)
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and \
        torch.cuda.is_initialized() else None
    variables = {name: os.environ.get(name) for name in SEED_VARIABLES}
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(torch_cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        elif torch.cuda.is_available() and torch.cuda.is_initialized():  # the run started it
            torch.cuda.seed_all()  # and seeded it: a fresh seed, as an untouched CUDA has
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)
