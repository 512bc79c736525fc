"""loss_rising (user audit s15 B3): AdamW(weight_decay=10) at a constant lr 3e-3: the epoch
training loss fell to 0.657 at epoch 5, rose back to 0.70 level with validation, and the run
was called healthy (accuracy 0.78 against 0.92 at weight decay 0.01)."""

from __future__ import annotations

import numpy as np
import pytest

from test_diagnose_gap import epochs
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_common import TrainingPlan

# the audit's epoch means (c03_wd.py run 1, weight decay 10): train, validation
WD10_TRAIN = [1.214, 0.91, 0.716, 0.664, 0.657, 0.664, 0.673, 0.681, 0.682, 0.686, 0.681,
              0.688, 0.695, 0.694, 0.691, 0.712, 0.701, 0.694, 0.701, 0.7]
WD10_VAL = [1.058, 0.774, 0.677, 0.656, 0.659, 0.668, 0.681, 0.686, 0.683, 0.681, 0.682,
            0.69, 0.694, 0.689, 0.724, 0.705, 0.694, 0.705, 0.707, 0.698]
# run 2, weight decay 1.0 (accuracy 0.945): silence is right there
WD1_TRAIN = [1.118, 0.574, 0.418, 0.341, 0.293, 0.255, 0.225, 0.205, 0.19, 0.178, 0.167,
             0.162, 0.154, 0.149, 0.139, 0.135, 0.135, 0.13, 0.127, 0.125]
WD1_VAL = [0.755, 0.5, 0.427, 0.391, 0.357, 0.332, 0.318, 0.315, 0.322, 0.29, 0.293, 0.274,
           0.283, 0.276, 0.266, 0.271, 0.277, 0.268, 0.286, 0.263]


def _with_lr(rows: list[dict], lrs: list[float]) -> list[dict]:
    return [{**row, "lr": lr} for row, lr in zip(rows, lrs, strict=True)]


def test_a_training_loss_that_rose_back_at_a_constant_lr_is_not_healthy():
    rows = _with_lr(epochs(WD10_TRAIN, WD10_VAL), [3e-3] * 20)
    found = diagnose(rows)
    assert [f.code for f in found] == ["loss_rising"], [f.message for f in found]
    (finding,) = found
    assert finding.severity is Severity.WARNING and finding.evidence["min_epoch"] == 5
    # by hand: median of the last 3 (0.694, 0.701, 0.7) = 0.7; (0.7 - 0.657) / 0.657 = 6.5%
    assert finding.evidence["relative_rise"] == pytest.approx(0.043 / 0.657, abs=1e-4)
    assert "weight_decay" in finding.fix and "param_groups(model, 0.01)" in finding.fix


def test_a_trainwise_run_is_told_its_own_weight_decay_key_and_value():
    rows = _with_lr(epochs(WD10_TRAIN, WD10_VAL), [3e-3] * 20)
    (finding,) = diagnose(rows, plan=TrainingPlan(weight_decay=10.0, dropout=0.1))
    assert finding.fix.startswith("Lower train.weight_decay (now 10;")
    assert "model.dropout (now 0.1" in finding.fix and finding.evidence["weight_decay"] == 10.0


def test_a_sound_run_a_rising_lr_or_a_generalisation_gap_is_not_loss_rising():
    rule = RULES["loss_rising"]
    assert rule(_with_lr(epochs(WD1_TRAIN, WD1_VAL), [3e-3] * 20)) == []
    warmup = list(np.linspace(1e-4, 3e-3, 12)) + [3e-3] * 8  # the lr still rose after epoch 5
    assert rule(_with_lr(epochs(WD10_TRAIN, WD10_VAL), warmup)) == []
    gap = [v * 1.5 for v in WD10_VAL]  # validation 50% above training: overfitting's business
    assert rule(_with_lr(epochs(WD10_TRAIN, gap), [3e-3] * 20)) == []


def test_flat_noisy_epochs_are_not_loss_rising():
    """A converged run whose epoch means scatter 2% around a flat level: the minimum of 20
    sits ~2 noise steps low by chance, never the 5 (NOISE_SIGMAS, and 3%) the rule asks."""
    flagged = 0
    for seed in range(200):
        noise = np.exp(np.random.default_rng(seed).normal(0, 0.02, 20))
        train = [2.3, 1.0, 0.6, 0.4, *(0.3 * noise[4:])]  # fallen by epoch 5, then flat
        flagged += bool(RULES["loss_rising"](_with_lr(epochs(train, train), [1e-3] * 20)))
    assert flagged <= 2


def test_a_rise_with_training_above_validation_is_one_warning_naming_both_levers():
    # review s15 VT4: train 11% above validation (heavy_regularisation's band starts at 10%,
    # loss_rising's ends at 15%) gave two warnings, "lower the dropout" and "lower the decay"
    rows = _with_lr(epochs(WD10_TRAIN, [t / 1.11 for t in WD10_TRAIN]), [3e-3] * 20)
    for row in rows:
        if row["kind"] == "epoch":
            row["weight_decay"] = 10.0
    found = [f for f in diagnose(rows) if f.severity is not Severity.INFO]
    assert [f.code for f in found] == ["heavy_regularisation"], [f.code for f in found]
    assert found[0].evidence["also_seen"] == ["loss_rising"]
    assert "dropout" in found[0].fix
    assert "lower the optimizer's weight_decay (now 10; 0.01-0.1 is usual" in found[0].fix
