"""Training ended while the validation loss was still falling: the best epoch is the last.

Early stopping cannot have ended such a run (it stops `patience` epochs after the best), so
the epoch budget (train.max_epochs) or the time budget did, and more epochs would likely
help. A user audit's 5-epoch run (s11 M12) had a validation loss of 1.110, 1.078, 1.060,
1.015, 0.9905 and answered one class for every validation row, and was called healthy.
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    diff_noise,
    finite_value,
    longer_training,
    make,
    num,
    rows_of,
)

MIN_EPOCHS = 4  # the fall over the last 3 epochs needs a 4th to start from; 2-3 epochs are
SHORT_FALL = 0.10  # judged on the last epoch alone: >= 10% off the loss in that one epoch. Too
# few epochs to measure noise, so the bar is a fall no flattened curve makes in an epoch (the
# zoo's converged runs: under 2% an epoch); user audit s15 M4's 3-epoch runs fell 27% and 31%
# in their last epoch and were called healthy
LATE_SHARE = 0.25  # the last 3 epochs gave >= 25% of the fall since the first epoch: the curve
# has not flattened. The audit's run: 73%. A converged run (the zoo's healthy one-cycle and
# constant-lr runs) gains its last few percent there: 0-10%.
LATE_FALL = 0.15  # ...or they took 15% off the loss (the audit's 15-epoch run: 0.558 ->
# 0.448, 20%, though its first epochs gave most of the fall)
MIN_FALL = 0.02  # ...and >= 2% of the loss: a smaller fall is noise on any split
NOISE_SIGMAS = 3.0  # ...and 3 epoch-to-epoch noise steps: a lucky last epoch is not a trend
SOLVED_ACCURACY = 1.0  # ...and validation not already all right: a falling loss there only
# sharpens predictions that are right. breast_cancer at train.max_epochs=6 (review s11 VT4):
# accuracy 1.0 from epoch 3, loss 0.0223 -> 0.0149 (-33%) over the last 3 epochs; following the
# old "train longer" gave 10/15 epochs one more test row of 114 and a HIGHER test loss (0.0546
# -> 0.0562 -> 0.0571). The wine data (14 rows, loss 0.0000, accuracy 1.0) is the same case.
VAL_SOLVED = 1e-4  # ...and the loss not already ~0: where no accuracy is logged (regression, a
# Monitor loop without it) a loss of 3e-5 falling to 2e-5 is no reason to train longer


def solved(row: Row) -> bool:
    """Validation all right (SOLVED_ACCURACY) or its loss ~0 (VAL_SOLVED): more epochs only
    sharpen what is right. healthy reads the same test (review s15 VT7)."""
    accuracy, loss = finite_value(row, "val_accuracy"), finite_value(row, "val_loss")
    return (accuracy or 0.0) >= SOLVED_ACCURACY or (loss is not None and loss <= VAL_SOLVED)


def rule_still_improving(history: list[Row]) -> list[Finding]:
    rows = [row for row in rows_of(history, "epoch") if finite_value(row, "val_loss") is not None]
    if len(rows) < 2:
        return []
    val = np.array([row["val_loss"] for row in rows], dtype=np.float64)
    if int(np.argmin(val)) != len(val) - 1 or solved(rows[-1]):
        return []
    if len(rows) < MIN_EPOCHS:
        return _short_run(history, rows, val)
    late, total = float(val[-4] - val[-1]), float(val[0] - val[-1])
    noise = diff_noise(val)
    steep = late >= LATE_SHARE * total or late >= LATE_FALL * val[-4]
    if total <= 0 or not steep or late < MIN_FALL * val[-4] or late < NOISE_SIGMAS * noise:
        return []
    epoch = rows[-1].get("epoch", len(rows))
    message = (f"Training ended while the validation loss was still falling: the best epoch is "
               f"the last (epoch {epoch}, {val[-1]:.4g}), and the last 3 epochs took it down "
               f"{late / val[-4]:.1%} ({val[-4]:.4g} -> {val[-1]:.4g}), {late / total:.0%} of "
               "its whole fall.")
    fix = _train_longer(history)
    return [make(Severity.WARNING, "still_improving", message, fix, rows[-1].get("step"),
                 best_epoch=epoch, best_val_loss=num(float(val[-1])),
                 val_loss_3_epochs_before=num(float(val[-4])), late_fall=num(late),
                 late_share=num(late / total), val_noise=num(noise),
                 threshold_late_share=LATE_SHARE)]


def _train_longer(history: list[Row], how_many: str = "") -> str:
    """still_improving's fix, for the long and the short path alike."""
    return (f"Train for longer: {longer_training(history)}{how_many} and let early stopping "
            "find the best epoch (train stage). The evaluate stage judges a model that had not "
            "finished learning.")


def _short_run(history: list[Row], rows: list[Row], val: np.ndarray) -> list[Finding]:
    """2-3 validated epochs, the best the last: still falling when the last epoch alone took
    SHORT_FALL off the loss (user audit s15 M4: 0.2825 -> 0.2055 at max_epochs = 3)."""
    late = float(val[-2] - val[-1])
    if late < SHORT_FALL * val[-2]:
        return []
    epoch, before = rows[-1].get("epoch", len(rows)), rows[-2].get("epoch", len(rows) - 1)
    # a loop validating every 2nd epoch: "after only 3 epochs ... (epoch 6" and "the last epoch
    # alone" for epochs 4 -> 6 (audit s16 D7); counted as epochs, then the ones validated. A
    # loop numbering from 0 (epochs 0, 1, 2) ran 3, not 2 (3 validated) (review s16 VF10)
    counted = f"{epoch} epochs ({len(rows)} validated)" if epoch > len(rows) else \
        f"{len(rows)} epochs"
    span = ("the last epoch alone" if epoch - before == 1 else
            f"the last validation (epoch {before} -> {epoch})")
    message = (f"Training ended while the validation loss was still falling: after only "
               f"{counted} the best is the last (epoch {epoch}, {val[-1]:.4g}), and {span} "
               f"took it down {late / val[-2]:.1%} ({val[-2]:.4g} -> {val[-1]:.4g}). Too few "
               "epochs to judge where it would settle.")
    fix = _train_longer(history, " (10 or more lets the curve show where it settles)")
    # late_share: the long path's key, kept for the report; 1.0 by construction at 2 epochs
    # (the last epoch is the whole fall), a share of the fall only at 3
    return [make(Severity.WARNING, "still_improving", message, fix, rows[-1].get("step"),
                 best_epoch=epoch, best_val_loss=num(float(val[-1])),
                 val_loss_epoch_before=num(float(val[-2])), late_fall=num(late),
                 late_share=num(late / float(val[0] - val[-1])),
                 threshold_short_fall=SHORT_FALL)]
