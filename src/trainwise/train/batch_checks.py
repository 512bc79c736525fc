"""Errors of a training step that `check` names, said the same way by fit, the tuning probes
and shape_trace: a loss that is not one number, inputs of another dtype than the model; and
the one declared extra batch item, sample indices (SampleIndexed)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError

# a namedtuple's 3rd field under one of these names is sample indices, by the Dataset's word
INDEX_FIELDS = ("index", "indices", "idx", "sample_index", "sample_indices")


class SampleIndexed(NamedTuple):
    """A Dataset item (or, collated, a batch) whose 3rd item is the sample's index: return
    SampleIndexed(x, y, index) from __getitem__ to have fit, find_lr and Monitor.evaluate
    take (x, y) and leave the index (default_collate and pin_memory keep a namedtuple)."""

    inputs: Any
    targets: Any
    index: Any


def is_sample_indexed(batch: Any) -> bool:
    """A 3-item namedtuple whose 3rd field is named as sample indices (INDEX_FIELDS): the
    Dataset's own declaration, the one source that tells indices from lengths or labels."""
    fields = getattr(type(batch), "_fields", None)
    return isinstance(batch, tuple) and fields is not None and len(batch) == 3 \
        and fields[2] in INDEX_FIELDS


def scalar_loss(loss: torch.Tensor, step: int) -> torch.Tensor:
    """The loss, when it is one number; raise otherwise (a per-sample loss cannot be
    backpropagated as it is, and its mean may not be what the user trains on)."""
    if loss.numel() != 1:
        raise TrainwiseError(_not_one_number(loss, step))
    return loss


def _not_one_number(loss: torch.Tensor, step: int) -> str:
    return (f"loss_fn returned a tensor of shape {tuple(loss.shape)} at step {step}; it must "
            "return one number (use reduction='mean').")


def _first_float(x: Any) -> torch.Tensor | None:
    """The first floating-point tensor of inputs: a tensor, or a tuple, list or dict of them."""
    if torch.is_tensor(x):
        return x if x.is_floating_point() else None
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (tuple, list)) else ()
    return next((t for t in map(_first_float, items) if t is not None), None)


def input_dtype_finding(model: nn.Module, x: Any) -> Finding | None:
    """check's inputs_wrong_dtype error when the inputs' floating dtype is not the model's."""
    from trainwise.checks.data_checks import _dtype as dtype_findings  # check's own message;
    # imported when a step failed: the checks package imports much of train/ itself

    first = _first_float(x)
    found = dtype_findings(model, first) if first is not None else []
    return found[0] if found else None


def raise_if_wrong_dtype(failure: Exception, model: nn.Module, x: Any) -> None:
    """After a forward that raised `failure`: a TrainwiseError with check's message when the
    inputs' dtype is not the model's (torch only says "mat1 and mat2 must have the same
    dtype"). Called on failure only, so a working step pays nothing, and a dtype that Fabric's
    precision converts (bf16-true) is never blamed unless the forward failed."""
    finding = input_dtype_finding(model, x)
    if finding is None:
        return
    said = str(failure).strip().splitlines()[0][:200] if str(failure).strip() else ""
    raise TrainwiseError(f"The forward pass failed ({type(failure).__name__}: {said}): "
                         f"{finding.message} Fix: {finding.fix}") from failure


def raise_step_error(failure: Exception, model: nn.Module, x: Any, loss: Any,
                     step: int) -> None:
    """After a training step raised `failure`: the error find_lr and check give for a loss
    that is not one number (autograd only says "grad can be implicitly created only for
    scalar outputs") or inputs of another dtype than the model. Run on failure only: the
    step itself pays nothing."""
    if torch.is_tensor(loss) and loss.numel() != 1:
        raise TrainwiseError(_not_one_number(loss, step)) from failure
    raise_if_wrong_dtype(failure, model, x)
