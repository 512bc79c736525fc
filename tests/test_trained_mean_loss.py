"""The trained finding's yardstick for a regression's validation loss: what predicting the
training mean scores on the validation rows, computed, not assumed to be 1 (audit s14 R11)."""

import numpy as np

from trainwise.stages_training import _mean_loss_note


def test_the_mean_predictors_validation_loss_is_computed_not_assumed_to_be_one():
    """Two outliers in the training rows inflate the std: the mean predictor scores far below
    1 on the validation rows, and a network at that loss has learned nothing."""
    y_train = np.r_[np.linspace(9.0, 11.0, 98), 60.0, 80.0]
    y_val = np.linspace(9.0, 11.0, 20)
    mean, std = y_train.mean(), y_train.std()
    val = (y_val - mean) / std
    by_hand = float(np.mean(((y_val - mean) / std) ** 2))  # 0.114 here
    assert abs(by_hand - 1) > 0.5
    note = _mean_loss_note(val, by_hand)
    assert f"scores {by_hand:.4f}" in note and "no better than it" in note
    assert "1 is predicting" not in note
    assert "50% below it" in _mean_loss_note(val, by_hand / 2)
