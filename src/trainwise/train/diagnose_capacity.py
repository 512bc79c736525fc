"""Underfitting: the training and validation losses level off together, far above zero, with
no gap between them. METHOD.md §2 starts simple "and only then grows the model"; this is
the evidence that says when: the model is not overfitting and has stopped learning, so its
size (or the data) is the limit, not the learning rate or the epochs.

Only an info: on data whose labels are noisy (a churn table at 70% accuracy) no model does
much better, and only a bigger model's validation loss can tell the two apart.
"""

from __future__ import annotations

import math

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import Row, epoch_losses, loss_curve, make, num

MIN_EPOCHS = 6  # fewer epochs say too little about where the curves level off
LATE_SHARE = 0.25  # "level": judged over the last quarter of the epochs
MAX_LATE_DROP = 0.03  # the training loss fell less than 3% over that quarter
MAX_GAP = 0.10  # validation within 10% of training: no generalisation gap to speak of
MAX_ABOVE_BEST_VAL = 0.02  # the validation loss ends within 2% of its best: not rising
MIN_LEFT = 0.25  # the training loss still holds >= 25% of where it started (a model with
# room to spare drives it toward zero: digits and MNIST-1D baselines end at 1-5%)


def rule_capacity(history: list[Row]) -> list[Finding]:
    """Info when both losses are level, close together and far above zero at the end."""
    _, train, val = epoch_losses(history)
    curve = loss_curve(history)
    if len(train) < MIN_EPOCHS or not len(curve.values) or curve.start <= 0 or train[-1] <= 0:
        return []
    late = max(2, math.ceil(LATE_SHARE * len(train)))
    late_drop = (train[-late] - train[-1]) / train[-late]
    gap = (val[-1] - train[-1]) / train[-1]
    left = train[-1] / curve.start
    if (late_drop >= MAX_LATE_DROP or abs(gap) >= MAX_GAP or left < MIN_LEFT
            or val[-1] > (1 + MAX_ABOVE_BEST_VAL) * val.min()):
        return []
    return [make(
        Severity.INFO, "capacity",
        f"Training and validation losses level off together: over the last {late} epochs the "
        f"training loss fell {late_drop:.1%} (to {train[-1]:.4g}, {left:.0%} of where it "
        f"started), and validation ends at {val[-1]:.4g}, {gap:+.1%} from it. The model is "
        "not overfitting and has stopped learning, so its size may be the limit.",
        "Grow the model one step (model stage: double model.width for the built-in "
        "baselines, whose default 0 sizes it from the data; more units or layers in your "
        "own) and keep it only if the validation loss falls; if it does not, the data set "
        "the limit (noisy labels, features with little signal: data stage).",
        None, late_epochs=late, late_drop=num(late_drop), gap=num(gap),
        left_of_start=num(left), final_train_loss=num(train[-1]),
        final_val_loss=num(val[-1]))]
