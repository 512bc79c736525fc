"""Is a regression output squashed inside forward() (torch.sigmoid(...), tanh, clamp)?

A final nn.Sigmoid module shows by its type; a functional one only by what it does to the
outputs. Their values alone are no evidence: a default- or zero-initialised linear head also
gives small outputs that all lie in [0, 1]. Scaling the inputs is no proof either: a LayerNorm
undoes it. So the probe pushes the output of the last layer with weights (the pre-activation
of any squashing after it) by a huge +shift and -shift with a forward hook:
- a raw head follows the push (outputs ~ +-shift);
- a squashing function pins every output to one end of its range ([0, 1] for sigmoid,
  [-1, 1] for tanh, [a, b] for clamp(a, b)), and pushing ten times harder changes nothing.
Both ends must pin, each to one value for the whole batch, and the unpushed outputs must lie
between them: a ReLU pins one end only, a residual term after the squashing pins no end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# Pre-activation pushes: sigmoid(+-1e3) is exactly 1 / 0 in float32, and 1e4 still fits
# float16 (max 65504), so a raw head stays finite and visibly follows the push.
SHIFTS = (1e3, 1e4)
# "Pinned": equal to within this (absolute and relative) tolerance.
PIN_TOLERANCE = 1e-4


def finishing_modules(model: nn.Module, x: torch.Tensor) -> tuple[Any, list[nn.Module]]:
    """model(x), and every module (the model too) in the order its forward finished: one
    hooked forward pass that both probes read (structure's last leaf, the last weighted layer
    here)."""
    finished: list[nn.Module] = []
    handles = [m.register_forward_hook(lambda m, _a, _o: finished.append(m))
               for m in model.modules()]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, finished


def _last_weighted_leaf(model: nn.Module, finished: list[nn.Module]
                        ) -> tuple[str, nn.Module] | None:
    """The last module with weights of its own to finish model(x) (`finished`, from
    finishing_modules), with its name; the model itself does not count (pushing its output
    would only move the answer, not probe it)."""
    last = next((m for m in reversed(finished)
                 if m is not model and next(m.parameters(recurse=False), None) is not None),
                None)
    if last is None:
        return None
    names = {id(m): name for name, m in model.named_modules()}
    return names[id(last)], last


def _pushed(model: nn.Module, layer: nn.Module, x: torch.Tensor,
            shift: float) -> torch.Tensor | None:
    """model(x) with `shift` added to every output of `layer`; None unless a float tensor."""
    def push(_m: nn.Module, _a: object, out: object) -> object:
        return out + shift if isinstance(out, torch.Tensor) and out.is_floating_point() else out

    handle = layer.register_forward_hook(push)
    try:
        out = model(x)
    except Exception:  # noqa: BLE001 - a forward that rejects huge values proves nothing
        return None
    finally:
        handle.remove()
    ok = isinstance(out, torch.Tensor) and out.is_floating_point()
    return out.detach().float() if ok else None


def _pinned_value(model: nn.Module, layer: nn.Module, x: torch.Tensor,
                  sign: float) -> float | None:
    """The one value every output takes when `layer` is pushed to sign * infinity, or None
    when the outputs still follow the push or differ across the batch."""
    hard, harder = (_pushed(model, layer, x, sign * s) for s in SHIFTS)
    if hard is None or harder is None or hard.shape != harder.shape or hard.numel() == 0:
        return None
    value = hard.flatten()[:1].expand(hard.numel())
    if not (torch.allclose(hard.flatten(), value, rtol=PIN_TOLERANCE, atol=PIN_TOLERANCE)
            and torch.allclose(harder, hard, rtol=PIN_TOLERANCE, atol=PIN_TOLERANCE)):
        return None
    return float(value[0])


def squashed_range(model: nn.Module, x: torch.Tensor, out: torch.Tensor,
                   finished: list[nn.Module]) -> tuple[str, str, float, float] | None:
    """(layer name, layer type, low, high) when forward() squashes the output of its last
    layer with weights into [low, high]; `out` is model(x) unpushed and `finished` its
    modules in finishing order (both from finishing_modules). Call under quiet_forward
    (eval mode, no grad)."""
    found = _last_weighted_leaf(model, finished)
    if found is None:
        return None
    name, layer = found
    ends = [_pinned_value(model, layer, x, sign) for sign in (1.0, -1.0)]
    if None in ends:
        return None
    low, high = sorted(ends)  # type: ignore[type-var]  # no None left
    tol = PIN_TOLERANCE * max(1.0, high - low)
    out = out.detach().float()
    inside = bool((out >= low - tol).all()) and bool((out <= high + tol).all())
    if high - low <= tol or not inside:
        return None
    return name, type(layer).__name__, low, high
