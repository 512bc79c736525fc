"""Class weights for imbalanced classification (train.class_weights = "balanced").

Each class weighs n / (k * n_c) on the training split (scikit-learn's "balanced"), so the k
present classes contribute equally to the loss however rare they are.

The loss is the per-sample weighted cross-entropy averaged over the batch (Keras' class_weight),
not torch's CrossEntropyLoss(weight=...), which divides by the batch's sum of weights. Ours is a
plain mean of per-sample terms, so micro-batches (train.accumulate_grad_batches) and processes
(DDP) add up to exactly the whole batch's loss, as they do unweighted; and since the "balanced"
weights average 1 over the training rows, the loss keeps its unweighted scale (log C at
initialisation), which the preflight check and the lr range test read.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def balanced_class_weights(train_targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """(C,) float32: n / (k * n_c) for the k classes present in the training split; 0 for a
    class with no training row (no row can carry it there)."""
    counts = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=num_classes)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


class ClassWeightedCrossEntropy(nn.Module):
    """mean_i w[y_i] * CE(logits_i, y_i) on logits (B, C) and labels (B,)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights.float())

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_sample = nn.functional.cross_entropy(output, target, reduction="none")  # (B,)
        # the outputs may be on an accelerator, or on the host (evaluation gathers them there)
        weights = self.weights.to(per_sample.device, per_sample.dtype)
        return (weights[target] * per_sample).mean()
