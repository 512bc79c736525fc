"""What fit refuses before it starts, each with what to pass instead: a scheduler it cannot
step, a missing validation loader, a micro-batch count that leaves empty micro-batches, a
batch of one under BatchNorm. And
the scheduler's step at its interval, chosen once so the loop has no per-step branch."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import nn

from trainwise.findings import TrainwiseError

SCHEDULER_INTERVALS = ("step", "epoch")
# set while trainwise's own stages call fit with a schedule they built (schedule_in_steps)
_SCHEDULE_IN_STEPS: ContextVar[bool] = ContextVar("schedule_in_steps", default=False)


def check_scheduler(scheduler: Any, interval: str) -> None:
    """Raise for a scheduler fit cannot step: an unknown interval, or ReduceLROnPlateau,
    whose step() needs a metric (stepped without one it raises a bare TypeError)."""
    if interval not in SCHEDULER_INTERVALS:
        raise TrainwiseError(f"scheduler_interval={interval!r}; expected 'step' (the scheduler "
                             "steps after every optimizer step) or 'epoch' (after every "
                             "epoch's evaluation).")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TrainwiseError(
            "fit's scheduler is ReduceLROnPlateau, which steps on a validation metric; fit "
            "steps its scheduler without one. Step it yourself from a callback, and pass no "
            "scheduler: class Plateau: def on_epoch_end(self, row): plateau.step(row["
            "'val_loss']), then fit(..., callbacks=[Plateau()]); or give a schedule (OneCycleLR "
            "over the total steps, or StepLR with scheduler_interval='epoch').")


def _no_step() -> None:
    return None


def scheduler_steps(scheduler: Any, interval: str, train_loader: Any = None,
                    max_epochs: int | None = None) -> tuple[Callable[[], Any], ...]:
    """(called after each optimizer step, called after each epoch): `scheduler.step` at its
    interval, a no-op at the other (no per-step branch in the loop); raises for a scheduler
    that cannot be stepped so or has too few steps left for `max_epochs` (None: not checked,
    as on a resume, whose checkpoint restores the scheduler), and warns for one that reads as
    written in epochs."""
    check_scheduler(scheduler, interval)
    steps = steps_per_epoch(train_loader)
    if max_epochs is not None:
        check_steps_left(scheduler, interval, steps, max_epochs)
    if interval == "step":
        warn_if_written_in_epochs(scheduler, steps)
    if scheduler is None:
        return _no_step, _no_step
    return (scheduler.step, _no_step) if interval == "step" else (_no_step, scheduler.step)


def check_steps_left(scheduler: Any, interval: str, steps: int | None, max_epochs: int) -> None:
    """Raise before the first step for a scheduler with a fixed length (OneCycleLR's
    total_steps) that this fit would step past its end: torch raises "Tried to step 31 times"
    only after the first optimizer step has changed the model, as when a notebook cell
    re-runs fit with the scheduler the last run used up (audit s16 N14). Not for trainwise's
    own runs, which may stop a schedule early by design (schedule_in_steps)."""
    total = getattr(scheduler, "total_steps", None)
    if not isinstance(total, int) or steps is None or _SCHEDULE_IN_STEPS.get():
        return
    needed = max_epochs * steps if interval == "step" else max_epochs
    left = total - scheduler.last_epoch  # OneCycleLR raises once last_epoch > total_steps
    if needed <= left:
        return
    per = f"max_epochs={max_epochs} x {steps} steps an epoch" if interval == "step" else \
        f"max_epochs={max_epochs}, once an epoch"
    raise TrainwiseError(
        f"fit's scheduler ({type(scheduler).__name__}, total_steps={total}) has {left} of its "
        f"{total} steps left (it was stepped {scheduler.last_epoch} times, by an earlier fit "
        f"or by hand), and this fit steps it {needed} times ({per}); torch would raise "
        "past its end, after the model had already changed. Build a new optimizer and "
        "scheduler for each fit() call (in a notebook, in the same cell as fit), with "
        f"total_steps={needed}; the model was not changed.")


def steps_per_epoch(train_loader: Any) -> int | None:
    """len(train_loader): one optimizer step per loader batch, whatever the number of
    processes (train/sharding.py); None for a loader without a length (an IterableDataset)."""
    try:
        return len(train_loader) if train_loader is not None else None
    except TypeError:
        return None


def _horizon(scheduler: Any, steps: int) -> tuple[str, int, str] | None:
    """(the scheduler as written, its length in scheduler steps, what stepping it per
    optimizer step does over an epoch of `steps`) for the schedules usually written in
    epochs."""
    schedules = torch.optim.lr_scheduler
    if isinstance(scheduler, schedules.CosineAnnealingLR):
        return (f"CosineAnnealingLR(T_max={scheduler.T_max})", scheduler.T_max,
                f"the lr falls to eta_min and climbs back every {2 * scheduler.T_max} steps")
    if isinstance(scheduler, schedules.StepLR):
        return (f"StepLR(step_size={scheduler.step_size}, gamma={scheduler.gamma})",
                scheduler.step_size, f"the lr is multiplied by {scheduler.gamma} every "
                f"{scheduler.step_size} step(s), {steps // scheduler.step_size} times in the "
                "first epoch")
    if isinstance(scheduler, schedules.MultiStepLR):
        milestones = sorted(scheduler.milestones)
        return (f"MultiStepLR(milestones={milestones})", milestones[-1],
                f"all {len(milestones)} decays happen within the first epoch")
    return None


def warn_if_written_in_epochs(scheduler: Any, steps: int | None) -> None:
    """Warn when a schedule stepped per optimizer step ends within the first epoch:
    CosineAnnealingLR(T_max=3) over 16 steps an epoch oscillates 0.01 -> 0 -> 0.01 every 6
    steps, StepLR(step_size=1, gamma=0.1) leaves lr 1e-5 after 3 steps, and the diagnosis then
    blames the data (audit s14 G7). A warning, not an error: a decay every 100 steps of a
    1000-step epoch may be meant."""
    if _SCHEDULE_IN_STEPS.get():
        return
    found = None if steps is None else _horizon(scheduler, steps)
    if found is None or found[1] >= steps:
        return
    written, _, effect = found
    warnings.warn(
        f"fit(scheduler={written}) steps it after every optimizer step (scheduler_interval="
        f"'step', the default) and an epoch is {steps} steps (len(train_loader)): {effect}. A "
        "schedule written in epochs takes fit(..., scheduler_interval='epoch'); one meant in "
        f"steps counts optimizer steps (max_epochs x {steps} in all).", UserWarning,
        stacklevel=4)


@contextmanager
def schedule_in_steps() -> Iterator[None]:
    """fit calls inside are trainwise's own (the train stage, tune's short runs), with a
    schedule built over the run's optimizer steps: a short run capped below one epoch gives a
    bare CosineAnnealingLR(T_max=40) on a 100-batch loader by design, and the advice about a
    schedule written in epochs named a scheduler the user never wrote (review s14 VT12)."""
    token = _SCHEDULE_IN_STEPS.set(True)
    try:
        yield
    finally:
        _SCHEDULE_IN_STEPS.reset(token)


def check_val_loader(val_loader: Any) -> None:
    """Raise for a missing or empty validation loader before Fabric's setup, which names the
    wrong problem ("Only PyTorch DataLoader are currently supported") or a bare TypeError
    deep in evaluation (audit s12 L13). Lightning runs without one; fit does not, since every
    epoch's row, the diagnosis and early stopping read the validation loss."""
    empty = val_loader is not None and hasattr(val_loader, "__len__") and len(val_loader) == 0
    if val_loader is None or empty:
        raise TrainwiseError(
            f"fit was given {'no val_loader' if val_loader is None else 'an empty val_loader'};"
            " it evaluates on validation rows after every epoch, and the history's val_loss, "
            "the diagnosis (overfitting, collapse) and early stopping all read that loss. Hold "
            "out rows the model never trains on: parts = trainwise.split(y, val_fraction=0.1) "
            "gives row indices (parts.train, parts.val); build the two loaders from "
            "Subset(dataset, parts.train) and Subset(dataset, parts.val).")


