"""A regression trained on a target far from unit scale: worse than predicting the mean.

User audit s15 B1: a target of mean 1e6 and std 2.1e6, an MLP, MSELoss, AdamW at lr 3e-3, 20
epochs: the loss went 5.5e12 -> 5.1e12 and the last validation R^2 was -0.14; the only advice
was "train for longer" (still_improving), which at that lr would take thousands of epochs to
walk the output bias to 1e6. The same data with the target standardised: loss 0.006, healthy.
"""

from __future__ import annotations

import math

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import Row, finite_value, make, num, plan_of, rows_of

MAX_TARGET_STD = 10.0  # a standardised target has std 1; 10x that (an MSE of 100) is not one.
# The audit's target: 2.1e6. Below this a negative R^2 is the model's own problem (plateau).


def target_std(row: Row) -> float | None:
    """The validation target's spread read off an epoch row: R^2 = 1 - MSE / var(y), so
    std(y) = RMSE / sqrt(1 - R^2) (val_rmse when logged, else val_loss taken as the MSE)."""
    r2 = finite_value(row, "val_r2")
    rmse = finite_value(row, "val_rmse")
    if rmse is None:
        mse = finite_value(row, "val_loss")
        rmse = math.sqrt(mse) if mse is not None and mse >= 0 else None
    if r2 is None or rmse is None or r2 >= 1:
        return None
    return rmse / math.sqrt(1 - r2)


def rule_target_scale(history: list[Row]) -> list[Finding]:
    """The last validation R^2 below 0 with a target spread far above 1: standardise it.
    Silent for trainwise run (review s15 VT1): it trained on the standardised target, and its
    val_rmse is in the raw units (a noise target of std 1e5 read as 1e5, not 1)."""
    if plan_of(history).target_standardised:
        return []
    rows = [row for row in rows_of(history, "epoch") if finite_value(row, "val_r2") is not None]
    if not rows:
        return []
    last = rows[-1]
    r2, std = finite_value(last, "val_r2"), target_std(last)
    if r2 is None or r2 >= 0 or std is None or std <= MAX_TARGET_STD:
        return []
    epoch = last.get("epoch", len(rows))
    message = (f"The regression target is far from unit scale: after epoch {epoch} the "
               f"validation R^2 is {r2:.3g}, worse than predicting the mean, and the target's "
               f"spread read off it is {std:.3g} (std; a standardised target has 1). Its "
               "scale dominates the loss, and steps sized for unit outputs would take "
               "thousands of epochs to reach it: training longer is not the fix.")
    fix = ("Standardise the regression target (data stage): train on (y - mean) / std with "
           "the training split's mean and std, and turn predictions back with pred * std + "
           "mean (trainwise run does this; fit and a loop of your own do not). Then train "
           "again; the loss should start near 1.")
    return [make(Severity.WARNING, "target_scale", message, fix, last.get("step"),
                 val_r2=num(r2), target_std=num(std), epoch=epoch,
                 threshold_target_std=MAX_TARGET_STD)]
