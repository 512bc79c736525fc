"""check()'s rules for the loss against the outputs and targets, applied by fit to its first
validation batch before the first step (the outputs are in hand: fit_task reads them).

Missed, they cost a run or a raw torch error: MSELoss on (B, 1) outputs and (B,) targets
averages a (B, B) grid, so the model learns the mean and the diagnosis calls it healthy (val
loss 6.40 against a target variance of 6.44; audit s16 N1); one logit or labels 0/5 under
cross-entropy end in "IndexError: Target 1 is out of bounds" (N5); float labels under
cross-entropy got a regression's advice to change the final layer (N6)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from trainwise.findings import Finding, Severity
from trainwise.train.evaluate import on_outputs_device

_FOR_FIT = ("In fit: return out.squeeze(-1) from the model's forward, or give (B, 1) targets "
            "(TensorDataset(x, y.view(-1, 1))).")


def first_batch_problem(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> str:
    """Why training on batches like this one would fail or train the wrong loss, in check()'s
    words with its code and fix, or ''. outputs and targets are on one device."""
    if targets.ndim == 0:
        return ("[unbatched_loader] fit's val_loader yields batches without a batch dimension "
                f"(targets of shape (), outputs {tuple(outputs.shape)}): a Dataset, or a "
                "DataLoader with batch_size=None, gives one sample at a time. Fix: "
                "DataLoader(dataset, batch_size=64).")
    found = _labels(outputs, targets, loss_fn) or _task_loss(outputs, targets, loss_fn) \
        or _broadcast(outputs, targets, loss_fn)
    if found is None:
        return ""
    extra = f" {_FOR_FIT}" if found.code == "loss_broadcast" else ""
    return f"[{found.code}] {found.message} Fix: {found.fix}{extra}"


def _cross_entropy(loss_fn: Any) -> bool:
    return isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) \
        or loss_fn in (functional.cross_entropy, functional.nll_loss)


def _class_indices_shape(outputs: torch.Tensor, targets: torch.Tensor) -> bool:
    """Targets shaped as class indices for these logits: (B,) for (B, C), (B, d...) for
    (B, C, d...); soft labels (B, C) are not."""
    return outputs.ndim >= 2 and targets.shape == outputs.shape[:1] + outputs.shape[2:]


def _labels(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> Finding | None:
    """check's logits_width_mismatch, labels_wrong_dtype / labels_not_integer and
    labels_out_of_range under cross-entropy, the number of classes being the output width."""
    if not _cross_entropy(loss_fn) or not _class_indices_shape(outputs, targets):
        return None
    from trainwise.checks.data_checks import check_targets  # check's own rules; imported
    from trainwise.model.summary import _width_mismatch  # here: checks/ imports train/

    width = outputs.shape[1]
    kept = targets[targets != ignored_label(loss_fn)]
    if not len(kept):
        return None
    if width == 1:
        seen = 2 if kept.is_floating_point() else int(kept.max()) + 1  # kept is not empty
        return _width_mismatch(outputs, max(2, seen), "train")
    beyond = labels_beyond_width(kept, width)  # labels_out_of_range with fit's fix
    errors = [f for f in check_targets(kept, "classification", width)
              if f.severity is Severity.ERROR]
    if beyond is not None or not errors:
        return beyond
    # fit has no data stage to revisit: the fix itself (y.long()) is what to do
    return replace(errors[0], fix=errors[0].fix.replace("; revisit the data stage", ""))


def ignored_label(loss_fn: Any) -> int:
    """The label cross-entropy skips (its ignore_index; torch's default -100)."""
    return getattr(loss_fn, "ignore_index", -100)


def labels_beyond_width(targets: torch.Tensor, width: int, ignore_index: int = -100
                        ) -> Finding | None:
    """check's labels_out_of_range for integer class indices that the model's output width
    does not cover, with fit's fix (fit has no num_classes: the width is the number of
    classes); None when they fit. Said alike for the first validation batch and a failed
    training step (batch_checks.raise_step_error)."""
    from trainwise.checks.data_checks import check_targets

    kept = targets[targets != ignore_index]
    if not len(kept) or kept.is_floating_point():
        return None
    found = [f for f in check_targets(kept, "classification", width)
             if f.code == "labels_out_of_range"]
    if not found:
        return None
    low, high = int(kept.min()), int(kept.max())
    shift = " (labels 1..C: subtract 1)" if low == 1 and high == width else ""
    # fit has no num_classes and no data stage: check's "fix num_classes; revisit the data
    # stage" is replaced, not appended to (review s16 VX4)
    return replace(found[0], message=(
        f"labels span {low}..{high} but the model's {width} outputs (in fit, the number of "
        f"classes) take class indices 0..{width - 1}{shift}."),
        fix=" ".join(part for part in (_negative_fix(low, width), _wider_fix(high, width))
                     if part))


def _negative_fix(low: int, width: int) -> str:
    """A label below 0 is no class a wider layer could hold: most often the mark of an
    unlabelled row (-1), else a slip in the label encoding."""
    if low >= 0:
        return ""
    return (f"Labels below 0 ({low}) are not class indices: if they mark unlabelled rows, "
            f"drop those rows or pass loss_fn=nn.CrossEntropyLoss(ignore_index={low}) (it "
            "skips that one label value); otherwise the label encoding slipped: re-encode "
            f"the labels as 0..{width - 1}.")


def _wider_fix(high: int, width: int) -> str:
    if high < width:
        return ""
    return (f"Re-encode the labels as 0..{width - 1}, or for {high + 1} classes make the "
            f"final layer nn.Linear(d, {high + 1}).")


def _task_loss(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> Finding | None:
    """check's loss_task_mismatch for a regression loss given class indices and one logit per
    class (MSELoss on (B, 2) and int64 (B,): torch's "size of tensor a (2) must match")."""
    if targets.is_floating_point() or outputs.ndim != 2 or outputs.shape[1] < 2 \
            or not _class_indices_shape(outputs, targets):
        return None
    from trainwise.checks.structure import _task_mismatch

    found = _task_mismatch(loss_fn, "classification")
    return found[0] if found else None


def _broadcast(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> Finding | None:
    """check's loss_broadcast: the loss called on the batch warns that it broadcasts (torch's
    own UserWarning, shown once and easily scrolled past in a notebook)."""
    if outputs.shape == targets.shape or _cross_entropy(loss_fn):
        return None
    from trainwise.checks.structure import _loss_call

    with torch.no_grad():
        found = _loss_call(on_outputs_device(loss_fn), outputs, targets)
    return next((f for f in found if f.code == "loss_broadcast"), None)
