"""What `trainwise.Monitor` says, once, about the targets a user's loss is given: the pairs of
loss and target that torch accepts without a word but that train on the wrong thing (binary
cross-entropy on -1/+1 labels, a (B, 1) output broadcast against (B,) targets), and how targets
that are not one class per row (multi-label, soft labels) are scored.

Checked on the first validation batch of each evaluation, never per step: the step cost stays
that of the loss alone (bench/overhead.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional

from trainwise.findings import Finding, error, info, warning
from trainwise.model.summary import check_regression  # the `trainwise run` shape rule

STAGE = "train"
# element-wise losses that broadcast mismatched shapes (torch only warns)
REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
REGRESSION_FUNCTIONS = (functional.mse_loss, functional.l1_loss, functional.smooth_l1_loss,
                        functional.huber_loss)
# the row's calibration keys (evaluate.py): a soft target is itself uncertain, so a confidence
# below the argmax accuracy is what training on it should give, not under-confidence
CALIBRATION_KEYS = ("val_mean_confidence", "val_ece", "val_confidence_hist", "val_reliability")


def is_binary_loss(loss_fn: Any) -> bool:
    """Binary cross-entropy on logits (nn.BCELoss, on probabilities, refuses targets outside
    [0, 1] itself)."""
    return isinstance(loss_fn, nn.BCEWithLogitsLoss) or \
        loss_fn is functional.binary_cross_entropy_with_logits


def is_cross_entropy(loss_fn: Any) -> bool:
    return isinstance(loss_fn, nn.CrossEntropyLoss) or loss_fn is functional.cross_entropy


def is_multi_label(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> bool:
    """Several logits per sample, each its own yes/no under a binary loss: (N, K), K > 1."""
    return (is_binary_loss(loss_fn) and outputs.shape == targets.shape
            and outputs.ndim >= 2 and outputs.shape[-1] > 1)


def is_soft_label(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> bool:
    """Cross-entropy against class probabilities (N, C) (mixup, distillation, smoothing by
    hand), not class indices (N,)."""
    return (is_cross_entropy(loss_fn) and targets.is_floating_point()
            and outputs.ndim == 2 and targets.shape == outputs.shape)


def target_findings(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any
                    ) -> list[Finding]:
    """The findings about one validation batch's (outputs, targets) under `loss_fn`."""
    found = [f for f in (_binary_range(targets, loss_fn),
                         _broadcast(outputs, targets, loss_fn)) if f is not None]
    if is_multi_label(outputs, targets, loss_fn):
        found.append(_multi_label_note(outputs))
    elif is_soft_label(outputs, targets, loss_fn):
        found.append(_soft_label_note(outputs))
    return found


def _binary_range(targets: torch.Tensor, loss_fn: Any) -> Finding | None:
    """Binary cross-entropy is -t log p - (1 - t) log(1 - p): a target outside [0, 1] makes it
    unbounded below, so the model learns extreme logits and the loss goes negative."""
    if not is_binary_loss(loss_fn) or not targets.numel():
        return None
    low, high = float(targets.min()), float(targets.max())
    if low >= 0 and high <= 1:
        return None
    signs = low == -1 and high == 1
    mapping = "map -1/+1 to 0/1 ((y + 1) / 2)" if signs else \
        "map each label to 0 (absent) or 1 (present)"
    return error(
        STAGE, "binary_target_range",
        f"BCEWithLogitsLoss got targets from {low:g} to {high:g}, but binary cross-entropy "
        "needs targets in [0, 1]: outside it the loss has no lower bound (it goes "
        "negative) and training pushes the logits to extremes instead of learning the "
        "labels. The accuracy and calibration metrics are skipped: they would score labels "
        "the loss never saw.",
        f"BCE needs targets in [0, 1]: {mapping} in your data pipeline, before the loss, "
        "then train again from the start.",
        target_min=low, target_max=high)


def _broadcast(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any) -> Finding | None:
    """An element-wise loss on (B, 1) outputs and (B,) targets broadcasts them to (B, B): each
    output is pulled toward every target of the batch, so the model learns their mean."""
    element_wise = isinstance(loss_fn, REGRESSION_LOSSES) or loss_fn in REGRESSION_FUNCTIONS
    if not element_wise:
        return None
    shape = next(iter(check_regression(outputs, targets, STAGE)), None)
    if shape is None:
        return None
    out, target = tuple(outputs.shape), tuple(targets.shape)
    squeezed = shape.code == "regression_output_squeezed"
    fix = ("Squeeze the output (loss_fn(model(x).squeeze(-1), y)) or unsqueeze the target "
           "(y[:, None]) so the two have the same shape" if squeezed else
           "Give the output and the target the same shape (one output per target value)")
    return warning(
        STAGE, "loss_broadcasts",
        f"The loss compares outputs {out} with targets {target}: torch broadcasts them "
        "instead of pairing them" + (f" (to {(out[0], target[0])})" if squeezed else "")
        + ", so each output is pulled toward every target in its batch and the model learns "
        "their mean; the loss and gradients are the wrong ones.",
        fix + ", then train again from the start (the metrics already pair them row by row).",
        output_shape=list(out), target_shape=list(target))


def _multi_label_note(outputs: torch.Tensor) -> Finding:
    labels = int(outputs.shape[-1])
    return info(
        STAGE, "multi_label_metrics",
        f"Multi-label outputs ({labels} logits per sample, each a yes/no under binary "
        "cross-entropy): each label is scored as its own binary prediction, sigmoid(logit) > "
        "0.5. val_accuracy is the per-label accuracy (1 - Hamming loss), the confidence and "
        "ROC-AUC pool every (sample, label) pair; class 1 means 'label present'. The "
        "exact-match (subset) accuracy is not computed: pass your own to monitor.end_epoch.",
        num_labels=labels)


def _soft_label_note(outputs: torch.Tensor) -> Finding:
    return info(
        STAGE, "soft_label_metrics",
        f"Soft-label targets (a probability for each of the {int(outputs.shape[1])} classes, "
        "as mixup or distillation give): the accuracy is scored against "
        "each target's most likely class (its argmax); the loss is yours, on the soft targets. "
        "Calibration (confidence, ECE) is not judged: a model that learns uncertain targets "
        "should be less confident than its argmax accuracy. A validation loader that yields "
        "class indices (N,) scores against the labels themselves, calibration included.",
        num_classes=int(outputs.shape[1]))
