"""Tell an exploded training loss from a loss that keeps returning to its floor.

User audit s14 C3: on 600 rows with 12 positives (9 in training, 16-row batches), a batch
holding a positive scored 0.1-0.29 and one without scored 0.003-0.007, so the 3-step median
read 0.19 at steps 39-40 against a running low of 0.0046 (41x, over the 38.9x the noise
allowed) and loss_exploding fired; the very next batch (step 41) was back at 0.004, and the
validation loss fell all along (0.108, 0.047, 0.048, 0.038, 0.039). Weights that an lr too
high (or a bad batch) wrecked do not score the floor again on the next batch: a rise the raw
loss leaves within a few steps, while the validation loss does not rise, is batch variance.
"""

from __future__ import annotations

import math

import numpy as np

from trainwise.train.diagnose_common import Row, rows_of

RETURN_WINDOWS = 2  # the raw loss back at its floor within 2 smoothing windows (6 steps on
# C3's 70-step run, where positive-free batches came every 1-3 steps)
VAL_RISE = 1.1  # a validation loss 10% above its lowest before the rise: the model got worse


def returns_to_floor(loss: np.ndarray, low: np.ndarray, exploded: np.ndarray,
                     window: int, swing: float, moved: float) -> np.ndarray:
    """Mask of the exploded points after which, within RETURN_WINDOWS windows, one batch loss
    is back within the batch noise (`swing`, the factor a flat loss's minimum dips by) of a
    running low that training had reached (below `moved`, the start less the plateau rule's
    PLATEAU_DROP: the loss moved): C3's step 41 read 0.004 against a low of 0.0046 (start
    0.69) and a swing of 13x. A band lifted 10x for good
    stays above it (its lowest batch ~2x its old low at a swing ~1.2x), and a loss that fell
    back to its start after the burst (dead ReLUs at chance, ln 10) found no floor again."""
    back = np.zeros(len(loss), dtype=bool)
    reach = RETURN_WINDOWS * window
    for i in np.flatnonzero(exploded & (low < moved)):
        after = loss[i + 1: i + 1 + reach]
        back[i] = len(after) > 0 and float(after.min()) <= swing * low[i]
    return back


def val_loss_rose(history: list[Row], step: int) -> bool | None:
    """Did the first validation loss measured at or after `step` exceed VAL_RISE x the lowest
    one before it? Only that epoch judges the rise: a run that overfits epochs later (C3 with
    epoch 5 at 0.06 against 0.0375) says nothing about a swing at step 39 (review s14 VT1).
    None without a finite validation loss on both sides (nothing to judge by)."""
    before, after = [], []
    for row in rows_of(history, "epoch"):
        value, at = row.get("val_loss"), row.get("step")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or at is None:
            continue
        (before if at < step else after).append((at, float(value)))
    if not before or not after:
        return None
    return min(after)[1] > VAL_RISE * min(value for _, value in before)
