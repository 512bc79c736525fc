"""What tune_lr checks before its range test: that the short runs after it can run.

Each problem here would otherwise surface only once the whole range test is done (minutes on
a real model): as a raw error (len() of a stream, torch.cat of no batch) or as a pick that
means little (2-step short runs on a data set smaller than one batch, every candidate
trained alike by a make_optimizer that ignores its lr). Checking costs one validation batch
and two optimizers and schedules, built and never stepped with a gradient.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError, error
from trainwise.train.evaluate import inputs_and_targets
from trainwise.tune.no_trace import no_trace, probe_loader
from trainwise.tune.probe_errors import (
    FRESH_OPTIMIZER,
    MAKE_OPTIMIZER,
    ProbeStop,
    check_fills_a_batch,
    fresh_optimizer,
    no_batch,
)

PROBE_LRS = (1e-3, 1e-2)  # two candidate peaks a decade apart, whose optimizers and schedules
# must differ
PROBE_STEPS = 10  # schedules are compared over 10 steps, not at their start alone: a warmup
# from 0 (LambdaLR(lambda s: s / n)) starts every peak at lr 0
LENGTH_PROBE = 1009  # total_steps asked of make_scheduler to see that it builds over them: a
# OneCycleLR pasted with total_steps=10 passed the 10-step probe above and then failed inside
# a short run as PyTorch's bare "Tried to step 11 times" (audit s13 T15); an odd count no
# pasted schedule is likely to have


def short_run_problem(model: nn.Module, train_loader: Iterable, val_loader: Iterable,
                      make_optimizer: Callable[..., Any],
                      make_scheduler: Callable[..., Any] | None, task: str) -> Finding | None:
    """The error finding of a data problem the short runs would meet (None: none); raise
    TrainwiseError for a call that cannot work."""
    check_takes_lr(make_optimizer)
    check_scheduler_signature(make_scheduler)
    check_sized(train_loader)
    try:  # (no batch at all and smaller than one batch never hold together: any order)
        check_fills_a_batch(train_loader, "short_runs_smaller_than_batch")
        check_batches(train_loader, val_loader, task)
    except ProbeStop as stop:
        return stop.finding
    if any(p.requires_grad for p in model.parameters()):  # else the range test says so first
        check_follows_lr(model, make_optimizer, make_scheduler)
    return None


def check_batches(train_loader: Iterable, val_loader: Iterable, task: str) -> None:
    """Raise ProbeStop when the training loader yields no batch or the validation loader
    cannot be scored (check_validation): what tune_lr checks before its range test and
    short_runs, which is public, again before it trains."""
    if len(train_loader) == 0:  # type: ignore[arg-type]
        raise no_batch("short_runs_no_batch", train_loader)
    check_validation(val_loader, task)


def check_takes_lr(make_optimizer: Callable[..., Any]) -> None:
    """The short runs call make_optimizer(model, lr); the range test make_optimizer(model)."""
    try:
        inspect.signature(make_optimizer).bind(nn.Module(), 1e-3)
    except TypeError as why:
        raise TrainwiseError(
            f"make_optimizer cannot be called as make_optimizer(model, lr) ({why}): the short "
            "runs build one optimizer per candidate lr. Give it an lr parameter that the range "
            f"test may leave out, e.g. {MAKE_OPTIMIZER}.") from None
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


def check_follows_lr(model: nn.Module, make_optimizer: Callable[..., Any],
                     make_scheduler: Callable[..., Any] | None) -> None:
    """Each short run must train at its own candidate peak: refuse a make_optimizer or a
    make_scheduler that sets the lr itself (AdamW(..., lr=1e-3) whatever `lr` says,
    OneCycleLR(max_lr=0.01)). Every candidate then trained alike, and the search widened to
    an edge and picked an lr below the whole range it had measured."""
    low, high = (fresh_optimizer(make_optimizer(model, lr), model) for lr in PROBE_LRS)
    if low is high:  # the user's own optimizer: a schedule built on it below would change it
        raise TrainwiseError("make_optimizer returned the same optimizer object for two lrs: "
                             "each short run needs its own. " + FRESH_OPTIMIZER)
    lrs = _group_lrs(low)
    if same_values(lrs, _group_lrs(high)):
        raise TrainwiseError(
            f"make_optimizer(model, lr) gave the same group lrs {lrs} for lr={PROBE_LRS[0]:g} "
            f"and lr={PROBE_LRS[1]:g}: it does not use the lr it is passed, so every short run "
            f"would train alike. Build the optimizer at `lr`, e.g. {MAKE_OPTIMIZER}; with "
            "groups of your own, scale each group's lr by it.")
    if make_scheduler is not None and same_values(_schedule(make_scheduler, low),
                                            _schedule(make_scheduler, high)):
        raise TrainwiseError(
            f"make_scheduler(optimizer, total_steps) gave the same lrs over {PROBE_STEPS} steps "
            f"for the peaks {PROBE_LRS[0]:g} and {PROBE_LRS[1]:g}: it sets the lr itself (e.g. "
            "OneCycleLR(optimizer, max_lr=0.01, ...)), so every short run would train alike. "
            "Take the peak from the optimizer, as the default onecycle does: max_lr=[group['lr'] "
            "for group in optimizer.param_groups]; or use a schedule that scales the "
            "optimizer's lr (CosineAnnealingLR, LambdaLR).")
    if make_scheduler is not None:
        check_schedule_length(make_scheduler, fresh_optimizer(make_optimizer(model, PROBE_LRS[0]),
                                                              model))


def check_schedule_length(make_scheduler: Callable[..., Any], optimizer: Any) -> None:
    """A OneCycleLR must span the total_steps it is given: it raises once stepped past its
    own. (Inside a SequentialLR a shorter one is the design, so only the top one is read.)"""
    scheduler = make_scheduler(optimizer, LENGTH_PROBE)
    if not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) \
            or scheduler.total_steps >= LENGTH_PROBE:
        return
    raise TrainwiseError(
        f"make_scheduler(optimizer, total_steps) must build the schedule over the total_steps "
        f"it is given: asked for {LENGTH_PROBE} steps, it built a OneCycleLR of "
        f"{scheduler.total_steps}, which PyTorch refuses to step past (\"Tried to step "
        f"{scheduler.total_steps + 1} times\"); each short run asks for its own length. Pass "
        "it on: make_scheduler=lambda optimizer, total_steps: OneCycleLR(optimizer, max_lr=["
        "group['lr'] for group in optimizer.param_groups], total_steps=total_steps).")


def check_per_step(scheduler: Any) -> None:
    """The training loop steps a schedule once per optimizer step, with no metric."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TrainwiseError(
            "make_scheduler returned ReduceLROnPlateau, which steps on a validation metric, not "
            "once per batch as the training loop steps schedules. Give a per-step schedule "
            "(e.g. OneCycleLR over total_steps, as the default onecycle), or None for a "
            "constant lr.")


