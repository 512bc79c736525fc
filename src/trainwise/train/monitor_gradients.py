"""The gradients a `trainwise.Monitor` reads at each `step` of a user's own loop: their norms
(global and per-layer, as the optimizer will see them under the user's GradScaler), and the
signs that the call is misplaced rather than the gradients unhealthy (no gradient at all, or
every one exactly zero from the first step) or that the optimizer decays what it should spare.

Separate from user_monitor.py, which keeps the Monitor's calls in the order a loop makes them,
and from the `fit` loop, which runs its own backward and scaler and so needs none of these
guards: in a hand-written loop the model may change between steps, the scaler may already
have unscaled for clipping, and monitor.step may come after zero_grad.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding
from trainwise.train import monitor_misuse as misuse
from trainwise.train.entry_checks import monitor_entry_findings
from trainwise.train.grad_norms import GradNorms, unscaled, unwrap
from trainwise.train.monitor import StepMonitor

Norms = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]


class StepGradients:
    """Gradient norms of the model each Monitor.step is given, kept in `steps` (a StepMonitor:
    its layer names and whether the loss is scaled); what the loop does wrong goes to `say`."""

    def __init__(self, steps: StepMonitor, say: Callable[[Finding], None]):
        self._steps, self._say = steps, say
        self._norms: tuple[int, GradNorms] | None = None  # (id(model), its norms)
        self._optimizers_checked: set[int] = set()
        self.nonzero_norm_seen = False

    def measure(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                scaler: Any) -> Norms:
        """(gradient norm, per-layer norms, 1 / loss scale) of this step, on the device; the
        optimizer's weight decay is checked the first time it is passed."""
        measured = self._measure(step, model, optimizer, scaler)
        if optimizer is not None and id(optimizer) not in self._optimizers_checked:
            self._check_optimizer(model, optimizer)
        return measured

    def blank_zero_norms(self, rows: list[dict[str, Any]]) -> None:
        """Gradient norms exactly zero from the first step are no measurement: monitor.step
        came after zero_grad(set_to_none=False). They are left out (as when the gradients are
        None), so the diagnosis does not read them as vanishing gradients."""
        if self.nonzero_norm_seen:
            return
        zero_steps = []
        for row in rows:
            norm = row.get("grad_norm")
            if norm is None:
                continue
            if norm != 0.0:
                self.nonzero_norm_seen = True
                break
            row["grad_norm"] = None
            row.pop("layer_grad_norms", None)
            zero_steps.append(row["step"])
        if zero_steps:
            self._say(misuse.zero_gradients(zero_steps[-1]))

    def _grad_norms(self, model: nn.Module) -> GradNorms:
        if self._norms is None or self._norms[0] != id(model):
            self._norms = (id(model), GradNorms(model))
            self._steps.layer_names = self._norms[1].layer_names
        return self._norms[1]

    def _measure(self, step: int, model: nn.Module, optimizer: Any, scaler: Any) -> Norms:
        norms_of = self._grad_norms(model)
        grad_norm, layer_norms = norms_of(per_layer=self._steps.layer_due(step))
        if not norms_of.had_gradients:  # not a vanishing gradient: nothing to measure
            self._say(misuse.no_gradients(step) if norms_of.num_trainable
                      else misuse.no_parameters(model, step))
            return None, None, None
        if scaler is None or not scaler.is_enabled():
            return grad_norm, layer_norms, None
        self._steps.loss_scaled = True
        unscaled_norm, unscaled_layers, inverse_scale = unscaled(scaler, grad_norm, layer_norms)
        if unscaled_already(scaler, optimizer):
            return grad_norm, layer_norms, inverse_scale
        return unscaled_norm, unscaled_layers, inverse_scale

    def _check_optimizer(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self._optimizers_checked.add(id(optimizer))
        for finding in monitor_entry_findings(model, optimizer):
            self._say(finding)  # an optimizer on another model is an error: should_stop
        decayed = misuse.decayed_norms(unwrap(model), optimizer)
        if decayed is not None:
            self._say(decayed)


def unscaled_already(scaler: torch.amp.GradScaler, optimizer: Any) -> bool:
    """Whether `scaler.unscale_(optimizer)` ran since the last update (the clipping pattern):
    GradScaler keeps that per optimizer, in a private dict (read defensively: an unknown
    layout counts as not unscaled)."""
    from torch.amp.grad_scaler import OptState

    states = getattr(scaler, "_per_optimizer_states", None)
    if not isinstance(states, dict):
        return False
    if optimizer is None:  # not passed: any optimizer unscaled this step (usually the only one)
        return any(isinstance(state, dict) and state.get("stage") is OptState.UNSCALED
                   for state in states.values())
    state = states.get(id(optimizer))  # .get: a defaultdict must not grow an entry here
    return isinstance(state, dict) and state.get("stage") is OptState.UNSCALED
