"""Whether a classifier learned at all: its best validation loss against chance, ln C.

Audit s13 P1: wine trained at a peak lr of 0.572 with a batch holding every training row
(one optimizer step an epoch); its best validation loss was 3.88 against ln 3 = 1.10, the
loss of the uniform guess every classifier starts near. The later fixes then led the wrong
way: missed_classes opened with class weights, argmax_misses_classes with a decision
threshold and "train longer", below_linear_reference with "keep the linear model". A loss
that never came below ln C means training itself failed, and the fault is one stage
earlier (METHOD 4): the learning rate (tune stage) or the batch size. Those fixes lead with
this, then keep what they say for a model that learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from trainwise.findings import Finding
from trainwise.train.diagnose_common import LEARNED_MARGIN, Row, best_epoch, rows_of
from trainwise.train.diagnose_loss import rule_lr_too_low

# the evaluate findings whose fix assumes a model that learned (lead_with also leads the train
# stage's missed_classes, diagnose_collapse)
LEADS = ("argmax_misses_classes", "below_linear_reference")


def chance_loss(num_classes: int) -> float:
    """A C-class cross-entropy's loss for the uniform guess, ln C: where a classifier starts."""
    return math.log(num_classes)


def learned_below(loss: float, bar: float) -> bool:
    """`loss` came below `bar` (chance, or the untrained model's loss) by more than
    LEARNED_MARGIN of it."""
    return loss < bar - LEARNED_MARGIN * abs(bar)


def not_learned(history: Sequence[Row], num_classes: int | None,
                peak_lr: float | None = None, target_log: str = "",
                extreme_targets: bool = False) -> str:
    """'The model did not learn: ... (tune stage) ...' when the best epoch's validation loss
    is not LEARNED_MARGIN below ln `num_classes` (a regression, `num_classes` None: its
    validation R^2 not LEARNED_MARGIN above 0, the training mean's); '' otherwise, or
    without epochs.
    `peak_lr`: the schedule's peak (the evaluate stage knows it); else the steps' largest lr
    is named (2 one-cycle steps at peak 0.572 reach 0.465). A regression's `target_log`:
    the log in force ("" for none), not advised again; `extreme_targets`: the data stage
    found target_outliers on the scale trained on, else they are not named (review s14 VE1)."""
    best = best_epoch(history)
    if best is not None and num_classes is None:
        return _regression_not_learned(history, best, peak_lr,
                                       _extreme_clause(target_log, extreme_targets))
    unlearned = unlearned_loss(history, num_classes)
    if unlearned is None:
        return ""
    loss, chance = unlearned
    top = steps_peak_lr(history)
    peak = f", peak lr {peak_lr:.3g} here" if peak_lr else \
        f", the steps' lr up to {top:.3g} here" if top is not None else ""
    return (f"The model did not learn: its best validation loss {loss:.3g} never came below "
            f"chance (ln {num_classes} = {chance:.2f}, the uniform guess) by more than "
            f"{LEARNED_MARGIN:.0%}. Fix training first: "
            f"revisit the learning rate (tune stage: train.lr{peak}; a lower one, or "
            "train.lr = \"auto\" for the range test) and train.batch_size (a batch near the "
            "training rows' count leaves a few optimizer steps per epoch), one stage before "
            "this. Only then does what follows apply:")


def unlearned_loss(history: Sequence[Row], num_classes: int | None
                   ) -> tuple[float, float] | None:
    """(best validation loss, ln C) when the best epoch's is not LEARNED_MARGIN below ln
    `num_classes`; None when it is, for fewer than 2 classes, or without epochs. The one gate
    of not_learned and the own loop's lead (diagnose_collapse)."""
    best = best_epoch(history)
    if best is None or num_classes is None or num_classes < 2:
        return None
    chance, loss = chance_loss(num_classes), float(best["val_loss"])
    return None if learned_below(loss, chance) else (loss, chance)


def steps_peak_lr(history: Sequence[Row]) -> float | None:
    """The largest lr the step rows logged; None when none did."""
    lrs = [row["lr"] for row in rows_of(history, "step")
           if isinstance(row.get("lr"), (int, float))]
    return max(lrs) if lrs else None


def lead_with(finding: Finding, lead: str) -> Finding:
    """`finding` with `lead` (not_learned's text) before its fix, when it has one and the
    finding is one of LEADS or the train stage's missed_classes."""
    if not lead or finding.code not in (*LEADS, "missed_classes"):
        return finding
    return replace(finding, fix=f"{lead} {finding.fix}")


def _regression_not_learned(history: Sequence[Row], best: Row, peak_lr: float | None,
                            extreme: str) -> str:
    """The regression's lead: its best validation R^2 no better than predicting the training
    mean, with the lr direction the train stage found. Audit s14 R7: at a peak lr of 1.7e-06
    (lr_too_low) the advice named only "a learning rate too high"."""
    r2 = best.get("val_r2")
    if not isinstance(r2, int | float) or not math.isfinite(r2) or r2 > LEARNED_MARGIN:
        return ""
    peak = f", peak lr {peak_lr:.3g} here" if peak_lr else ""
    if _lr_too_low(history):
        direction = (f"the train stage found the learning rate too low (lr_too_low{peak}): "
                     "raise it (tune stage: train.lr, or rerun the range test)")
    else:
        direction = (f"revisit the learning rate (tune stage: train.lr{peak}): lower if the "
                     "train stage saw the loss explode or spike (loss_exploding, "
                     "gradient_spike), higher if it barely moved (lr_too_low, plateau)")
    return (f"The network did not learn: its best validation R^2 was {r2:.3g}, no better "
            "than predicting the training mean. Fix training first: "
            f"{direction}{extreme}. Only then does what follows apply:")


def _extreme_clause(target_log: str, extreme_targets: bool) -> str:
    """'; extreme target values ... first', only where the data stage found them; the log is
    advised only where it is not in force already (audit s14 R3/R9 did the same for
    target_outliers and the gradient fix)."""
    if not extreme_targets:
        return ""
    remedy = ("fix or drop those rows (the log, data.target_transform = \"log\", is already "
              "in force)" if target_log else
              "fix those rows or train on the log (data.target_transform = \"log\") first")
    return ("; extreme target values (the data stage's target_outliers) break the range "
            f"test, so {remedy}")


def _lr_too_low(history: Sequence[Row]) -> bool:
    """The train stage's lr_too_low rule on this history (a pure rule: the same answer)."""
    return bool(rule_lr_too_low(list(history)))
