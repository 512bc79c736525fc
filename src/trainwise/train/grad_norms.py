"""Gradient norms as the optimizer will see them: `GradNorms` (global and per-layer, on the
device), and the float16 loss scaling that must be divided out of them first.

Separate from monitor.py's `StepMonitor`, which buffers whatever norms it is given and moves
them to the host: measuring a step's gradients is the caller's part (the `fit` loop and the
user's `Monitor` each do it their own way), and so is knowing the precision the model trains at.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside Fabric's and DDP's wrappers (their names carry prefixes)."""
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return model


RESCAN_EVERY = 50  # GradNorms calls between re-reads of requires_grad (and at per-layer
# steps): a layer unfrozen mid-run joins the norm within that many steps


class GradNorms:
    """Global and per-layer gradient norms of a model, computed on its device.

    A layer is a module that owns parameters directly (a Linear's weight and bias together);
    its name is the module's dotted path ("encoder.0"), "(root)" for top-level parameters.
    """

    def __init__(self, model: nn.Module):
        # every parameter, frozen or not: a layer unfrozen later (fine-tuning) counts from the
        # next re-read of the requires_grad flags (_rescan); only the trainable ones are read
        # per step (a Python loop over 1000 frozen tensors costs ~0.8 ms a step)
        named = list(unwrap(model).named_parameters())
        self.params = [p for _, p in named]
        self.had_gradients = True  # False after a call that found no gradient at all
        self._calls = 0
        self._rescan()
        # float16 squares overflow above ~256: such norms are summed in float32 (decided once,
        # a per-step check of every norm's dtype costs ~1 us)
        self._upcast = any(p.dtype != torch.float32 for p in self.params)
        owners = [name.rpartition(".")[0] or "(root)" for name, _ in named]
        self.layer_names = list(dict.fromkeys(owners))  # first-seen order: input to output
        position = {layer: i for i, layer in enumerate(self.layer_names)}
        self._layer_of = [position[owner] for owner in owners]
        self._index_cache: dict[tuple[Any, Any], torch.Tensor] = {}

    def __call__(self, per_layer: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(global norm (), per-layer norms (L,) or None); NaN for a layer without gradients
        (frozen, or a branch unused this step)."""
        self._calls += 1
        if per_layer or self._calls % RESCAN_EVERY == 0:
            self._rescan()
        grads = [p.grad for p in self._trainable_params]
        present = self._trainable
        if any(g is None for g in grads):  # a branch unused this step, or no backward
            kept = [j for j, g in enumerate(grads) if g is not None]
            present, grads = [present[j] for j in kept], [grads[j] for j in kept]
        self.had_gradients = bool(grads)
        if not grads:
            return torch.zeros(()), None
        norms = torch._foreach_norm(grads)  # one fused kernel per device/dtype group
        if self._upcast:
            norms = [n.float() for n in norms]
        norms = torch.stack(norms)  # (P,)
        total = torch.linalg.vector_norm(norms)
        if not per_layer:
            return total, None
        layers = torch.zeros(len(self.layer_names), device=norms.device)
        layers.index_add_(0, self._index(tuple(present), norms.device), norms.square())
        seen = torch.zeros(len(self.layer_names), dtype=torch.bool)
        seen[[self._layer_of[i] for i in present]] = True
        return total, torch.where(seen.to(norms.device), layers.sqrt(), float("nan"))

    @property
    def num_trainable(self) -> int:
        """Parameters that train (requires_grad), as of the last re-read."""
        return len(self._trainable)

    def _rescan(self) -> None:
        """Re-read which parameters train (requires_grad): at per-layer steps and every
        RESCAN_EVERY calls."""
        self._trainable = [i for i, p in enumerate(self.params) if p.requires_grad]
        self._trainable_params = [self.params[i] for i in self._trainable]

    def _index(self, present: tuple[int, ...], device: torch.device) -> torch.Tensor:
        key = (device, present)  # the same parameters have gradients nearly every time
        if key not in self._index_cache:
            self._index_cache[key] = torch.tensor([self._layer_of[i] for i in present],
                                                  device=device)
        return self._index_cache[key]


def precision_in_use(fabric: Any) -> str:
    """The precision Fabric trains at: run.precision, except that on the CPU Fabric turns
    "16-mixed" into "bf16-mixed" (float16 autocast there is slow and needs no scaling)."""
    return str(getattr(fabric.strategy.precision, "precision", "32-true"))


def loss_scaler(fabric: Any) -> Any:
    """The gradient scaler of float16 mixed precision ("16-mixed"), else None (also when it
    is disabled: GradScaler("cuda") on a machine without CUDA, or enabled=False)."""
    scaler = getattr(fabric.strategy.precision, "scaler", None)
    return scaler if scaler is not None and scaler.is_enabled() else None


def unscaled(scaler: Any, grad_norm: torch.Tensor, layer_norms: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(grad_norm, layer_norms, 1 / loss scale): the norms as the optimizer will see them.
    Under float16 the loss, and so every gradient, is multiplied by the scaler's factor until
    its step unscales them; the norms are divided by that factor here, on the device (the
    public get_scale() would wait for the device every step). A step whose scaled gradients
    overflowed keeps a non-finite norm: the scaler skips it, and the monitor, given the
    factor, tells such a skip from a real overflow."""
    scale = scaler._get_scale_async() if scaler is not None else None  # set by a backward
    if scale is None:
        return grad_norm, layer_norms, None
    inverse = 1.0 / scale  # a new tensor: the scaler updates its own in place at the step
    return (grad_norm * inverse, None if layer_norms is None else layer_norms * inverse,
            inverse)
