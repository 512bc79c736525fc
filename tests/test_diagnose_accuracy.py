"""Validation accuracy against chance (user audit s15 B15): validation labels encoded in
another class order, (y + 1) % 4, gave 2.8% accuracy (chance 25%) on 400 rows and were
called "the model memorises the training set". The curves are that run's epoch rows (the
audit printed the odd epochs; the even ones are their means)."""

from __future__ import annotations

import math

import numpy as np

from test_diagnose_gap import epochs
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_accuracy import chance_accuracy, versus_chance

ODD_TRAIN = [1.109, 0.3996, 0.249, 0.1821, 0.1499, 0.109, 0.0894, 0.0687]
ODD_VAL = [2.0715, 4.0521, 5.0581, 5.7654, 6.6146, 7.2169, 7.665, 8.4536]
ODD_ACC = [0.122, 0.077, 0.052, 0.045, 0.03, 0.033, 0.028, 0.028]


def _every_epoch(odd: list[float]) -> list[float]:
    return list(np.interp(np.arange(15), np.arange(0, 15, 2), odd))


def _counts(accuracy: float) -> dict:
    """100 rows a class, each answered 100 times (a permutation keeps the answer shares),
    right on `accuracy` of them spread evenly."""
    right = round(accuracy * 400)
    return {"rows": [100] * 4, "predicted": [100] * 4,
            "right": [right // 4 + (i < right % 4) for i in range(4)]}


def label_map_history() -> list[dict]:
    rows = epochs(_every_epoch(ODD_TRAIN), _every_epoch(ODD_VAL))
    return [{**row, "val_accuracy": acc, "val_class_counts": _counts(acc)}
            for row, acc in zip(rows, _every_epoch(ODD_ACC), strict=True)]


def test_accuracy_far_below_chance_is_systematically_wrong_and_explains_overfitting():
    found = diagnose(label_map_history(), num_classes=4)
    assert found[0].code == "systematically_wrong"
    assert "overfitting" in found[0].evidence["also_seen"]
    assert "overfitting" not in [f.code for f in found]
    assert "far below chance (25.0%" in found[0].message
    assert "another class order" in found[0].fix and "data stage" in found[0].fix


def test_the_margin_is_binomial_standard_errors_on_the_validation_rows():
    (finding,) = RULES["systematically_wrong"](label_map_history())
    # 2.8% against 25% on 400 rows: (0.25 - 0.028) / sqrt(0.25 * 0.75 / 400) = 10.25
    below = (0.25 - 0.028) / math.sqrt(0.25 * 0.75 / 400)
    assert finding.evidence["standard_errors_below"] == round(below, 2)
    assert finding.evidence["validation_rows"] == 400
    # below chance from epoch 1 on (12.2%: 5.9 standard errors)
    assert finding.evidence["onset_epoch"] == 1


def test_chance_is_what_answers_independent_of_the_labels_would_score():
    # 90 and 10 rows; the model answers the 10-row class always: 10% right, and an answer
    # independent of the labels with those shares scores (90 * 0 + 10 * 100) / 100^2 = 10%,
    # not 1/C = 50%: no evidence of a systematic error
    row = {"kind": "epoch", "epoch": 1, "step": 1, "val_loss": 1.0, "val_accuracy": 0.1,
           "val_class_counts": {"rows": [90, 10], "right": [0, 10], "predicted": [0, 100]}}
    assert chance_accuracy(row, 2) == 0.1
    assert versus_chance(row, 2).z == 0
    assert RULES["systematically_wrong"]([row]) == []


def test_accuracy_at_chance_is_not_systematically_wrong():
    # memorising: 24% on 400 rows, 0.46 standard errors under 25%
    rows = [{**row, "val_accuracy": 0.24, "val_class_counts": _counts(0.24)}
            for row in label_map_history()]
    assert RULES["systematically_wrong"](rows) == []
