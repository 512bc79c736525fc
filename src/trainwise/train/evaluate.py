"""Evaluation over a loader: mean loss and metrics, plus confidence statistics."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainwise.train.calibration import confidence_stats


@torch.no_grad()
def predict(model: nn.Module, loader: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """All outputs and targets of a loader, concatenated on the host: (N, C) and (N,)."""
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    for x, y in loader:
        outputs.append(model(x).float().cpu())
        targets.append(y.cpu())
    model.train(was_training)
    return torch.cat(outputs), torch.cat(targets)


def evaluate(model: nn.Module, loader: Any, loss_fn: nn.Module, task: str,
             prefix: str = "val") -> dict[str, Any]:
    """Metrics of one split, keys prefixed ("val_loss", "val_accuracy", ...)."""
    outputs, targets = predict(model, loader)
    row: dict[str, Any] = {f"{prefix}_loss": float(loss_fn(outputs, targets))}
    if task == "classification":
        probs = outputs.softmax(dim=1)
        stats = confidence_stats(probs, targets)
        row[f"{prefix}_accuracy"] = stats["accuracy"]
        row[f"{prefix}_mean_confidence"] = stats["mean_confidence"]
        row[f"{prefix}_ece"] = stats["ece"]
        row[f"{prefix}_confidence_hist"] = stats["confidence_hist"]
    else:
        error = outputs.reshape(targets.shape) - targets
        row[f"{prefix}_mae"] = float(error.abs().mean())
        row[f"{prefix}_rmse"] = float(error.pow(2).mean().sqrt())
    return row
