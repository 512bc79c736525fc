"""The training loop: one function, read top to bottom, every hook call written out.

Runs on Lightning Fabric, so the same code serves one CPU, one GPU or `devices=N` later:
Fabric places the model and batches and does the backward pass; we call `optimizer.step()`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.train.evaluate import evaluate
from trainwise.train.monitor import StepMonitor, global_grad_norm


@dataclass
class TrainState:
    """What callbacks see and may change: set `should_stop` to end training (Keras style)."""

    step: int = 0
    epoch: int = 0
    should_stop: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


def emit(callbacks: Iterable[Any], event: str, **kwargs: Any) -> None:
    """Call `event` on every callback that has it, passing only the arguments it takes."""
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is None:
            continue
        accepted = inspect.signature(method).parameters
        method(**{k: v for k, v in kwargs.items() if k in accepted})


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def fit(
    model: nn.Module,
    train_loader: Any,
    val_loader: Any,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    max_epochs: int,
    task: str = "classification",
    scheduler: Any = None,
    fabric: Fabric | None = None,
    callbacks: Iterable[Any] = (),
    log_every: int = 10,
    grad_clip: float = 0.0,
) -> TrainState:
    """Train `model`, evaluating on `val_loader` after every epoch.

    Callback events: on_fit_start, on_step_end(rows), on_epoch_end(row), on_fit_end.
    The scheduler, if any, is stepped once per optimizer step.
    """
    fabric = fabric or Fabric(accelerator="cpu", devices=1)
    model, optimizer = fabric.setup(model, optimizer)
    train_loader, val_loader = fabric.setup_dataloaders(train_loader, val_loader)
    callbacks = list(callbacks)
    params = [p for p in model.parameters() if p.requires_grad]
    monitor = StepMonitor(log_every)
    state = TrainState()
    emit(callbacks, "on_fit_start", state=state, model=model, optimizer=optimizer)

    for epoch in range(1, max_epochs + 1):
        state.epoch = epoch
        model.train()
        started = time.perf_counter()
        loss_sum, num_batches = torch.zeros((), device=fabric.device), 0
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            grad_norm = global_grad_norm(params)  # (), on the device: no sync here
            if grad_clip > 0:
                fabric.clip_gradients(model, optimizer, max_norm=grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            state.step += 1
            loss_sum += loss.detach()
            num_batches += 1
            rows = monitor.record(state.step, epoch, loss, grad_norm, _current_lr(optimizer))
            state.history.extend(rows)
            emit(callbacks, "on_step_end", state=state, rows=rows)
            if monitor.first_nonfinite_step is not None:
                state.should_stop, state.stop_reason = True, "non-finite loss or gradient"
            if state.should_stop:
                break

        rows = monitor.flush()
        state.history.extend(rows)
        emit(callbacks, "on_step_end", state=state, rows=rows)
        row = {"kind": "epoch", "epoch": epoch, "step": state.step,
               "train_loss": float(loss_sum) / max(num_batches, 1),
               **evaluate(model, val_loader, loss_fn, task),
               "lr": _current_lr(optimizer), "seconds": time.perf_counter() - started}
        state.history.append(row)
        emit(callbacks, "on_epoch_end", state=state, row=row, model=model)
        if state.should_stop:
            break

    emit(callbacks, "on_fit_end", state=state, model=model)
    return state
