"""Confidence statistics of a classifier on one split: accuracy, mean confidence, ECE and
the histogram of top softmax probabilities that the report draws and the diagnosis reads.

ECE is written out here rather than taken from torchmetrics: importing torchmetrics pulls in
torchvision and costs seconds per process (measured 3-13 s on the 2-core CI box), and the
formula is a dozen lines. It reproduces `MulticlassCalibrationError(n_bins=15, norm="l1")`
exactly (same bucketing, `torch.bucketize(..., right=True)` on `linspace(0, 1, n + 1)`);
tests/test_calibration.py holds it to torchmetrics within 1e-6.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

ECE_BINS = 15  # torchmetrics' default, so our number matches what users compare it with
_PROB_TOLERANCE = 1e-3  # rows of float16 softmax output sum to 1 only within ~1e-3


def _validate(probs: Tensor, targets: Tensor) -> None:
    if probs.ndim != 2 or targets.ndim != 1 or probs.shape[0] != targets.shape[0]:
        raise ValueError(f"expected probs (N, C) and targets (N,), got {tuple(probs.shape)} and "
                         f"{tuple(targets.shape)}; flatten extra dimensions first")
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"no samples or no classes (probs {tuple(probs.shape)}): confidence "
                         "statistics need at least one prediction over at least one class")
    if not probs.is_floating_point() or targets.is_floating_point():
        raise ValueError(f"expected float probabilities and integer class targets, got "
                         f"{probs.dtype} and {targets.dtype}")
    values = probs[torch.isfinite(probs)]
    low, high = (float(values.min()), float(values.max())) if values.numel() else (0.0, 1.0)
    if not (low >= -_PROB_TOLERANCE and high <= 1 + _PROB_TOLERANCE):
        raise ValueError(f"probs must be probabilities in [0, 1], got values in [{low:.3g}, "
                         f"{high:.3g}]; pass logits.softmax(dim=1), not raw logits")


def expected_calibration_error(confidences: Tensor, correct: Tensor,
                               num_bins: int = ECE_BINS) -> float:
    """Top-label ECE = sum_b (n_b / N) |accuracy_b - confidence_b| over uniform bins."""
    edges = torch.linspace(0, 1, num_bins + 1, dtype=confidences.dtype,
                           device=confidences.device)
    # right=True puts a confidence equal to an edge in the upper bin, and 1.0 in an extra
    # (num_bins + 1)-th bin, exactly as torchmetrics does; both give the same sum.
    index = torch.bucketize(confidences, edges, right=True) - 1
    size = num_bins + 1
    count = torch.zeros(size, dtype=confidences.dtype, device=confidences.device)
    conf_sum, correct_sum = torch.zeros_like(count), torch.zeros_like(count)
    count.scatter_add_(0, index, torch.ones_like(confidences))
    conf_sum.scatter_add_(0, index, confidences)
    correct_sum.scatter_add_(0, index, correct.to(confidences.dtype))
    # Same operations in the same order as torchmetrics' _binning_bucketize, so the float32
    # rounding matches too.
    accuracy = torch.nan_to_num(correct_sum / count)
    confidence = torch.nan_to_num(conf_sum / count)
    share = count / count.sum()
    return float(torch.sum(torch.abs(accuracy - confidence) * share))


def confidence_hist(confidences: Tensor, num_bins: int = 20) -> list[int]:
    """Counts of confidences in `num_bins` equal bins over [0, 1]; 1.0 goes in the last."""
    index = (confidences * num_bins).floor().long().clamp_(0, num_bins - 1)
    return torch.bincount(index, minlength=num_bins).tolist()


@torch.no_grad()
def confidence_stats(probs: Tensor, targets: Tensor, num_bins: int = 20) -> dict[str, Any]:
    """Accuracy, mean top probability, ECE (15 bins, L1) and a `num_bins` histogram.

    probs: (N, C) softmax probabilities; targets: (N,) class indices.
    """
    _validate(probs, targets)
    # float32 as torchmetrics does: half-precision sums over many samples lose digits
    probs = probs.detach().float()
    targets = targets.to(probs.device)
    # A diverged model outputs NaN; its epoch row must still be written (the diagnosis reads
    # it), so such rows count as wrong and leave mean confidence and ECE undefined (NaN).
    ok = torch.isfinite(probs).all(dim=1)
    confidences, predictions = probs[ok].max(dim=1)
    correct = predictions.eq(targets[ok])
    all_finite = bool(ok.all())
    nan = float("nan")
    return {
        "accuracy": float(correct.sum()) / probs.shape[0],
        "mean_confidence": float(confidences.mean()) if all_finite else nan,
        "ece": expected_calibration_error(confidences, correct) if all_finite else nan,
        "confidence_hist": confidence_hist(confidences, num_bins),
        "num_samples": int(probs.shape[0]),
        "num_nonfinite": int((~ok).sum()),
        "num_classes": int(probs.shape[1]),
    }
