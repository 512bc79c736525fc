"""What tune_lr checks before its range test: that the short runs after it can run.

Each problem here would otherwise surface only once the whole range test is done (minutes on
a real model): as a raw error (len() of a stream, torch.cat of no batch) or as a pick that
means little (2-step short runs on a data set smaller than one batch). Checking costs one
validation batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError, error
from trainwise.train.evaluate import inputs_and_targets
from trainwise.tune.no_trace import no_trace, probe_loader
from trainwise.tune.probe_errors import ProbeStop, check_fills_a_batch, no_batch


def short_run_problem(train_loader: Iterable, val_loader: Iterable,
                      make_optimizer: Callable[..., Any],
                      make_scheduler: Callable[..., Any] | None, task: str) -> Finding | None:
    """The error finding of a data problem the short runs would meet (None: none); raise
    TrainwiseError for a call that cannot work."""
    check_takes_lr(make_optimizer)
    check_scheduler_signature(make_scheduler)
    check_sized(train_loader)
    try:
        if len(train_loader) == 0:  # type: ignore[arg-type]
            raise no_batch("short_runs_no_batch", train_loader)
        check_fills_a_batch(train_loader, "short_runs_smaller_than_batch")
        check_validation(val_loader, task)
    except ProbeStop as stop:
        return stop.finding
    return None


def check_takes_lr(make_optimizer: Callable[..., Any]) -> None:
    """The short runs call make_optimizer(model, lr); the range test make_optimizer(model)."""
    try:
        inspect.signature(make_optimizer).bind(nn.Module(), 1e-3)
    except TypeError as why:
        raise TrainwiseError(
            f"make_optimizer cannot be called as make_optimizer(model, lr) ({why}): the short "
            "runs build one optimizer per candidate lr. Give it an lr parameter that the range "
            "test may leave out, e.g. make_optimizer=lambda model, lr=1e-3: "
            "torch.optim.AdamW(model.parameters(), lr=lr).") from None
    except ValueError:  # a builtin or C function without a signature: let the call decide
        return


def check_scheduler_signature(make_scheduler: Callable[..., Any] | None) -> None:
    """The short runs call make_scheduler(optimizer, total_steps), once per candidate."""
    if make_scheduler is None:
        return
    try:
        inspect.signature(make_scheduler).bind(object(), 100)
    except TypeError as why:
        raise TrainwiseError(
            f"make_scheduler cannot be called as make_scheduler(optimizer, total_steps) "
            f"({why}): each short run builds its schedule over its own total optimizer steps. "
            "E.g. make_scheduler=lambda optimizer, total_steps: torch.optim.lr_scheduler."
            "CosineAnnealingLR(optimizer, T_max=total_steps), or None for a constant lr.") \
            from None
    except ValueError:  # a builtin or C function without a signature: let the call decide
        return


def check_sized(train_loader: Iterable) -> None:
    """The short runs need an epoch's length: their number of epochs is set to reach enough
    steps, and the schedule is compressed over their total steps (OneCycleLR needs it)."""
    try:
        len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        dataset = getattr(train_loader, "dataset", None)
        over = f" over a {type(dataset).__name__}" if dataset is not None else ""
        raise TrainwiseError(
            f"train_loader (a {type(train_loader).__name__}{over}) has no len(): the short "
            "runs need to know how many steps an epoch has (to size the runs and compress the "
            "schedule over them). Use a map-style Dataset (__getitem__ and __len__) in the "
            "DataLoader, give your IterableDataset a __len__ that returns its number of "
            "samples, or set config=TuneConfig(short_runs=False) to keep the range test alone "
            "(find_lr takes streams).") from None


def check_validation(val_loader: Iterable, task: str) -> None:
    """Each candidate is scored by its validation loss: raise ProbeStop when the validation
    loader yields nothing, TrainwiseError when it can be read only once or its targets
    cannot be scored as `task`."""
    if isinstance(val_loader, Iterator):  # a generator: the first candidate would exhaust it
        raise TrainwiseError(
            f"val_loader is a one-shot iterator ({type(val_loader).__name__}): the short runs "
            "evaluate it after every epoch of every candidate. Pass a DataLoader or a list of "
            "batches.")
    batch = first_batch(val_loader)
    if batch is None:
        raise ProbeStop(error(
            "tune", "short_runs_no_val_batch",
            "The validation loader yielded no batch: the short runs score each candidate lr "
            "by its validation loss, so there is nothing to choose by.",
            "Give the validation split some rows (stage 'split', e.g. a larger validation "
            "fraction) and a batch_size no larger than it with drop_last=False, or set "
            "tune.short_runs = false (TuneConfig(short_runs=False)) to train at the range "
            "test's point."))
    if task == "classification":
        check_class_targets(inputs_and_targets(batch)[1])


def check_class_targets(targets: Any) -> None:
    """A classification evaluation (accuracy, calibration) reads integer class indices of
    shape (N,); float targets are a regression's, which then failed after the whole range
    test with "expected probs (N, C) and targets (N,)" and no word of `task`."""
    if not torch.is_tensor(targets) or (targets.ndim == 1 and not targets.is_floating_point()):
        return
    raise TrainwiseError(
        f"task='classification' (the default) but the validation targets are {targets.dtype} "
        f"of shape {tuple(targets.shape)}, where a classification is scored on integer class "
        "indices of shape (N,). For a regression (float targets, e.g. one output column and "
        "MSELoss) pass task='regression'; for classes, give the targets as integer class "
        "indices of shape (N,) (y.long(), y.squeeze(1), or y.argmax(1) for one-hot rows).")


def first_batch(loader: Iterable) -> Any:
    """The loader's first batch, or None when it yields none. The RNGs and the loader's
    generators are left as found: a DataLoader draws its workers' base seed from them on
    every pass, and the range test and short runs must see the same draws as without it."""
    with no_trace(nn.Module(), loader):  # an empty module: only the random state to restore
        return next(iter(probe_loader(loader)), None)
