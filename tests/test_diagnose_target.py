"""target_scale (user audit s15 B1): a regression target of mean 1e6 and std 2e6 left the
validation R^2 below 0 after 500 steps, and the only advice was "train for longer"."""

from __future__ import annotations

import math

from run_words import diagnose
from test_diagnose_gap import epochs
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES

# the audit's epoch rows (c05_regscale.py), every 4th epoch and the last: MSE and R^2
AUDIT_VAL = [5.113e12, 5.109e12, 5.079e12, 4.996e12, 4.841e12, 4.668e12]
AUDIT_TRAIN = [5.518e12, 5.515e12, 5.487e12, 5.405e12, 5.245e12, 5.063e12]
AUDIT_R2 = [-0.2499, -0.2489, -0.2415, -0.2214, -0.1834, -0.1410]


def _regression(train: list[float], val: list[float], r2: list[float]) -> list[dict]:
    rows = epochs(train, val, steps_per_epoch=25)
    return [{**row, "val_r2": value} for row, value in zip(rows, r2, strict=True)]


def test_a_huge_target_with_negative_r2_is_told_to_standardise_not_to_train_longer():
    found = diagnose(_regression(AUDIT_TRAIN, AUDIT_VAL, AUDIT_R2))
    assert [f.code for f in found] == ["target_scale"], [f.message for f in found]
    (finding,) = found
    assert finding.severity is Severity.WARNING
    # by hand: std(y) = sqrt(MSE / (1 - R^2)) = sqrt(4.668e12 / 1.141) = 2.0227e6
    assert math.isclose(finding.evidence["target_std"], math.sqrt(4.668e12 / 1.141), rel_tol=1e-3)
    assert "Standardise the regression target" in finding.fix and "(data stage)" in finding.fix
    assert "still_improving" in finding.evidence["also_seen"]  # it explains the slow fall


def test_val_rmse_gives_the_target_spread_when_the_loss_is_not_the_mse():
    rows = _regression(AUDIT_TRAIN, [1.9e6] * 6, AUDIT_R2)  # an L1 loss: val_loss is the MAE
    for row in rows:
        row["val_rmse"] = 2.2e6
    (finding,) = RULES["target_scale"](rows)
    assert math.isclose(finding.evidence["target_std"], 2.2e6 / math.sqrt(1.141), rel_tol=1e-3)


def test_a_standardised_target_or_a_positive_r2_is_not_target_scale():
    # a unit-scale target the model still predicts worse than its mean: the model's problem
    assert RULES["target_scale"](_regression([1.3] * 3, [1.2] * 3, [-0.1] * 3)) == []
    # a huge target the model already explains half of: R^2 0.5
    assert RULES["target_scale"](_regression([2e12] * 3, [2e12] * 3, [0.5] * 3)) == []
    assert RULES["target_scale"](epochs([1.0] * 3, [1.0] * 3)) == []  # no R^2: classification


def test_a_trainwise_run_that_standardised_the_target_is_not_told_to_standardise_it():
    # review s15 VT1: trainwise run trains on (y - mean) / std (val_loss 1.2) and logs val_rmse
    # in y's own units (1e5); R^2 -0.08 is the noise target's, not a scale problem
    from trainwise.train.diagnose_common import TrainingPlan
    rows = _regression([1.3] * 3, [1.2] * 3, [-0.08] * 3)
    for row in rows:
        row["val_rmse"] = 1e5
    codes = [f.code for f in diagnose(rows, plan=TrainingPlan(target_standardised=True))]
    assert "target_scale" not in codes, codes
    # the same rows from fit or a loop (no plan): the raw spread 1e5 / sqrt(1.08) is the scale
    assert "target_scale" in [f.code for f in diagnose(rows)]
