"""rule_plateau on noisy short runs: flat ones whose batch noise dips below their start, and
healthy ones whose fall is hardly larger than that noise.

Audit s10 G5: a regression on an unstandardised target (mean 5e6), trained with a user's own
loop and trainwise.Monitor, kept its epoch-mean loss at 3.18e13 for 4 epochs with a validation
R^2 of -2.6, and was called healthy: its 3-step running median dipped 22% below the start.
A rule that asked for a fall beyond the batch noise caught it, but flagged 23% of healthy noisy
short runs (review s10 RT3), and no trend test caught 95% of flat curves while flagging at most
2 points more healthy ones than the plain 10% rule: that rule is kept, and the audit's curve is
a known miss (xfail). Its fix text for a regression plateau stays.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainwise.findings import Severity
from trainwise.train.diagnose import RULES, diagnose

# the audit's 64 step losses (x 1e13), 16 steps an epoch: flat, +-15% batch noise
AUDIT_LOSS = [3.75, 3.11, 3.57, 2.83, 2.65, 2.9, 2.83, 2.93, 3.35, 2.85, 2.97, 4.06, 3.41,
              3.45, 3.35, 2.92, 2.46, 3.23, 3.14, 3.0, 3.38, 2.83, 3.71, 3.95, 3.67, 3.29,
              2.83, 3.3, 2.91, 3.38, 2.93, 2.91, 3.28, 3.01, 3.17, 2.92, 3.05, 3.82, 2.55,
              2.79, 3.58, 3.79, 3.01, 3.52, 2.97, 3.46, 3.13, 2.86, 2.99, 3.54, 3.45, 2.82,
              3.79, 2.4, 3.34, 3.26, 3.39, 3.02, 3.02, 3.24, 3.35, 3.3, 2.93, 3.18]
STEPS_PER_EPOCH = 16


def history(loss: np.ndarray, val_loss: list[float], **epoch_keys: float) -> list[dict]:
    rows = []
    for epoch, val in enumerate(val_loss, start=1):
        first = (epoch - 1) * STEPS_PER_EPOCH
        chunk = loss[first:first + STEPS_PER_EPOCH]
        rows += [{"kind": "step", "step": first + i + 1, "epoch": epoch, "loss": float(v),
                  "grad_norm": 1.0 + 0.1 * np.sin(first + i), "lr": 3e-3}
                 for i, v in enumerate(chunk)]
        rows.append({"kind": "epoch", "epoch": epoch, "step": first + len(chunk),
                     "train_loss": float(np.mean(chunk)), "val_loss": val, "lr": 3e-3,
                     **epoch_keys})
    return rows


KNOWN_MISS = pytest.mark.xfail(
    strict=True, reason="a flat loss whose +-15% batch noise dips 22% below its start passes "
    "the 10% plateau rule; the noise-aware rules that caught it flagged 7-23% of healthy noisy "
    "short runs (review s10 RT3), so the plain rule is kept")


def test_a_regression_plateau_leads_its_fix_with_standardising_the_target():
    loss = 3.18e13 + (np.array(AUDIT_LOSS) * 1e13 - 3.18e13) * 0.2  # +-3% noise: no dip
    rows = history(loss, [3.27e13] * 4, val_r2=-2.5972)
    (plateau,) = RULES["plateau"](rows)
    assert plateau.severity is Severity.WARNING
    assert "R^2 is -2.6" in plateau.message
    assert plateau.fix.startswith("Standardise the regression target")
    assert plateau.evidence["val_r2"] == pytest.approx(-2.597, abs=1e-3)
    # audit s15 B1: the target's scale (std 3e6) is the root, and it explains the plateau
    (found,) = diagnose(rows)
    assert found.code == "target_scale" and found.evidence["also_seen"] == ["plateau"]


def test_a_flat_noisy_regression_loss_is_told_to_standardise_the_target():
    """Once a known miss of the plateau rule (its noise dips 22% below the start); the
    validation R^2 of -2.6 with a target std of sqrt(3.27e13 / 3.6) = 3e6 names it (s15 B1)."""
    loss = np.array(AUDIT_LOSS) * 1e13
    found = diagnose(history(loss, [3.27e13] * 4, val_r2=-2.5972))
    assert [f.code for f in found] == ["target_scale"]
    assert found[0].fix.startswith("Standardise the regression target")


@KNOWN_MISS
def test_the_same_curve_under_classification_is_a_plateau_without_target_advice():
    loss = np.array(AUDIT_LOSS) * (2.3 / 3.18)  # at chance for 10 classes, same noise
    found = diagnose(history(loss, [2.3] * 4, val_accuracy=0.1))
    plateau = next(f for f in found if f.code == "plateau")
    assert "R^2" not in plateau.message and "Standardise" not in plateau.fix


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_loss_that_halves_is_no_plateau(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(64) / 64
    loss = (3.0 - 1.5 * t) * np.exp(rng.normal(0, 0.15, 64))
    found = diagnose(history(loss, [2.9, 2.4, 2.0, 1.6], val_r2=0.4))
    assert "plateau" not in [f.code for f in found]


@pytest.mark.parametrize("steps", [64, 128])
def test_a_noisy_short_run_that_falls_30_percent_is_no_plateau(steps):
    """Review s10 RT3's healthy runs: the loss falls 30% along 1 - exp(-3t) with 25%
    log-normal batch noise (ordinary at batch 32). The noise-aware rule flagged 15-28 of 40
    such runs, the 10% rule 1 of 40."""
    fall = 0.3
    t = np.arange(steps) / steps
    curve = 1 - fall * (1 - np.exp(-3 * t)) / (1 - np.exp(-3))
    flagged = 0
    for seed in range(20):
        loss = 3.0 * curve * np.exp(np.random.default_rng(seed).normal(0, 0.25, steps))
        epochs = steps // STEPS_PER_EPOCH
        found = diagnose(history(loss, list(np.linspace(3.0, 3.0 * (1 - fall), epochs))))
        flagged += "plateau" in [f.code for f in found]
    assert flagged <= 1


def test_a_lowest_point_above_the_start_is_not_called_lower():
    """User audit s15 B6 (an optimizer on another model's weights): "from 1.383 its lowest
    point was 1.397 (-1.1% lower)". Here the first loss 1.383 is the start, and the 3-step
    medians of the band 1.40, 1.41, 1.39, 1.40 are all 1.40 (by hand), above it."""
    loss = np.array([1.383] + [1.40, 1.41, 1.39, 1.40] * 16)[:64]
    (plateau,) = RULES["plateau"](history(loss, [1.404] * 4))
    assert "lower)" not in plateau.message
    assert "from 1.383 it never went below it (its lowest smoothed point was 1.4)" \
        in plateau.message
