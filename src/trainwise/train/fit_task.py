"""The task `trainwise.fit` evaluates, when the caller leaves it out: read from one validation
batch, as the Monitor reads it (monitor_eval.infer_task), and refused before the first step when
fit's evaluation cannot score it.

fit defaulted to classification: a regression, a one-logit BCE or a multi-label model trained a
whole epoch and then failed inside calibration with "expected probs (N, C) and targets (N,),
got (200, 1) and (200, 1); flatten extra dimensions first" (audit s10 G7).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from trainwise.findings import TrainwiseError
from trainwise.train.evaluate import batch_outputs
from trainwise.train.first_batch import first_batch_problem, ignored_label
from trainwise.train.monitor_eval import infer_task, one_row_per_prediction
from trainwise.train.monitor_targets import is_binary_loss

MONITOR = "or keep your own training loop and add trainwise.Monitor to it"


class FitTask(NamedTuple):
    """What fit read from the first validation batch: the task, and for a failed training step
    (batch_checks.raise_step_error) the output width and the label the loss skips."""

    task: str
    width: int | None = None  # outputs.shape[1]: the number of classes under cross-entropy
    ignore_index: int = -100


# set while trainwise's own stages call fit after their check stage ran check()'s loss rules
# on the same model and loss: the train stage and tune's short runs (review s16 VF4)
_LOSS_RULES_CHECKED: ContextVar[bool] = ContextVar("loss_rules_checked", default=False)


@contextlib.contextmanager
def loss_rules_checked(checked: bool = True) -> Iterator[None]:
    """With `checked`, fit calls inside that are given their task skip the first-batch read:
    one eval forward and one start of the val loader (its workers) per call, x the number of
    tune's short runs (review s16 VF4). Their failed steps then get torch's own IndexError
    for labels beyond the width: check() named those on the same model and loss."""
    token = _LOSS_RULES_CHECKED.set(checked)
    try:
        yield
    finally:
        _LOSS_RULES_CHECKED.reset(token)


def fit_task(model: nn.Module, val_loader: Any, loss_fn: Any, task: str | None = None
             ) -> FitTask:
    """`task`, or "classification" / "regression" read from the model's outputs on the first
    validation batch (eval mode, no gradients: nothing a training step reads changes). Either
    way a TrainwiseError says what fit cannot train or evaluate on that batch and what to do
    (check()'s loss rules: train/first_batch.py). An empty loader keeps classification."""
    if task is not None and _LOSS_RULES_CHECKED.get():
        return FitTask(task)
    with torch.no_grad(), _randomness_kept(val_loader):
        first = next(iter(batch_outputs(model, val_loader)), None)
    if first is None:
        return FitTask(task or "classification")
    outputs, targets = first
    targets = torch.as_tensor(targets).to(outputs.device)
    problem = first_batch_problem(outputs, targets, loss_fn)
    if not problem and task is None:
        task = infer_task(*one_row_per_prediction(outputs, targets, loss_fn))
        problem = _unscorable(outputs, targets, task, loss_fn)
    if problem:
        raise TrainwiseError(problem)
    width = outputs.shape[1] if outputs.ndim >= 2 else None
    return FitTask(task, width, ignored_label(loss_fn))


@contextlib.contextmanager
def _randomness_kept(loader: Any) -> Iterator[None]:
    """Random states as they were before: starting a DataLoader draws its base seed from its
    generator (or torch's global one), and a shuffling sampler its order, so one batch read
    here would change the batches and dropout masks training then gets (the same loader
    passed as train and val: another order). Python's and numpy's states cover a dataset's own
    augmentation."""
    samplers = (loader, getattr(loader, "sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None))
    generators = {id(g): g for g in (getattr(s, "generator", None) for s in samplers)
                  if isinstance(g, torch.Generator)}
    states = {key: g.get_state() for key, g in generators.items()}
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):  # the CPU generator; the forward is in eval
            yield
    finally:
        for key, generator in generators.items():
            generator.set_state(states[key])
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _unscorable(outputs: torch.Tensor, targets: torch.Tensor, task: str, loss_fn: Any) -> str:
    """Why fit's evaluation (train/evaluate.py) cannot score these shapes, or ''. It scores
    classification as a softmax over (B, C) logits with class indices (B,), and regression as
    one prediction per target value. The binary cases come first and are read from the loss:
    one_row_per_prediction makes a BCE-on-logits model's outputs (N, 2) class rows, so by the
    task they would pass for classification (RT1)."""
    shapes = f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)}"
    binary = _binary_cross_entropy(loss_fn) and outputs.numel() == targets.numel()
    if binary and outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return (f"trainwise.fit got {shapes} under {type(loss_fn).__name__}: a multi-label "
                "model. fit evaluates one class or one number per row, so its regression "
                "metrics would compare raw logits with 0/1 labels. Train one binary model per "
                f"label, {MONITOR}.")
    if binary:  # one logit (or one probability under nn.BCELoss) per row
        return (f"trainwise.fit got {shapes} under {type(loss_fn).__name__}: a one-logit binary "
                "model. fit evaluates classification as a softmax over one logit per class "
                "(nn.CrossEntropyLoss on (B, C) with class indices (B,)). Make the final layer "
                "nn.Linear(d, 2) with nn.CrossEntropyLoss and targets y.long().view(-1), "
                f"{MONITOR}, which handles one-logit nn.BCEWithLogitsLoss models.")
    if task == "classification" and (outputs.ndim != 2 or targets.shape != outputs.shape[:1]):
        return (f"trainwise.fit got {shapes}: fit evaluates classification from (B, C) logits "
                "with class indices (B,). Flatten per-position outputs to (B*T, C) and targets "
                f"to (B*T,) in the model and loader, {MONITOR}.")
    if task == "regression" and outputs.numel() != targets.numel():
        return (f"trainwise.fit got {shapes}: a regression needs one prediction per target "
                "value. Make the final layer's width the number of target values per row; for "
                "class indices, use nn.CrossEntropyLoss with integer targets.")
    return ""


def _binary_cross_entropy(loss_fn: Any) -> bool:
    """BCE on logits (monitor_targets.is_binary_loss) or on probabilities (nn.BCELoss): fit
    scores neither, so both are refused alike; a one-output nn.BCELoss model otherwise passed
    as a regression and was scored with R^2 on probabilities (RT10)."""
    return is_binary_loss(loss_fn) or isinstance(loss_fn, nn.BCELoss) \
        or loss_fn is functional.binary_cross_entropy
