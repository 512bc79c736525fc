"""The loop's side of checkpoints: gather the whole training state, and put it back.

What a bitwise resume needs (on the CPU): model, optimizer, scheduler, the AMP scaler (kept by
Fabric's precision plugin), stateful callbacks (early stopping and the best weights), the
step/epoch counters, the position in the data, and every process's RNG states. Under FSDP the
model and optimizer are gathered whole (train/full_state.py), so every checkpoint has the
layout of a one-device run's, whatever the strategy and process count that wrote it.

Another process count on resume: the loader batch is the global batch and the data position
counts global steps, so the data order, the schedule and the effective batch carry over. Each
process takes a saved RNG state in turn, so dropout draws (and float summation order) differ
from the uninterrupted run: close, not bitwise. Refused only when an epoch would have another
number of steps (a last, smaller batch that splits evenly over one count and not the other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_fabric import Fabric
from torch import nn

from trainwise.distributed import any_process, gather_objects
from trainwise.train.checkpoint import CheckpointError, load_into, save_checkpoint
from trainwise.train.full_state import (
    full_state_dicts,
    is_sharded_module,
    load_full_state,
    raw_optimizer,
)
from trainwise.train.position import EpochProgress, capture_rng


def _stateful(callbacks: list[Any]) -> dict[str, Any]:
    """Callbacks with state, keyed by class name (#n for repeats): rank 0 may hold more
    callbacks (writers, progress bar) than the others, so list positions would not match."""
    keyed: dict[str, Any] = {}
    for callback in callbacks:
        if hasattr(callback, "state_dict") and hasattr(callback, "load_state_dict"):
            name, number = type(callback).__name__, 1
            while (f"{name}#{number}" if number > 1 else name) in keyed:
                number += 1
            keyed[f"{name}#{number}" if number > 1 else name] = callback
    return keyed


def save_training_state(*, fabric: Fabric, path: Path, model: nn.Module, optimizer: Any,
                        scheduler: Any, callbacks: list[Any], state: Any,
                        progress: EpochProgress, extra: dict[str, Any]) -> None:
    """Every process calls this (RNG states and FSDP shards are gathered); global rank 0 writes
    the file."""
    rng = gather_objects(fabric, capture_rng())
    has_state = is_sharded_module(model) and any_process(
        fabric, bool(raw_optimizer(optimizer).state))
    model_state, optimizer_state = full_state_dicts(  # the user's module's keys, on any strategy
        model, optimizer, has_state=has_state, is_global_zero=fabric.is_global_zero)
    if fabric.is_global_zero:
        payload = {
            "model": model_state,
            "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "precision": fabric.strategy.precision.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in _stateful(callbacks).items()},
            "train_state": {"step": state.step, "epoch": state.epoch,
                            "should_stop": state.should_stop, "stop_reason": state.stop_reason,
                            "num_history_rows": len(state.history)},
            "progress": progress.state_dict(),
            "rng": rng,  # one entry per process, in rank order
            "world_size": fabric.world_size,
            "steps_per_epoch": _steps_per_epoch(progress),
            "extra": extra,
        }
        save_checkpoint(payload, path)
    state.checkpoint_step = state.step
    if fabric.world_size > 1:
        fabric.barrier()  # nobody runs ahead of a checkpoint that may be the one resumed from


def restore_training(fabric: Fabric, payload: dict[str, Any], model: nn.Module, optimizer: Any,
                     scheduler: Any, callbacks: list[Any], state: Any,
                     progress: EpochProgress) -> None:
    """Load a checkpoint's state into a freshly set-up loop (same model, loaders, callbacks)."""
    check_steps_per_epoch(payload, _steps_per_epoch(progress), fabric.world_size)
    if is_sharded_module(model):
        try:
            load_full_state(model, optimizer, payload["model"], payload["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint's model or optimizer state does not fit this "
                                  f"model ({str(exc).splitlines()[0][:300]}). The model changed "
                                  "since the checkpoint was written; resume with the same model "
                                  "and config, or start a new run.") from None
    else:
        load_into(model, payload["model"], "model")
        load_into(optimizer, payload["optimizer"], "optimizer")
    if scheduler is not None and payload.get("scheduler") is not None:
        load_into(scheduler, payload["scheduler"], "scheduler")
    if payload.get("precision"):
        fabric.strategy.precision.load_state_dict(payload["precision"])
    saved = payload.get("callbacks", {})
    for key, callback in _stateful(callbacks).items():
        if key in saved:
            callback.load_state_dict(saved[key])
    counters = payload["train_state"]
    state.step, state.epoch = int(counters["step"]), int(counters["epoch"])
    state.should_stop, state.stop_reason = counters["should_stop"], counters["stop_reason"]
    state.history = list(payload.get("history", []))
    state.resumed_from_step = state.checkpoint_step = state.step
    rng = payload["rng"]  # a different process count reuses the saved states in turn
    try:
        progress.load_state_dict(payload["progress"], rng[fabric.global_rank % len(rng)])
    except ValueError as exc:
        raise CheckpointError(f"cannot resume the data order: {exc}. Resume with the same "
                              "data and loader settings as the interrupted run.") from None


def _steps_per_epoch(progress: EpochProgress) -> int | None:
    try:
        return len(progress.loader)
    except TypeError:  # a loader without a length (an IterableDataset)
        return None


def check_steps_per_epoch(payload: dict[str, Any], now: int | None, world_size: int) -> None:
    """The data position and the schedule count optimizer steps: an epoch must have as many
    steps now as when the checkpoint was written."""
    then, saved_world = payload.get("steps_per_epoch"), payload.get("world_size", 1)
    if then is None or now is None or then == now:
        return
    raise CheckpointError(
        f"an epoch had {then} optimizer steps over the {saved_world} process(es) that wrote the "
        f"checkpoint and has {now} over {world_size} now (a last, smaller batch is skipped when "
        "it does not split evenly over the processes), so the position in the data and the "
        f"schedule cannot carry over. Resume with {saved_world} process(es) (--devices "
        f"{saved_world} on one machine), or start a new run.")


class Checkpoints:
    """The loop's checkpoint schedule: at the start (step 0), every `every` optimizer steps
    (0: never mid-epoch) and at each epoch end; never after a non-finite loss, so the file
    on disk is always the last good state. `path=None` turns checkpoints off."""

    def __init__(self, fabric: Fabric, path: Path | None, every: int, extra: dict[str, Any],
                 **objects: Any):
        self.fabric, self.path, self.every, self.extra = fabric, path, every, extra
        self.objects = objects  # model, optimizer, scheduler, callbacks, state, progress

    def begin(self, resume_state: dict[str, Any] | None) -> None:
        """Restore `resume_state`, or write the first checkpoint (a kill before step 1)."""
        if resume_state is not None:
            restore_training(self.fabric, resume_state, **self.objects)
        else:
            self.save()

    def due(self, step: int) -> bool:
        return self.path is not None and self.every > 0 and step % self.every == 0

    def save_if_due(self, step: int) -> None:
        if self.due(step):
            self.save()

    def save(self) -> None:
        if self.path is None or self.objects["state"].nonfinite is not None:
            return
        save_training_state(fabric=self.fabric, path=self.path, extra=self.extra,
                            **self.objects)
