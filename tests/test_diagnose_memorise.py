"""Memorising without a rise (user audit s11 M2): a 100-row, 500-feature table whose
validation loss sat at ln 2 for 33 epochs while the training loss fell 0.70 -> 0.09 was
called healthy. The curves below are that run's epoch rows."""

from __future__ import annotations

import math

from run_words import diagnose
from test_diagnose_gap import DEFAULT_TRAIN, DEFAULT_VAL, DIGITS_TRAIN, DIGITS_VAL, epochs
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_common import PLAN_KEY, TrainingPlan

WIDE_TRAIN = [0.6989, 0.6926, 0.6893, 0.7103, 0.6896, 0.6832, 0.6588, 0.6432, 0.6478, 0.6373,
              0.596, 0.557, 0.5183, 0.4878, 0.4558, 0.3972, 0.3824, 0.3335, 0.2817, 0.262,
              0.2204, 0.2326, 0.1836, 0.1588, 0.155, 0.1379, 0.1186, 0.1543, 0.1651, 0.1136,
              0.1061, 0.131, 0.0945]
WIDE_VAL = [0.6946, 0.697, 0.699, 0.6979, 0.6986, 0.7005, 0.7009, 0.7012, 0.7021, 0.7033,
            0.7053, 0.7077, 0.7103, 0.7107, 0.7109, 0.7145, 0.7157, 0.7181, 0.7159, 0.7152,
            0.7241, 0.7281, 0.7259, 0.726, 0.7275, 0.727, 0.7184, 0.7138, 0.7137, 0.708,
            0.707, 0.709, 0.7151]


def test_a_validation_loss_that_never_beat_epoch_one_while_training_fell_is_memorising():
    found = diagnose(epochs(WIDE_TRAIN, WIDE_VAL))
    assert "healthy" not in [f.code for f in found]
    (finding,) = [f for f in found if f.code == "overfitting"]
    assert finding.severity is Severity.WARNING and finding.evidence["memorising"]
    # the training loss: 0.6989 at epoch 1, median of the last three 0.1061: 6.6x
    assert finding.evidence["train_fall"] == round(0.6989 / 0.1061, 3)
    assert "memorises the training rows" in finding.message
    assert "fewer features" in finding.fix and "data stage" in finding.fix


def test_with_the_classes_known_it_says_the_loss_stayed_at_chance():
    (finding,) = RULES["overfitting"](epochs(WIDE_TRAIN, WIDE_VAL) + [
        {"kind": "meta", "num_classes": 2}])
    assert finding.evidence["chance_loss"] == round(math.log(2), 4)
    assert "stayed at chance (ln 2 = 0.693)" in finding.message


def test_a_training_loss_that_fell_little_is_not_memorising():
    # the same validation curve, the training loss down only 2x: not the large factor asked
    train = [0.7 - 0.35 * i / (len(WIDE_VAL) - 1) for i in range(len(WIDE_VAL))]
    assert RULES["overfitting"](epochs(train, WIDE_VAL)) == []


def test_runs_whose_validation_loss_fell_are_not_memorising():
    assert RULES["overfitting"](epochs(DEFAULT_TRAIN, DEFAULT_VAL)) == []
    assert RULES["overfitting"](epochs(DIGITS_TRAIN, DIGITS_VAL)) == []


def test_a_run_that_converged_inside_epoch_one_with_no_gap_is_not_memorising():
    # review s11 VT3: epoch 1's mean training loss (0.95) averages in its untrained first
    # steps; from epoch 2 on training sits level with validation (0.28 vs best 0.29: 1.04x).
    # The old rule read a 3.4x fall (0.95 -> 0.28) and a flat validation loss as memorising.
    val = [0.30, 0.29, 0.30, 0.31, 0.295, 0.30, 0.29, 0.305, 0.30, 0.295]
    train = [0.95, 0.31, 0.30, 0.295, 0.29, 0.29, 0.285, 0.28, 0.28, 0.28]
    history = epochs(train, val, steps_per_epoch=100) + [{"kind": "meta", "num_classes": 10}]
    assert RULES["overfitting"](history) == []


def test_the_memorising_finding_names_the_gap_to_the_best_validation_loss():
    (finding,) = RULES["overfitting"](epochs(WIDE_TRAIN, WIDE_VAL))
    # best validation 0.6946 (epoch 1) over the last 3 epochs' median training loss 0.1061
    assert finding.evidence["train_val_gap"] == round(0.6946 / 0.1061, 3)
    assert "6.5x below that best" in finding.message


def test_at_chance_confusion_leads_and_takes_the_memorising_finding_in():
    # review s11 VT10: memorising no longer re-runs the confusion rule; diagnose folds it
    # into confusion (same cause, same checks) instead. Accuracy 0.5 and mean confidence 0.52
    # on 2 classes: (0.52 - 0.5) / 0.5 = 4% of the way to 1, under CONFUSION_SHARE (15%)
    rows = [{**row, "val_accuracy": 0.5, "val_mean_confidence": 0.52}
            for row in epochs(WIDE_TRAIN, WIDE_VAL)]
    assert RULES["overfitting"](rows)[0].evidence["memorising"]  # the rule alone still sees it
    found = diagnose(rows, num_classes=2)
    assert "overfitting" not in [f.code for f in found]
    (confusion,) = [f for f in found if f.code == "confusion"]
    assert confusion.evidence["also_seen"] == ["overfitting"]


def test_the_memorising_fix_names_the_runs_own_regularisation_keys():
    # final read s13 (noted): the memorising fix said "raise weight decay or dropout (train
    # stage)"; dropout is a model-stage key, and the fix now names the values, as
    # _early_stopping_fix does (regularise_words, audit s13 P7)
    plan = TrainingPlan(weight_decay=0.0, dropout=0.0)
    (finding,) = RULES["overfitting"](epochs(WIDE_TRAIN, WIDE_VAL) + [
        {"kind": "meta", PLAN_KEY: plan}])
    assert finding.evidence["memorising"]
    assert "(train stage)" not in finding.fix
    assert "raise train.weight_decay (now 0;" in finding.fix
    assert "model.dropout (now 0; 0.1-0.3, model stage)" in finding.fix
    (own_loop,) = RULES["overfitting"](epochs(WIDE_TRAIN, WIDE_VAL))
    assert "add weight decay or dropout to your model and optimizer" in own_loop.fix
