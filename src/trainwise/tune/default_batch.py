"""The default batch cut to fit a small table: train.batch_size left at its default (128) on a
few hundred training rows gave 1-3 optimizer steps an epoch, and the tune stage then warned
about its own default (batch_size_few_steps). The default is cut below MIN_STEPS_PER_EPOCH
(10) steps, the preference of a batch trainwise picks, not only below the warning's 4: it is
ours to choose (batch_size.py says why the two differ). A batch the user set is never changed
here.
"""

from __future__ import annotations

import math

from trainwise.config import TrainConfig, batch_size_set
from trainwise.findings import Finding, info
from trainwise.tune.batch_size import (
    MIN_FITTED_BATCH,
    MIN_STEPS_PER_EPOCH,
    fitted_batch,
    power_of_two_at_most,
)


def fitted_default_batch(cfg: TrainConfig, num_rows: int) -> int | None:
    """The largest power of two (>= MIN_FITTED_BATCH) that leaves MIN_STEPS_PER_EPOCH steps an
    epoch on `num_rows` training rows, when the default batch leaves fewer; else None."""
    if batch_size_set(cfg) or math.ceil(num_rows / cfg.batch_size) >= MIN_STEPS_PER_EPOCH:
        return None
    # below MIN_FITTED_BATCH only when the rows are fewer: 32 training rows (a 45-row table)
    # stopped the tune stage, whose range test drops a short last batch and so got no batch
    # of 128 at all (audit s11 M11); the largest power of two <= the rows keeps one full batch
    fitted = min(fitted_batch(num_rows), power_of_two_at_most(max(2, num_rows)))
    more_steps = math.ceil(num_rows / fitted) > math.ceil(num_rows / cfg.batch_size)
    return fitted if more_steps or cfg.batch_size > num_rows else None


def fitted_batch_finding(default: int, fitted: int, num_rows: int,
                         lr: float | None = None) -> Finding:
    """`lr`: a train.lr the user set. The cut still applies (the batch was not theirs), but
    their lr, perhaps carried over from a run at the default batch, is then used at a smaller
    one, so the finding says so and how to keep the batch it went with (review s10 RT12)."""
    steps, fitted_steps = math.ceil(num_rows / default), math.ceil(num_rows / fitted)
    under_lr = "" if lr is None else (
        f" Your train.lr = {lr:g} is used at this batch, {default // fitted}x smaller than the "
        f"default it may have been chosen for: set train.batch_size = {default} to keep that "
        f"batch, or train.lr = \"auto\" to measure the lr at {fitted}.")
    why = (f"{num_rows:,} training rows give {steps} step(s) an epoch at {default}, "
           f"{fitted_steps} at {fitted}") if fitted_steps > steps else (
        f"{default} is more than the {num_rows:,} training rows, and the range test needs one "
        "full batch")
    return info(
        "tune", "batch_size_fitted",
        f"Batch {fitted}, not the default {default}: {why} (the largest power of two that "
        f"leaves >= {MIN_STEPS_PER_EPOCH} steps, never below {MIN_FITTED_BATCH} unless the "
        "rows are fewer). Set train.batch_size to choose it yourself; a size you set is kept "
        f"as it is.{under_lr}",
        batch_size=fitted, default=default, steps_per_epoch=fitted_steps,
        default_steps_per_epoch=steps, user_lr=lr)
