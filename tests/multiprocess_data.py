"""Data shared by the multi-process tests (test_ddp.py, test_fsdp.py)."""

import numpy as np
import torch


def three_gaussians() -> tuple[torch.Tensor, torch.Tensor]:
    """320 rows, 8 features, 3 overlapping Gaussian classes: (320, 8) float32, (320,) int64."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, size=(3, 8))
    y = rng.integers(0, 3, size=320)
    x = centers[y] + rng.normal(0, 1.5, size=(320, 8))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)
