"""The training loss climbed back above its own minimum at a learning rate that did not rise.

At a constant or decaying lr the training loss of a sound run keeps falling or flattens; one
that turns and rises, level with the validation loss, is pulled back by regularisation (or
bounced by an lr too high to settle). User audit s15 B3: AdamW(weight_decay=10), lr 3e-3, 20
epochs: the epoch training loss fell to 0.657 at epoch 5 and rose to 0.700 (validation 0.698),
accuracy 0.78 against 0.92 for weight decay 0.01, and diagnose() said "healthy".
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    column,
    epoch_losses,
    finite,
    make,
    num,
    plan_of,
)

MIN_AFTER = 5  # epochs after the minimum: a sustained rise, not the last few epochs' scatter
RISE_SHARE = 0.03  # each of the last 3 epochs >= 3% above the minimum (the audit's: 5.6%)...
NOISE_SIGMAS = 5.0  # ...and their median 5 epoch-to-epoch noise steps above it (audit: 6.4).
# The minimum of 20 flat noisy epochs sits ~2 sigma low by chance; on flat curves of 8-40
# epochs at 1-8% noise (1000 seeds each) 4 sigma flagged 0.8-1.6%, 5 sigma at most 0.3%
LEVEL_SHARE = 0.15  # train and validation within 15%: not a generalisation gap (audit: 0.3%)
USUAL_DECAY = 0.1  # AdamW's usual weight decay is 0.01-0.1; the audit's 10 pulled the loss up
USUAL_DECAY_TEXT = "0.01-0.1"
LR_SLACK = 1.01  # the lr after the minimum never above 1% over its value there (no warm-up)


def _epoch_noise(train: np.ndarray, low: int) -> float:
    """One epoch mean's noise: the std of consecutive differences over sqrt 2, the larger of
    that after the minimum and over the second half. Plain, not robust (diff_noise): a robust
    MAD of 6-15 differences read 0.01% on a curve with 2% noise and let the scatter pass."""
    def spread(values: np.ndarray) -> float:
        return float(np.std(np.diff(values), ddof=1)) / np.sqrt(2) if len(values) > 2 else 0.0

    return max(spread(train[low:]), spread(train[len(train) // 2:]))


def _lr_rose_after(history: list[Row], step: int) -> bool | None:
    """The lr went above its value at `step` later on (a warm-up or a rising schedule);
    None when no lr was logged."""
    steps, lrs = finite(*column(history, "step", "lr"))
    if not len(lrs):
        steps, lrs = finite(*column(history, "epoch", "lr"))
    at = lrs[steps <= step]
    if not len(at):
        return None
    later = lrs[steps > step]
    return bool(len(later) and later.max() > LR_SLACK * at[-1])


def decay_in_rows(history: list[Row]) -> float | None:
    """The weight decay the run logged: the plan's train.weight_decay, or a row's key."""
    plan = plan_of(history)
    if plan.weight_decay is not None:
        return plan.weight_decay
    _, values = finite(*column(history, "epoch", "weight_decay"))
    return float(values[-1]) if len(values) else None


def _fix(history: list[Row], decay: float | None) -> str:
    plan = plan_of(history)
    if plan.weight_decay is not None:  # a trainwise run: its own keys
        dropout = ("" if plan.dropout is None else
                   f", and model.dropout (now {plan.dropout:g}; model stage)")
        return (f"Lower train.weight_decay (now {plan.weight_decay:g}; {USUAL_DECAY_TEXT} is "
                f"usual for AdamW){dropout} (train stage). If both are already small, the lr is "
                "too high to settle: lower train.lr (tune stage).")
    now = "" if decay is None else f" (now {decay:g})"
    return (f"Lower the optimizer's weight_decay{now} ({USUAL_DECAY_TEXT} is usual for AdamW: "
            "trainwise.param_groups(model, 0.01)) and any heavy dropout in your model (train "
            "stage). If both are already small, the lr is too high to settle: lower it (tune "
            "stage).")


def rule_loss_rising(history: list[Row]) -> list[Finding]:
    """The epoch training loss ends clearly above its own earlier minimum, at an lr that did
    not rise after it, level with the validation loss."""
    rows, train, val = epoch_losses(history, positive=True)
    low = int(np.argmin(train)) if len(train) else 0
    if len(train) - 1 - low < MIN_AFTER:
        return []
    level, noise = float(np.median(train[-3:])), _epoch_noise(train, low)
    rise = level - float(train[low])
    step = rows[low].get("step")
    if (train[-3:].min() - train[low] < RISE_SHARE * train[low]
            or rise < NOISE_SIGMAS * noise or step is None
            or abs(val[-1] - train[-1]) > LEVEL_SHARE * train[-1]
            or _lr_rose_after(history, int(step)) is not False):
        return []
    decay = decay_in_rows(history)
    epoch = rows[low].get("epoch", low + 1)
    message = (f"The training loss rose at a learning rate that did not rise: its lowest "
               f"epoch mean was {train[low]:.4g} at epoch {epoch}, and the last 3 epochs sit "
               f"at {level:.4g} ({rise / train[low]:+.1%}, beyond {NOISE_SIGMAS:g}x the "
               f"epoch-to-epoch noise of {noise:.2g}), level with the validation loss "
               f"({val[-1]:.4g}). Regularisation (weight decay, dropout) pulls the model back "
               "faster than it learns" + ("" if decay is None else f" (weight decay {decay:g})")
               + ", or the lr is too high to settle: the model underfits.")
    return [make(Severity.WARNING, "loss_rising", message, _fix(history, decay), step,
                 min_train_loss=num(float(train[low])), min_epoch=epoch,
                 final_train_loss=num(level), final_val_loss=num(float(val[-1])),
                 relative_rise=num(rise / float(train[low])), epoch_noise=num(noise),
                 weight_decay=num(decay), threshold_rise=RISE_SHARE)]