def check_accumulation(train_loader: Any, accumulate_grad_batches: int, processes: int) -> None:
    """Raise for a micro-batch count fit cannot use: not a positive integer, or more than
    the rows each process gets of a loader batch (tensor_split would leave empty slices, and
    the user most likely meant Lightning's accumulate_grad_batches: audit s12 L3)."""
    k = accumulate_grad_batches
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise TrainwiseError(f"accumulate_grad_batches={k!r}; expected an integer >= 1 (1: "
                             "no splitting): the number of micro-batches each loader batch is "
                             "cut into.")
    batch_size = getattr(train_loader, "batch_size", None)
    rows = batch_size // processes if isinstance(batch_size, int) else None
    if rows is None or k <= rows:
        return
    raise TrainwiseError(
        f"fit(accumulate_grad_batches={k}) would cut each loader batch of {batch_size} rows "
        f"({rows} per process) into {k} micro-batches, {k - rows} of them empty. fit's "
        "accumulate_grad_batches splits ONE loader batch into k pieces to save memory: the "
        "optimizer step and the effective batch stay the loader's batch (unlike Lightning's, "
        f"which steps once per k loader batches). Give at most {rows}; for a larger effective "
        f"batch, raise the DataLoader's batch_size (e.g. to {batch_size * k}) and keep k to "
        "fit it in memory. (In a config: train.accumulate_grad_batches at most "
        "train.batch_size per process.)")