def _schedule(make_scheduler: Callable[..., Any], optimizer: Any) -> list[float] | None:
    """The group lrs over PROBE_STEPS steps of the schedule built on `optimizer` (None: no
    schedule, a constant lr; or lrs that are not numbers)."""
    scheduler = make_scheduler(optimizer, PROBE_STEPS)
    if scheduler is None:
        return None
    check_per_step(scheduler)
    lrs: list[float] = []
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": by design
        warnings.simplefilter("ignore")
        for _ in range(PROBE_STEPS - 1):
            lrs += _group_lrs(optimizer) or [math.nan]
            scheduler.step()
    return lrs + (_group_lrs(optimizer) or [math.nan])


def _group_lrs(optimizer: Any) -> list[float] | None:
    """None when a group's lr is not a number (e.g. Adafactor's lr=None): then no check."""
    try:
        return [float(group["lr"]) for group in optimizer.param_groups]
    except (KeyError, TypeError, ValueError):
        return None


def same_values(first: list[float] | None, second: list[float] | None,
                rel_tol: float = 1e-9) -> bool:
    """Equal lengths and every pair equal within `rel_tol` (None: not comparable, False)."""
    return first is not None and second is not None and len(first) == len(second) and all(
        math.isclose(a, b, rel_tol=rel_tol) for a, b in zip(first, second, strict=True))
