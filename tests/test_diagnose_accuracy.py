"""Validation accuracy against chance (user audit s15 B15): validation labels encoded in
another class order, (y + 1) % 4, gave 2.8% accuracy (chance 25%) on 400 rows and were
called "the model memorises the training set". The curves are that run's epoch rows (the
audit printed the odd epochs; the even ones are their means)."""

from __future__ import annotations

import math

import numpy as np

from run_words import diagnose
from test_diagnose_gap import epochs
from trainwise.train.diagnose import RULES
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


AT = [1, 4, 7, 10, 13, 16, 19, 20]  # the epochs the audit printed; the rest interpolated


def audit_run(train: list[float], val: list[float], acc: list[float]) -> list[dict]:
    """20 epoch rows through the audit's printed points, 400 validation rows (4 x 100)."""
    def at_every(points: list[float]) -> list[float]:
        return list(np.interp(np.arange(1, 21), AT, points))
    rows = epochs(at_every(train), at_every(val))
    return [{**row, "val_accuracy": a, "val_class_counts": _counts(a)}
            for row, a in zip(rows, at_every(acc), strict=True)] + [
        {"kind": "meta", "num_classes": 4}]


# audit s15 B14: CrossEntropyLoss(reduction="sum"), train batches of 64, validation of 512
SUM_TRAIN = [72.29, 20.49, 12.25, 8.821, 5.883, 4.242, 3.019, 2.625]
SUM_VAL = [294.0, 134.6, 126.7, 113.2, 120.0, 126.3, 133.5, 136.0]
SUM_ACC = [0.757, 0.89, 0.897, 0.93, 0.93, 0.93, 0.935, 0.93]


def test_a_model_at_93_percent_is_not_called_memorising_at_chance():
    found = RULES["overfitting"](audit_run(SUM_TRAIN, SUM_VAL, SUM_ACC))
    assert not any("at chance" in f.message or f.evidence.get("memorising") for f in found)


def test_a_loss_far_above_ln_c_is_not_at_chance_even_without_an_accuracy():
    # a Monitor given val_loss alone: the best, 113.2, is 82x ln 4: not a per-row loss
    rows = [{k: v for k, v in row.items() if k not in ("val_accuracy", "val_class_counts")}
            for row in audit_run(SUM_TRAIN, SUM_VAL, SUM_ACC)]
    assert RULES["overfitting"](rows) == []


def test_an_accuracy_far_above_chance_is_not_at_chance_on_a_per_row_loss():
    # the memorising run of test_diagnose_memorise (validation at ln 2), but 80% right on
    # 400 rows: the loss never beat epoch 1, yet it is not "at chance"
    from test_diagnose_memorise import WIDE_TRAIN, WIDE_VAL
    rows = [{**row, "val_accuracy": 0.8,
             "val_class_counts": {"rows": [200, 200], "right": [160, 160],
                                  "predicted": [200, 200]}}
            for row in epochs(WIDE_TRAIN, WIDE_VAL)] + [{"kind": "meta", "num_classes": 2}]
    (finding,) = RULES["overfitting"](rows)
    assert "at chance (ln 2" not in finding.message
    assert finding.message.startswith("Validation differs from training: the validation "
                                      "accuracy is 80.0%, far above chance (50.0%)")


# audit s15 B9: validation features shifted 1.5 std; feature 0 recorded as 3 x label in
# validation only
SHIFT = ([1.132, 0.3045, 0.1788, 0.1227, 0.0864, 0.0619, 0.0462, 0.04],
         [1.295, 4.38, 5.743, 5.904, 6.355, 7.444, 8.044, 8.316],
         [0.47, 0.383, 0.338, 0.333, 0.328, 0.33, 0.33, 0.312])
RECORDED = ([1.132, 0.3027, 0.1777, 0.1216, 0.0859, 0.0637, 0.0412, 0.0367],
            [1.881, 6.832, 8.322, 8.644, 9.695, 11.21, 12.15, 12.2],
            [0.323, 0.407, 0.41, 0.41, 0.407, 0.417, 0.412, 0.395])


def test_a_covariate_shift_leads_with_validation_differs_from_training():
    (finding,) = RULES["overfitting"](audit_run(*SHIFT))
    assert finding.message.startswith("Validation differs from training: the validation "
                                      "accuracy fell from 47.0% at the first epoch to 31.2%")
    assert finding.evidence["validation_differs"]
    assert finding.fix.startswith("Validation differs from training")
    assert "split stage" in finding.fix and "memorises" not in finding.fix


def test_a_feature_recorded_differently_in_validation_leads_the_same_way():
    (finding,) = RULES["overfitting"](audit_run(*RECORDED))
    # 39.5% on 400 rows is (0.395 - 0.25) / sqrt(0.25 * 0.75 / 400) = 6.7 standard errors
    # above chance, at a best validation loss of 1.881 > ln 4
    assert "accuracy is 39.5%, far above chance (25.0%)" in finding.message
    assert finding.fix.startswith("Validation differs from training")


def test_memorising_at_chance_keeps_its_words():
    # the shifted run's curves at 25% accuracy throughout: shuffled labels, not a shift
    train, val, _ = SHIFT
    (finding,) = RULES["overfitting"](audit_run(train, val, [0.25] * 8))
    assert not finding.evidence["validation_differs"]
    assert "memorises the training set" in finding.fix


def test_overfitting_after_converging_in_epoch_one_is_not_a_shift():
    # 90% at epoch 1, 88% at the end, validation loss 0.30 -> 0.65 (below ln 4): it lost 3%
    # of its lead over chance, under FELL_SHARE, and the loss learned: ordinary overfitting
    train = [0.35, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02, 0.015]
    val = [0.30, 0.36, 0.42, 0.48, 0.53, 0.58, 0.62, 0.65]
    (finding,) = RULES["overfitting"](audit_run(train, val, [0.9, 0.9, 0.89, 0.89, 0.88,
                                                             0.88, 0.88, 0.88]))
    assert not finding.evidence["validation_differs"]
