"""One batch whose loss and gradient norm collapse to ~zero while the batches around it train
normally: the silent twin of a gradient spike.

A batch on another scale (inputs x1000, unnormalised units) saturates the model's outputs. If
the saturated answer is wrong, loss and gradient explode (a gradient spike); if it is right,
the loss of every sample underflows to 0 and so does the gradient: measured in the diagnosis
zoo (8x8 digits, seed 1), grad norms 1.2, 0.57, 0.68, **0.0**, 1.51 around the scaled batch.
Batch noise never gets there: a mean over dozens of samples does not fall 1000x below its
neighbours unless every sample in it is fitted perfectly.
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    column,
    finite,
    loss_curve,
    make,
    num,
    rows_of,
)
from trainwise.train.diagnose_grad import (
    MIN_POINTS,
    SPIKE_MIN_PRIOR,
    SPIKE_WINDOW,
    SPIKES_LISTED,
    samples_evidence,
)

DIP_RATIO = 1e-3  # loss and grad norm below 1/1000 of their trailing medians...
DIP_LOSS_LEVEL = 0.01  # ...while that median loss is still above 1% of the starting loss:
# near convergence most batches cost almost nothing and an easy one may honestly reach ~0.
# Measured on the zoo's 12 healthy runs (seed 0) and the default `trainwise run`: no batch
# in mid-epoch fell below 0.1x its trailing medians, even at levels of 0.3% of the start.
# The batch must stand alone (its neighbours are not dips: a long near-zero stretch is
# vanishing gradients or convergence) and must not end an epoch: the short last batch can hold
# a single easy sample.


def _aligned(history: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(steps, loss, grad norm or None) over the step rows where both are finite."""
    steps, loss = finite(*column(history, "step", "loss"))
    grad_steps, grads = finite(*column(history, "step", "grad_norm"))
    if not len(grads):
        return steps, loss, None  # a logger without gradient norms: the loss alone decides
    common, at_loss, at_grad = np.intersect1d(steps, grad_steps, return_indices=True)
    return common, loss[at_loss], grads[at_grad]


def _collapsed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(below DIP_RATIO of the median of the SPIKE_WINDOW rows before it, that median; NaN
    where not computed); never in the first SPIKE_MIN_PRIOR rows, as in the spike rule."""
    n = len(values)
    collapsed, median = np.zeros(n, dtype=bool), np.full(n, np.nan)
    padded = np.concatenate([np.full(SPIKE_WINDOW, np.nan), values[:-1]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, SPIKE_WINDOW)  # row i: [i-W, i)
    rows = np.arange(SPIKE_MIN_PRIOR, n)
    # The median only where the value is under DIP_RATIO of the window's maximum (a necessary
    # condition, and rare): the diagnosis reruns every epoch over histories of 20k+ steps.
    rows = rows[values[rows] < DIP_RATIO * np.nanmax(windows[rows], axis=1)]
    if len(rows):
        median[rows] = np.nanmedian(windows[rows], axis=1)
        collapsed[rows] = (median[rows] > 0) & (values[rows] < DIP_RATIO * median[rows])
    return collapsed, median


def epoch_end_steps(history: list[Row]) -> set[int]:
    """Last step of every epoch: epoch rows' `step`, and each step row followed by another
    epoch's row."""
    ends = {int(row["step"]) for row in rows_of(history, "epoch")
            if isinstance(row.get("step"), (int, float))}
    steps = rows_of(history, "step")
    for row, after in zip(steps, steps[1:], strict=False):
        if row.get("epoch") is not None and after.get("epoch") not in (None, row.get("epoch")):
            ends.add(row.get("step"))
    return ends


def dip_rows(history: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, loss, is_dip) for the aligned step rows."""
    steps, loss, grads = _aligned(history)
    if len(loss) < MIN_POINTS:
        return steps, loss, np.zeros(len(loss), dtype=bool)
    collapsed, loss_median = _collapsed(loss)
    if grads is not None and collapsed.any():
        collapsed &= _collapsed(grads)[0]
    if not collapsed.any():
        return steps, loss, collapsed
    # neighbours judged before the level test: a stretch at zero stays a stretch
    alone = ~np.append(collapsed[1:], True) & ~np.insert(collapsed[:-1], 0, False)
    unconverged = np.nan_to_num(loss_median) > DIP_LOSS_LEVEL * loss_curve(history).start
    ends = np.isin(steps, list(epoch_end_steps(history)))
    return steps, loss, collapsed & alone & unconverged & ~ends


def rule_gradient_dip(history: list[Row]) -> list[Finding]:
    steps, loss, is_dip = dip_rows(history)
    if not is_dip.any():
        return []
    where = np.flatnonzero(is_dip)
    listed = [int(s) for s in steps[where][:SPIKES_LISTED]]
    first = where[0]
    message = (f"The loss and gradient norm of {len(where)} batch(es) collapsed to ~0 while the "
               f"batches around them trained normally, first at step {listed[0]} (loss "
               f"{loss[first]:.2g}, under {DIP_RATIO:g}x the recent median): a batch the model "
               "fits with saturated confidence, as inputs on another scale do.")
    sentence, evidence = samples_evidence(history, listed)
    fix = ("Look at the samples of that batch (data stage): inputs on another scale (not "
           "normalised, x1000), constant or duplicated samples, or a label leaking into the "
           "inputs; normalise per feature or drop them.")
    return [make(Severity.WARNING, "gradient_dip", message + sentence, fix, listed[0],
                 num_dips=len(where), dip_steps=listed, dip_loss=num(float(loss[first])),
                 threshold_ratio=DIP_RATIO, **evidence)]
