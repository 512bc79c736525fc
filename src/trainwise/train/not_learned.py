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
                peak_lr: float | None = None) -> str:
    """'The model did not learn: ... (tune stage) ...' when the best epoch's validation loss
    is not LEARNED_MARGIN below ln `num_classes`; '' otherwise, for a regression, or
    without epochs.
    `peak_lr`: the schedule's peak (the evaluate stage knows it); else the steps' largest lr
    is named (2 one-cycle steps at peak 0.572 reach 0.465)."""
    best = best_epoch(history)
    if best is None or num_classes is None or num_classes < 2:
        return ""
    chance, loss = chance_loss(num_classes), float(best["val_loss"])
    if learned_below(loss, chance):
        return ""
    lrs = [row["lr"] for row in rows_of(history, "step")
           if isinstance(row.get("lr"), (int, float))]
    peak = f", peak lr {peak_lr:.3g} here" if peak_lr else \
        f", the steps' lr up to {max(lrs):.3g} here" if lrs else ""
    return (f"The model did not learn: its best validation loss {loss:.3g} never came below "
            f"chance (ln {num_classes} = {chance:.2f}, the uniform guess) by more than "
            f"{LEARNED_MARGIN:.0%}. Fix training first: "
            f"revisit the learning rate (tune stage: train.lr{peak}; a lower one, or "
            "train.lr = \"auto\" for the range test) and train.batch_size (a batch near the "
            "training rows' count leaves a few optimizer steps per epoch), one stage before "
            "this. Only then does what follows apply:")


def lead_with(finding: Finding, lead: str) -> Finding:
    """`finding` with `lead` (not_learned's text) before its fix, when it has one and the
    finding is one of LEADS or the train stage's missed_classes."""
    if not lead or finding.code not in (*LEADS, "missed_classes"):
        return finding
    return replace(finding, fix=f"{lead} {finding.fix}")
