"""Batches in the same order every epoch: an unshuffled loader, often over data sorted by label.

With shuffling, the batch at position p of epoch e and of epoch e+1 are unrelated, so the
per-step losses' pattern within an epoch does not repeat. Without it, the same batches come at
the same positions and the pattern repeats: over data sorted by label, a loss that collapses
inside each class's block and jumps where the next class starts.
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import Row, make, num, rows_of

ORDER_CORRELATION = 0.5  # median rank correlation of the within-epoch loss pattern between
# consecutive epochs. Measured on the diagnosis zoo: shuffled runs -0.09 to 0.22 (24-25
# steps per epoch), loaders sorted by label 0.95-0.96.
LR_WOBBLE = 0.05  # an lr that varies > 5% within epochs, the same way each epoch (warm
# restarts every epoch), repeats the loss pattern by itself: no verdict then
MIN_PATTERN = 0.01  # detrended log-losses must scatter > 1% (batch noise is 10-30%): below it
# the "pattern" is float rounding, which repeats exactly on a smooth synthetic curve
NULL_SPREADS = 4.0  # ...and this many times the spread that median takes on shuffled batches:
# a rank correlation over P positions scatters 1/sqrt(P - 1) around 0, the median of E - 1 of
# them 1.25x less per sqrt(E - 1) (simulated: 3000 shuffled runs of 8-50 steps and 3-30
# epochs; the largest median was 3.5 of these spreads). 11 steps and 12 epochs need 0.50;
# 8 steps and 4 epochs, 1.1: never, too few to tell.
MIN_EPOCHS = 3
MIN_STEPS_PER_EPOCH = 8


def _without_short_batches(rows: list[Row]) -> list[Row]:
    """The step rows less each epoch's last one, unless its batch_size says it is full.

    A short last batch (digits: 14 rows after ten of 128) sits at the same position every
    epoch however the loader shuffles, and its loss differs by itself (noisier, and with
    BatchNorm higher: +0.5 in log-loss every epoch), which alone gave a rank correlation of
    0.57 on a shuffled loader. A loop that does not log batch sizes may have one too.
    """
    sizes = [row["batch_size"] for row in rows if isinstance(row.get("batch_size"), int)]
    full = max(sizes, default=None)
    last = {}
    for index, row in enumerate(rows):
        last[row.get("epoch")] = index
    short = {index for index in last.values()
             if full is None or rows[index].get("batch_size") != full}
    return [row for index, row in enumerate(rows) if index not in short]


def _per_epoch(rows: list[Row], key: str) -> np.ndarray | None:
    """(E, P) values of `key` for the epochs with the usual number P of step rows."""
    by_epoch: dict[int, list[float]] = {}
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and isinstance(row.get("epoch"), int):
            by_epoch.setdefault(row["epoch"], []).append(float(value))
    if len(by_epoch) < MIN_EPOCHS:
        return None
    size = int(np.median([len(v) for v in by_epoch.values()]))
    full = [v for v in by_epoch.values() if len(v) == size]
    if len(full) < MIN_EPOCHS or size < MIN_STEPS_PER_EPOCH:
        return None
    return np.array(full, dtype=np.float64)


def _detrended(values: np.ndarray) -> np.ndarray:
    """Each epoch minus its own straight-line fit: loss falling within an epoch (early
    training) is a trend every epoch shares, not a repeated pattern."""
    positions = np.arange(values.shape[1])
    slope, intercept = np.polyfit(positions, values.T, 1)
    return values - (slope[:, None] * positions + intercept[:, None])


def repeat_correlation(values: np.ndarray) -> float:
    """Median Spearman correlation of the detrended pattern between consecutive epochs."""
    ranks = np.argsort(np.argsort(_detrended(values), axis=1), axis=1).astype(np.float64)
    pairs = [np.corrcoef(ranks[i], ranks[i + 1])[0, 1] for i in range(len(ranks) - 1)]
    pairs = [p for p in pairs if np.isfinite(p)]
    return float(np.median(pairs)) if pairs else 0.0


def order_threshold(num_epochs: int, steps_per_epoch: int) -> float:
    """The repeat correlation that says "same order": ORDER_CORRELATION, raised to
    NULL_SPREADS x what shuffled batches reach by chance over so few steps and epochs."""
    spread = 1.25 / np.sqrt((steps_per_epoch - 1) * (num_epochs - 1))
    return max(ORDER_CORRELATION, NULL_SPREADS * float(spread))


def _lr_repeats(rows: list[Row]) -> bool:
    lrs = _per_epoch(rows, "lr")
    if lrs is None or not np.all(np.isfinite(lrs)) or lrs.mean() <= 0:
        return False
    wobble = np.median(np.abs(_detrended(lrs)).max(axis=1)) / lrs.mean()
    return bool(wobble > LR_WOBBLE)


def rule_ordered_batches(history: list[Row]) -> list[Finding]:
    rows = _without_short_batches(
        [row for row in rows_of(history, "step")
         if isinstance(row.get("loss"), (int, float)) and 0 < row["loss"] < np.inf])
    losses = _per_epoch(rows, "loss")
    if losses is None or _lr_repeats(rows):
        return []
    losses = np.log(losses)  # a multiplicative pattern, the way batch losses scatter
    if float(np.std(_detrended(losses))) < MIN_PATTERN:
        return []
    correlation = repeat_correlation(losses)
    threshold = order_threshold(*losses.shape)
    if correlation < threshold:
        return []
    second_epoch = sorted({row["epoch"] for row in rows})[1]
    onset = min(row["step"] for row in rows if row["epoch"] == second_epoch)
    message = (f"The training batches come in the same order every epoch: the pattern of "
               f"per-step losses within an epoch repeats from one epoch to the next (rank "
               f"correlation {correlation:.2f}; shuffled batches give about 0). If the data are "
               "sorted (by label, time or source), each stretch of batches pulls the model "
               "towards one kind of sample.")
    fix = ("Shuffle the training loader (DataLoader(..., shuffle=True)) (data stage); keep "
           "validation and test unshuffled.")
    return [make(Severity.WARNING, "ordered_batches", message, fix, onset,
                 repeat_correlation=num(correlation), steps_per_epoch=losses.shape[1],
                 epochs_compared=losses.shape[0], threshold=num(threshold))]
