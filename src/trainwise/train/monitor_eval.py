"""Validation rows for `trainwise.Monitor`: the user's model, loader and loss, on the shapes
users' models have (binary logits, per-token logits, per-sample losses)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding
from trainwise.train.evaluate import batch_outputs
from trainwise.train.monitor_targets import (
    is_binary_loss,
    is_soft_label,
    target_findings,
)


@torch.no_grad()
def rows_and_loss(model: nn.Module, loader: Any, loss_fn: Any
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[Finding]]:
    """A loader's prediction rows and targets (one_row_per_prediction, batch by batch), the
    user's loss, each batch's weighted by its rows (a mean loss's mean over the whole), and
    target_findings of the first batch."""
    outputs, targets, total, count = [], [], 0.0, 0
    found: list[Finding] = []
    for output, y in batch_outputs(model, loader):
        y = y.to(output.device)
        if not outputs:
            found = target_findings(output, y, loss_fn)
        loss = float(mean_loss(loss_fn, output, y))
        rows, labels = one_row_per_prediction(output, y, loss_fn)
        total, count = total + loss * len(labels), count + len(labels)
        outputs.append(rows.cpu())
        targets.append(labels.cpu())
    return torch.cat(outputs), torch.cat(targets), torch.tensor(total / max(count, 1)), found


def mean_loss(loss_fn: Any, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The user's loss as one number: a per-sample loss is averaged (as step does), a Python
    float taken as it is."""
    return torch.as_tensor(loss_fn(outputs, targets), dtype=torch.float32).mean()


def one_row_per_prediction(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: Any
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (N, C) and targets (N,) for the metrics: each logit under a binary-logit loss
    (one per sample, or one per label of a multi-label model) becomes the two logits (0, z),
    whose softmax is (1 - sigmoid(z), sigmoid(z)); soft-label targets (N, C) become their
    argmax; per-token logits (N, T, C) become (N*T, C), ignored tokens (target < 0) out."""
    if is_binary_loss(loss_fn) and outputs.numel() == targets.numel():
        logit = outputs.reshape(-1).float()
        return torch.stack([torch.zeros_like(logit), logit], dim=1), \
            targets.reshape(-1).round().long()
    if is_soft_label(outputs, targets, loss_fn):
        return outputs, targets.argmax(dim=1)
    if outputs.ndim > 2 and not targets.is_floating_point() \
            and targets.shape == outputs.shape[:-1]:
        flat, labels = outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1)
        kept = labels >= 0
        return flat[kept], labels[kept]
    return outputs, targets


def infer_task(outputs: torch.Tensor, targets: torch.Tensor) -> str:
    classes = outputs.ndim == 2 and outputs.shape[1] > 1 and not targets.is_floating_point()
    return "classification" if classes else "regression"
