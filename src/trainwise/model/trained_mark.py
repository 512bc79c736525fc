"""A mark on a user's module that a run changed its weights in place.

`trainwise.run(model=net)` trains `net` itself (the user wants their net trained). Calling it
again on the same object (a notebook cell run twice) then starts from the trained weights; the
mark lets that second run say so instead of calling them the weights `__init__` made.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

MARK = "_trainwise_trained_by"  # (run folder, weights fingerprint) on the module itself

# float32 values summed in float64 are exact to ~1e-16; a CPU and a GPU sum differ by far less
# than this, while re-initialising or training one more step changes the sums far more
_TOLERANCE = 1e-9


def weights_fingerprint(model: nn.Module) -> list[float]:
    """Per floating tensor (parameters and buffers): its sum and its sum of squares, in
    float64, on the tensor's own device (no copy of the weights to the CPU)."""
    sums: list[float] = []
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point() and tensor.numel():
                values = tensor.detach().to(torch.float64)
                sums += [float(values.sum()), float((values * values).sum())]
    return sums


def same_weights(first: list[float], second: list[float]) -> bool:
    if len(first) != len(second):
        return False
    return all(abs(a - b) <= _TOLERANCE * max(1.0, abs(a), abs(b))
               for a, b in zip(first, second, strict=True))


def mark_trained(model: nn.Module, run_folder: Path) -> None:
    """Record on the module which run last changed its weights, and what they were then."""
    object.__setattr__(model, MARK, (str(run_folder), weights_fingerprint(model)))


def trained_by(model: nn.Module) -> str | None:
    """The run folder whose training left the module's weights as they are now, or None (never
    trained by trainwise, or changed since: re-initialised, trained or loaded by the user)."""
    mark = getattr(model, MARK, None)
    if not (isinstance(mark, tuple) and len(mark) == 2):
        return None
    folder, fingerprint = mark
    return str(folder) if same_weights(fingerprint, weights_fingerprint(model)) else None
