"""Shared fixtures: tiny synthetic tasks that train in well under a second on one thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# Two cores shared with other work: torch's default thread count can slow tiny models 100x.
torch.set_num_threads(1)


@pytest.fixture
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated Gaussian classes in 8 dimensions: (300, 8) float32, (300,) int64."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 8))
    y = np.repeat(np.arange(3), 100)
    x = centers[y] + rng.normal(0, 1, size=(300, 8))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)
