"""Probes step at the training precision. The range test and the batch-size probe run their own
short loops on the plain model, outside Fabric's module wrapper, so their forward pass does what
that wrapper's does: inputs cast to the precision's dtype, the module run in its autocast
context, outputs cast back to float32 (the loss is then taken outside autocast, as in `fit`).
At 32-bit all three are no-ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from lightning_fabric import Fabric


def probe_forward(fabric: Fabric | None, model: nn.Module, x: Any) -> Any:
    """model(x) as Fabric's wrapped module computes it (lightning_fabric.wrappers
    _FabricModule.forward, without the backward hook that only checks usage)."""
    if fabric is None:
        return model(x)
    precision = fabric.strategy.precision
    with precision.forward_context():
        output = model(precision.convert_input(x))
    return precision.convert_output(output)
