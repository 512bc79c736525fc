"""The heavy dropout layers, read off the model for fit's and the Monitor's epoch rows.

The train stage's heavy_regularisation rule is pure (history rows in): it names the layers
only when a row carries them. The test is the check stage's dropout_heavy (p >= 0.8, or >= 0.5
in a small model), so the two name the same layers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trainwise.checks.initial import heavy_dropout_layers
from trainwise.train.diagnose_capacity import DROPOUT_KEY
from trainwise.train.grad_norms import unwrap


def dropout_evidence(model: nn.Module) -> dict[str, Any]:
    """{DROPOUT_KEY: {layer: p}} for the heavy dropout layers, {} when none."""
    heavy = heavy_dropout_layers(unwrap(model))  # Fabric's and DDP's wrappers prefix names
    return {DROPOUT_KEY: heavy} if heavy else {}