def check_batch_norm(model: nn.Module, train_loader: Any, accumulate_grad_batches: int,
                     processes: int) -> None:
    """Raise when a training batch would give a BatchNorm in training mode a piece of one
    sample (batch_norm.batch_too_small, the train stage's rule): torch raises a bare
    "Expected more than 1 value per channel when training" at that step (audit s15 B11).
    Every batch, or only the last one of an epoch without drop_last (review s15 VT6: 65 rows
    at batch_size=64 crashed at the end of epoch 1)."""
    batch_size = getattr(train_loader, "batch_size", None)
    if not isinstance(batch_size, int) or not any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
            for m in model.modules()):
        return
    rows = _loader_rows(train_loader)
    # imported here: batch_norm -> tune -> tune.short_runs imports this module
    from trainwise.train.batch_norm import batch_too_small, drop_lone_last_batch

    parts = processes * accumulate_grad_batches
    split = (f" cut into {parts} pieces ({processes} process(es) x accumulate_grad_batches="
             f"{accumulate_grad_batches})" if parts > 1 else "")
    fewer = ", or a lower accumulate_grad_batches" if accumulate_grad_batches > 1 else ""
    if batch_too_small(model, rows or batch_size, batch_size, parts, "train") is not None:
        raise TrainwiseError(
            f"fit's training loader has batch_size={batch_size}{split}, which gives the "
            "model's BatchNorm a batch of one sample: in training mode it cannot compute a "
            "spread from one value and raises. Expected at least 2 rows per piece. Fix: "
            f"DataLoader(..., batch_size=n) with n >= {2 * parts} (16 or more gives steadier "
            f"batch statistics){fewer}, or replace BatchNorm with LayerNorm / GroupNorm in "
            "the model.")
    if rows and not getattr(train_loader, "drop_last", True) and drop_lone_last_batch(
            model, rows, batch_size, parts, "train")[0]:
        raise TrainwiseError(
            f"fit's training loader has {rows} rows at batch_size={batch_size}{split}: each "
            f"epoch's last batch holds {rows % batch_size}, which gives the model's BatchNorm "
            "a batch of one sample, and in training mode it raises at the end of epoch 1. "
            "Expected a last batch of 0 or at least 2 rows per piece. Fix: DataLoader(..., "
            f"drop_last=True), or a batch_size that leaves 0 or {2 * parts}+ of the {rows} "
            "rows over, or replace BatchNorm with LayerNorm / GroupNorm in the model.")


def _loader_rows(train_loader: Any) -> int | None:
    """Rows one epoch draws: the sampler's length (a sampler may draw fewer or more than the
    dataset holds), else the dataset's; None for an IterableDataset."""
    for part in (getattr(train_loader, "sampler", None), getattr(train_loader, "dataset", None)):
        try:
            return len(part)
        except (AttributeError, TypeError):
            continue
    return None
