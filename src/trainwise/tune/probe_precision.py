"""Probes step at the training precision. The range test and the batch-size probe run their own
short loops on the plain model, outside Fabric's wrappers, so they do what those wrappers do:
the forward pass casts inputs to the precision's dtype, runs the module in its autocast context
and casts outputs back to float32 (the loss is then taken outside autocast, as in `fit`); under
float16 the loss is scaled for backward and the step unscaled, skipped when the gradients
overflowed. The scaler is the probe's own copy of Fabric's: Fabric's carries its scale into
training, and a probe that moved it would leave a trace. At 32-bit each is the plain call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainwise.findings import TrainwiseError
from trainwise.train.grad_norms import loss_scaler, precision_in_use

if TYPE_CHECKING:
    from lightning_fabric import Fabric

SUPPORTED = ("32-true", "bf16-mixed", "16-mixed")  # run.precision's values


class ProbeSteps:
    """forward / backward / step as Fabric's wrapped module, backward and optimizer would."""

    def __init__(self, fabric: Fabric | None, device: torch.device):
        precision = fabric.strategy.precision if fabric is not None else None
        name = precision_in_use(fabric) if fabric is not None else "32-true"
        if name not in SUPPORTED:  # "-true" precisions cast the model, which a probe does not
            raise TrainwiseError(f"Fabric precision '{name}' is not supported by the range test "
                                 f"and the batch-size probe; use one of {', '.join(SUPPORTED)}.")
        autocast_on = getattr(precision, "device", device.type)
        if name != "32-true" and autocast_on != device.type:
            raise TrainwiseError(f"the model is on {device.type} but Fabric autocasts on "
                                 f"{autocast_on}: move the model to fabric.device first.")
        self.precision = precision if name != "32-true" else None
        self.scaler = None
        training = loss_scaler(fabric) if fabric is not None else None
        if training is not None:  # a copy: starts where training will
            self.scaler = torch.amp.GradScaler(device.type)
            self.scaler.load_state_dict(training.state_dict())

    def forward(self, model: nn.Module, x: Any) -> Any:
        """lightning_fabric.wrappers._FabricModule.forward, without its usage-check hook."""
        if self.precision is None:
            return model(x)
        with self.precision.forward_context():
            output = model(self.precision.convert_input(x))
        return self.precision.convert_output(output)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """The optimizer step; False when the loss scaler skipped it (its scaled gradients
        overflowed: it then lowers its scale)."""
        if self.scaler is None:
            optimizer.step()
            return True
        before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= before
