"""confidence_stats: ECE held to torchmetrics, histogram and accuracy held to numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainwise.train.calibration import confidence_stats, expected_calibration_error

torchmetrics = pytest.importorskip("torchmetrics")
from torchmetrics.classification import MulticlassCalibrationError  # noqa: E402


def random_probs(n: int, c: int, seed: int, temperature: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g) * 3 / temperature
    targets = torch.randint(0, c, (n,), generator=g)
    # make the model right more often than chance, so bins hold both hits and misses
    right = torch.rand(n, generator=g) < 0.6
    logits[right, targets[right]] += 3
    return logits.softmax(dim=1), targets


def numpy_ece(probs: np.ndarray, targets: np.ndarray, num_bins: int = 15) -> float:
    """Independent oracle: sum over bins of (n_b / N) * |accuracy_b - confidence_b|."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    index = np.minimum(np.floor(confidence * num_bins).astype(int), num_bins - 1)
    total = 0.0
    for b in range(num_bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@pytest.mark.parametrize(("n", "c", "seed", "temperature"),
                         [(1, 2, 0, 1.0), (37, 2, 1, 1.0), (500, 10, 2, 1.0), (500, 10, 3, 0.2),
                          (2000, 100, 4, 3.0), (64, 3, 5, 0.05)])
def test_ece_matches_torchmetrics(n, c, seed, temperature):
    probs, targets = random_probs(n, c, seed, temperature)
    metric = MulticlassCalibrationError(num_classes=c, n_bins=15, norm="l1")
    expected = float(metric(probs, targets))
    stats = confidence_stats(probs, targets)
    assert stats["ece"] == pytest.approx(expected, abs=1e-6)
    assert stats["ece"] == pytest.approx(numpy_ece(probs.numpy(), targets.numpy()), abs=1e-5)


def test_ece_matches_torchmetrics_accumulated_over_batches():
    probs, targets = random_probs(1000, 10, 7)
    metric = MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")
    for chunk in range(0, 1000, 128):
        metric.update(probs[chunk: chunk + 128], targets[chunk: chunk + 128])
    assert confidence_stats(probs, targets)["ece"] == pytest.approx(float(metric.compute()),
                                                                    abs=1e-6)


def test_confidences_on_bin_edges_and_at_one_bucket_like_torchmetrics():
    # top probabilities exactly 0.4, 0.6, 0.8 and 1.0 (edges of both the 15 and 20 bins)
    conf = torch.tensor([0.4, 0.6, 0.8, 1.0, 1.0, 0.6])
    probs = torch.stack([conf, (1 - conf) / 2, (1 - conf) / 2], dim=1)
    targets = torch.tensor([0, 1, 0, 0, 2, 0])
    metric = MulticlassCalibrationError(num_classes=3, n_bins=15, norm="l1")
    expected = float(metric(probs, targets))
    assert confidence_stats(probs, targets)["ece"] == pytest.approx(expected, abs=1e-6)
    correct = torch.tensor([True, False, True, True, False, True])
    assert expected_calibration_error(conf, correct) == pytest.approx(expected, abs=1e-6)


def test_accuracy_mean_confidence_and_histogram():
    probs, targets = random_probs(777, 5, 11)
    stats = confidence_stats(probs, targets)
    confidence = probs.max(dim=1).values.numpy()
    assert stats["accuracy"] == pytest.approx(
        float((probs.argmax(dim=1) == targets).float().mean()), abs=1e-7)
    assert stats["mean_confidence"] == pytest.approx(float(confidence.mean()), abs=1e-6)
    hist = stats["confidence_hist"]
    assert len(hist) == 20 and all(isinstance(count, int) for count in hist)
    assert sum(hist) == 777
    expected, _ = np.histogram(confidence, bins=20, range=(0.0, 1.0))  # last bin closed
    assert hist == expected.tolist()
    assert (stats["num_samples"], stats["num_classes"], stats["num_nonfinite"]) == (777, 5, 0)


def test_histogram_puts_certainty_in_the_last_bin_and_takes_other_bin_counts():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.74, 0.26]])
    stats = confidence_stats(probs, torch.tensor([0, 1, 0]), num_bins=4)
    assert stats["confidence_hist"] == [0, 0, 2, 1]


def test_half_precision_input_is_accepted():
    probs, targets = random_probs(300, 4, 3)
    full = confidence_stats(probs, targets)
    half = confidence_stats(probs.half(), targets)
    assert half["accuracy"] == full["accuracy"]
    assert half["ece"] == pytest.approx(full["ece"], abs=5e-3)


def test_non_finite_rows_count_as_wrong_and_leave_ece_undefined():
    probs, targets = random_probs(10, 3, 0)
    probs[0] = float("nan")
    stats = confidence_stats(probs, targets)
    assert stats["num_nonfinite"] == 1 and sum(stats["confidence_hist"]) == 9
    assert np.isnan(stats["ece"]) and np.isnan(stats["mean_confidence"])
    correct = (probs[1:].argmax(dim=1) == targets[1:]).sum().item()
    assert stats["accuracy"] == pytest.approx(correct / 10)


@pytest.mark.parametrize(("probs", "targets", "match"), [
    (torch.randn(8, 3) * 5, torch.zeros(8, dtype=torch.long), "softmax"),
    (torch.full((8,), 0.5), torch.zeros(8, dtype=torch.long), r"\(N, C\)"),
    (torch.full((8, 2), 0.5), torch.zeros(7, dtype=torch.long), r"\(N, C\)"),
    (torch.full((8, 2), 0.5), torch.zeros(8), "integer class targets"),
    (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), "at least one"),
])
def test_bad_inputs_say_what_was_expected(probs, targets, match):
    with pytest.raises(ValueError, match=match):
        confidence_stats(probs, targets)


def test_does_not_touch_autograd_or_inputs():
    probs, targets = random_probs(50, 3, 1)
    probs.requires_grad_(True)
    before = probs.detach().clone()
    stats = confidence_stats(probs, targets)
    assert isinstance(stats["ece"], float)
    assert torch.equal(probs.detach(), before)
