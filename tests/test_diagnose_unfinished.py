"""still_improving (user audit s11 M12): a 5-epoch run whose validation loss was still
falling (1.110 -> 0.9905, best = last) was called healthy."""

from __future__ import annotations

import re

import pytest

from test_diagnose_gap import DEFAULT_TRAIN, DEFAULT_VAL, DIGITS_TRAIN, DIGITS_VAL, epochs
from trainwise.findings import Severity, TrainwiseError
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_common import TrainingPlan

SHORT_VAL = [1.1101, 1.0776, 1.0598, 1.0147, 0.9905]  # the audit's run, epochs 1-5
SHORT_TRAIN = [1.10, 1.08, 1.05, 1.02, 0.99]


def test_a_run_ended_while_its_validation_loss_still_fell_is_not_healthy():
    found = diagnose(epochs(SHORT_TRAIN, SHORT_VAL))
    assert "healthy" not in [f.code for f in found]
    (finding,) = [f for f in found if f.code == "still_improving"]
    assert finding.severity is Severity.WARNING and finding.evidence["best_epoch"] == 5
    # by hand: 1.0776 - 0.9905 = 0.0871 of the whole 1.1101 - 0.9905 = 0.1196: 73%
    assert finding.evidence["late_share"] == round(0.0871 / 0.1196, 4)
    assert "train.max_epochs" in diagnose(epochs(SHORT_TRAIN, SHORT_VAL), fix_terms="config")[0].fix


def test_without_a_plan_the_fixes_name_fit_arguments_not_config_keys_or_stages():
    """Audit s16 N9: diagnose(state.history) after fit() said "raise train.max_epochs ...
    (train stage). The evaluate stage judges ..."; a Python user has fit's max_epochs=, no
    config and no stages. With a plan (trainwise run's) the run's words stay."""
    found = diagnose(epochs(SHORT_TRAIN, SHORT_VAL))
    (finding,) = [f for f in found if f.code == "still_improving"]
    assert "raise fit's max_epochs= (or run more epochs in your own loop)" in finding.fix
    assert "your fit() call or training loop" in finding.fix
    assert ("from trainwise.train.callbacks import BestWeights; fit(..., callbacks=["
            "BestWeights(patience=5)])") in finding.fix
    text = finding.fix + finding.message
    assert not re.search(r"(?<![\w.])(train|model|tune)\.", text)  # a config key
    assert " stage" not in text
    (in_run_words,) = [f for f in diagnose(epochs(SHORT_TRAIN, SHORT_VAL), plan=TrainingPlan())
                       if f.code == "still_improving"]
    assert "raise train.max_epochs" in in_run_words.fix and "(train stage)" in in_run_words.fix


def test_a_converged_or_early_stopped_run_is_not_still_improving():
    assert RULES["still_improving"](epochs(DEFAULT_TRAIN, DEFAULT_VAL)) == []  # best: 15 of 23
    assert RULES["still_improving"](epochs(DIGITS_TRAIN, DIGITS_VAL)) == []  # best: 10 of 15
    converged = [2.0, 0.5, 0.2, 0.1, 0.095, 0.094, 0.0935]  # best last, the curve flattened:
    # the last 3 epochs gave 0.0065, 3% of the fall and 6.5% of the loss
    assert RULES["still_improving"](epochs([1.0] * 7, converged)) == []
    flat_end = SHORT_VAL[:3] + [1.0590, 1.0585]  # best last, but by 0.1%: noise, not a fall
    assert RULES["still_improving"](epochs(SHORT_TRAIN, flat_end)) == []


# breast_cancer, train.max_epochs=6 (one-cycle), review s11 VT4: epoch rows at HEAD
BREAST_VAL = [0.0609, 0.0268, 0.0223, 0.0200, 0.0153, 0.0149]
BREAST_ACCURACY = [0.9783, 0.9783, 1.0, 1.0, 1.0, 1.0]
BREAST_TRAIN = [0.4836, 0.1498, 0.1326, 0.0954, 0.0681, 0.0721]


def _with_accuracy(rows: list[dict], accuracy: list[float]) -> list[dict]:
    return [{**row, "val_accuracy": acc} for row, acc in zip(rows, accuracy, strict=True)]


def test_a_validation_set_already_all_right_is_not_still_improving():
    # the last 3 epochs took the loss down (0.0223 - 0.0149) / 0.0223 = 33%, but every
    # validation row was already right: the fall only sharpens them, and training longer
    # raised the test loss
    rows = _with_accuracy(epochs(BREAST_TRAIN, BREAST_VAL), BREAST_ACCURACY)
    assert RULES["still_improving"](rows) == []
    solved = _with_accuracy(epochs([0.5, 0.2, 0.1, 0.05, 0.02], [0.3, 0.1, 0.01, 1e-3, 0.0]),
                            [0.93, 1.0, 1.0, 1.0, 1.0])  # wine: 14 rows at loss 0.0000
    assert RULES["still_improving"](solved) == []


