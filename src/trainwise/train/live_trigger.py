"""A validation loss that rose far above its best: diagnosed live at once, whatever the CPU
share (DiagnosisSchedule) allows.

User audit s15 B13: 200 rows, a 1024-wide MLP, 60 epochs of ~0.02 s. diagnose() on the
history up to epoch 9 already found overfitting; by the share alone (a diagnosis may take
1-2% of the thread's time) the live line came at epoch 22, and on runs whose validation loss
was 3x its epoch-1 value by epoch 4 never. The share is right for steady training; a
validation loss far above its best is an event, and costs a few diagnoses per rise.
"""

from __future__ import annotations

import math
from typing import Any

from trainwise.train.diagnose_val import OVERFIT_PATIENCE, OVERFIT_RISE

# imported, not restated: the trigger fires where the overfitting rule can (review s15 VT9)
VAL_RISE = 1 + OVERFIT_RISE  # 1.25x its best: the overfitting rule's own rise
# (10% for a run that never improved). Healthy runs of the diagnosis zoo stay
# within 6% of their best (diagnose_val GAP_RISE's comment); a noisy one that passes it costs
# FORCED_EPOCHS diagnoses, once per REARM step. The audit's run: 1.25x at epoch 8, where
# diagnose() found overfitting at epoch 9; at 1.5x the trigger waited to epoch 11.
FORCED_EPOCHS = OVERFIT_PATIENCE  # epochs diagnosed after a rise (3): a live warning is said
# once two diagnoses in a row find it, and the overfitting rule needs 3 epochs past the best
REARM = 1.5  # the next rise counts from 1.5x the loss that set off the last: a run that keeps
# overfitting sets it off at 1.25x, 1.9x, 2.8x ... its best, a handful of times, not each epoch


class ValRiseTrigger:
    """due(val_loss) at each epoch end: True on the FORCED_EPOCHS epochs from the one whose
    validation loss first passed VAL_RISE x the best so far (then REARM x that loss)."""

    def __init__(self) -> None:
        self._best: float | None = None
        self._bar = 0.0  # a rise must pass this too: REARM x the loss of the last rise
        self._left = 0  # forced diagnoses still due

    def due(self, val_loss: Any) -> bool:
        if isinstance(val_loss, (int, float)) and math.isfinite(val_loss):
            self._see(float(val_loss))
        if self._left <= 0:
            return False
        self._left -= 1
        return True

    def _see(self, val_loss: float) -> None:
        if self._best is None or val_loss < self._best:
            self._best = val_loss
        if self._best > 0 and val_loss > max(VAL_RISE * self._best, self._bar):
            self._bar, self._left = REARM * val_loss, FORCED_EPOCHS