def test_the_same_fall_with_rows_still_wrong_is_still_improving():
    accuracy = [*BREAST_ACCURACY[:-1], 0.989]  # one validation row of 91 still wrong
    (finding,) = RULES["still_improving"](_with_accuracy(epochs(BREAST_TRAIN, BREAST_VAL),
                                                         accuracy))
    # by hand: 0.0223 - 0.0149 = 0.0074 of the whole 0.0609 - 0.0149 = 0.046: 16%; the
    # late fall is 33% of the loss (LATE_FALL 15%)
    assert finding.evidence["late_share"] == round(0.0074 / 0.046, 4)


def test_a_loss_already_near_zero_without_accuracy_is_not_still_improving():
    # review s11 final F4: a regression (no val_accuracy) at 3e-5 -> 2.3e-5 was told to train
    # longer once the accuracy guard replaced the solved-loss one
    val = [0.5] + [1e-4 * 0.9 ** k for k in range(15)]
    assert RULES["still_improving"](epochs([v * 2 for v in val], val)) == []


# user audit s15 M4: `trainwise run --set train.max_epochs=3` runs, epoch rows at HEAD
E3_VAL = [0.4102, 0.2825, 0.2055]
B512_VAL = [2.40, 0.62, 0.43]


def test_a_three_epoch_run_still_falling_fast_is_still_improving_not_healthy():
    found = diagnose(epochs([1.0, 0.4, 0.3], E3_VAL))
    assert [f.code for f in found] == ["still_improving"], [f.message for f in found]
    (finding,) = found
    # by hand: (0.2825 - 0.2055) / 0.2825 = 27.3% in the last epoch alone
    assert "27.3%" in finding.message and "Too few epochs to judge" in finding.message
    assert finding.evidence["late_fall"] == round(0.2825 - 0.2055, 4)
    (b512,) = RULES["still_improving"](epochs([3.0, 0.7, 0.5], B512_VAL))
    assert b512.evidence["best_epoch"] == 3
    (two,) = RULES["still_improving"](epochs([3.0, 0.7], B512_VAL[:2]))  # 2 epochs: 74% fall
    assert two.evidence["best_epoch"] == 2


def test_a_short_run_whose_last_epoch_barely_fell_is_healthy_but_says_the_best_is_last():
    flat = [0.5, 0.2, 0.19]  # the last epoch took 5% off: under SHORT_FALL's 10%
    assert RULES["still_improving"](epochs([1.0] * 3, flat)) == []
    (healthy,) = diagnose(epochs([1.0] * 3, flat))
    assert healthy.code == "healthy" and "the last one" in healthy.message
    turned = [0.5, 0.2, 0.21]  # best epoch 2 of 3: no note
    assert "the last one" not in diagnose(epochs([1.0] * 3, turned))[0].message


def test_a_solved_run_whose_last_epoch_was_best_is_not_told_more_epochs_may_gain():
    # review s15 VT7: at accuracy 1.0 still_improving is silent on purpose (training longer
    # raised the test loss), and healthy said "its fall had slowed ... more epochs may gain"
    train = [0.5, 0.2, 0.1, 0.06, 0.04, 0.03, 0.022, 0.015]
    val = [0.4, 0.15, 0.08, 0.05, 0.035, 0.0223, 0.018, 0.0149]
    (healthy,) = diagnose([{**row, "val_accuracy": 1.0} for row in epochs(train, val)])
    # by hand: (0.018 - 0.0149) / 0.018 = 17.2% off the loss in the last epoch
    assert "took 17.2% off the loss" in healthy.message
    assert "more epochs may still gain" not in healthy.message
    assert "validation is already solved" in healthy.message
    (flat,) = diagnose(epochs([1.0] * 3, [0.5, 0.2, 0.19]))  # not solved: 5% fell, may gain
    assert "took 5.0% off the loss; more epochs may still gain a little" in flat.message


def test_one_switch_names_the_fix_words_and_an_unknown_value_is_refused():
    """Review s16 VN6: diagnose(words="run"|"code") and find_lr/tune_lr(fix_terms="config"|
    "api") chose the same thing under two names, and diagnose read any other value (the tune
    verbs' "config", a typo "Run") as the Python wording, silently. VX9: words= is gone."""
    history = epochs(SHORT_TRAIN, SHORT_VAL)
    assert "train.max_epochs" in diagnose(history, fix_terms="config")[0].fix
    assert "train.max_epochs" not in diagnose(history, fix_terms="api")[0].fix
    for wrong in ("run", "Run", "code"):
        with pytest.raises(TrainwiseError, match="expected"):
            diagnose(history, fix_terms=wrong)
    with pytest.raises(TypeError):  # review s16 VX9: one name, no unreleased older alias
        diagnose(history, words="run")
