"""Diagnosis rules on the gradient norm: sudden spikes, and vanishing gradients (globally, or
per layer via diagnose_layers). The opposite of a spike, one batch whose loss and gradient
collapse to zero, is diagnose_dip."""

from __future__ import annotations

from typing import Any

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    batch_samples,
    column,
    finite,
    longest_run,
    loss_between,
    make,
    num,
    plan_of,
)
from trainwise.train.diagnose_layers import rule_vanishing_layers

MIN_POINTS = 8
SPIKE_MADS = 10.0  # above the trailing median by 10 median absolute deviations...
SPIKE_RATIO = 5.0  # ...and 5x that median: lognormal batch noise (sigma 0.3) is ~1e-7 there
SPIKE_GLOBAL = 2.0  # ...and 2x the highest typical (trailing-median) level of the whole run.
# Why the last one: once the training loss is near zero, most batches give tiny gradients and
# a batch holding one hard sample gives 5-20x more; measured on healthy MLP runs, those stay
# far below the norms of early training.
# The norms are judged per full batch (batch_scale): the short last batch of an epoch (14 rows
# beside 128 in the digits data) averages over fewer samples, so its norm is noisier by
# sqrt(128 / 14) = 3x with nothing wrong in it. A user audit saw that 8x "spike" on digits
# and on a 270-row MNIST-1D run, each the last step of an epoch.
SPIKE_RATIO_WARMUP = 20.0  # ...or 20x that median while a warm-up is raising the lr: the
# trailing median lags the rising lr, and the run is pushed to the edge of stability, where the
# norm bounces 5-10x and settles again. Measured: the default `trainwise run` on MNIST-1D
# (one-cycle, 97.8% test accuracy) had one 6.0x bounce at step 234 of its 347-step warm-up;
# the zoo's batches scaled 1000x spike 500-10000x.
WARMUP_RISE = 2.0  # a warm-up: the lr reaches its peak after rising at least 2x from its start
WARMUP_PEAK_SHARE = 0.99  # ...and lasts until the lr is within 1% of that peak
SPIKE_WINDOW = 20  # trailing rows that define "normal" at each step
SPIKE_MIN_PRIOR = 4  # rows needed before the first judgement
SPIKES_LISTED = 10
SAMPLES_SHOWN = 8  # sample indices quoted in the message; evidence holds them all
INDICES_MEAN = ("positions in the training split, as its loader indexes it; in a trainwise run "
                "split.npz's 'train' array maps position i to its row of the data set")
VANISH_RATIO = 1e-3  # below 1/1000 of the early gradient norm...
VANISH_ZERO = 1e-10  # (or below this when it was zero from the start)...
VANISH_SHARE = 0.2  # ...for at least 20% of the logged steps
CONVERGED_SHARE = 0.1  # loss under 10% of its start: small gradients are just convergence


def _grad_curve(history: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    # Non-finite norms are AMP overflow skips or divergence; the divergence rule owns those.
    return finite(*column(history, "step", "grad_norm"))


def batch_rows(history: list[Row], steps: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(rows in each step's batch, the full batch's rows: the largest) from the step rows'
    `batch_size`; None when no row records it (a user's loop that does not say). A step
    without it counts as full."""
    known_steps, sizes = finite(*column(history, "step", "batch_size"))
    if not len(sizes) or sizes.max() < 1:
        return None
    full = int(sizes.max())
    lookup = dict(zip(known_steps.tolist(), sizes.tolist(), strict=True))
    return np.array([lookup.get(int(step), full) for step in steps], dtype=np.float64), full


def per_full_batch(grads: np.ndarray, rows: np.ndarray | None, full: int) -> np.ndarray:
    """The norms as a full batch would give them: x sqrt(rows / full). The norm of a mean
    gradient over b rows is |g + e / sqrt(b)| (e: one sample's deviation); once the model
    fits, e dominates and a short batch reads sqrt(full / b) higher. A truly abnormal sample
    in a short batch still spikes: the zoo's scaled batches read 500-10000x."""
    if rows is None:
        return grads
    return grads * np.sqrt(np.clip(rows, 1, None) / full)


def _trailing_stats(grads: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the rows before each row: the last `window` of them, or all of
    them while fewer have passed (NaN for the first SPIKE_MIN_PRIOR rows)."""
    n = len(grads)
    median, mad = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(SPIKE_MIN_PRIOR, min(window, n)):  # expanding window at the start
        median[i] = np.median(grads[:i])
        mad[i] = np.median(np.abs(grads[:i] - median[i]))
    if n > window:
        trailing = np.lib.stride_tricks.sliding_window_view(grads[:-1], window)  # k -> k+window
        median[window:] = np.median(trailing, axis=1)
        mad[window:] = np.median(np.abs(trailing - median[window:, None]), axis=1)
    return median, mad


def warmup_steps(history: list[Row]) -> int | None:
    """The step at which a warm-up ends (the lr first comes within 1% of its peak), when the
    lr rose at least WARMUP_RISE x to get there (linear warm-up, one-cycle's cosine); None
    for a constant or decaying lr."""
    steps, lrs = finite(*column(history, "step", "lr"))
    keep = lrs > 0  # a linear warm-up may start at exactly 0
    steps, lrs = steps[keep], lrs[keep]
    if len(lrs) < 2 or lrs.max() < WARMUP_RISE * lrs[0]:
        return None
    return int(steps[np.argmax(lrs >= WARMUP_PEAK_SHARE * lrs.max())])


def warmup_hint(history: list[Row], before: str = "", after: str = "") -> str:
    """A fix's "add a warm-up" clause, framed by `before` / `after`; empty when the schedule
    already warms up (a user audit was told to add the warm-up its one-cycle run had)."""
    if schedule_warms_up(history):
        return ""
    return f"{before}add a warm-up (train.schedule = \"onecycle\" has one){after}"


def schedule_warms_up(history: list[Row]) -> bool:
    """The schedule raises the lr first: as the plan says (one-cycle, a large-batch warm-up),
    else as the lr rows show. A fix need not ask for the warm-up it already has."""
    warmup = plan_of(history).warmup
    return warmup if warmup is not None else warmup_steps(history) is not None


def spike_scores(grads: np.ndarray, min_ratio: np.ndarray | float = SPIKE_RATIO
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(is_spike, ratio to the trailing median) for every row; `min_ratio` per row or for all.

    The first SPIKE_MIN_PRIOR rows never spike: there is no "normal" to compare with yet,
    and the norm at initialisation swings widely in healthy runs.
    """
    median, mad = _trailing_stats(grads, SPIKE_WINDOW)
    known = np.isfinite(median) & (np.nan_to_num(median) > 0)
    if not known.any():
        return np.zeros(len(grads), dtype=bool), np.zeros(len(grads))
    median, mad = np.where(known, median, np.inf), np.where(known, mad, 0.0)
    ratio = np.where(known, grads / np.where(known, median, 1.0), 0.0)
    typical = median[known].max()  # the highest normal level anywhere in the run
    is_spike = (known & (grads > median + SPIKE_MADS * mad) & (ratio > min_ratio)
                & (grads > SPIKE_GLOBAL * typical))
    return is_spike, ratio


def samples_evidence(history: list[Row], steps: list[int]) -> tuple[str, dict[str, Any]]:
    """(a sentence naming the samples, evidence) for the first of `steps` whose row carries
    its batch's sample indices; ("", {}) when none does."""
    samples = batch_samples(history, steps)
    if samples is None:
        return "", {}
    at, indices = samples
    shown = ", ".join(str(i) for i in indices[:SAMPLES_SHOWN])
    sentence = (f" The batch of step {at} held training samples {shown}"
                f"{', ...' if len(indices) > SAMPLES_SHOWN else ''} (evidence: sample_indices; "
                f"{INDICES_MEAN}).")
    return sentence, {"sample_indices": indices, "sample_indices_step": at}


def rule_gradient_spike(history: list[Row]) -> list[Finding]:
    steps, grads = _grad_curve(history)
    if len(grads) < MIN_POINTS:
        return []
    warmup_end = warmup_steps(history)
    in_warmup = steps < warmup_end if warmup_end is not None else np.zeros(len(steps), bool)
    sizes = batch_rows(history, steps)
    rows, full = sizes if sizes is not None else (None, 0)
    is_spike, ratio = spike_scores(per_full_batch(grads, rows, full),
                                   np.where(in_warmup, SPIKE_RATIO_WARMUP, SPIKE_RATIO))
    if not is_spike.any():
        return []
    where = np.flatnonzero(is_spike)
    worst = where[np.argmax(ratio[where])]
    listed = [int(s) for s in steps[where][:SPIKES_LISTED]]
    message = (f"Gradient norm spiked {len(where)} time(s), first at step {listed[0]}; the "
               f"largest was {ratio[worst]:.0f}x the recent median at step {steps[worst]}"
               f"{_batch_note(history, steps, where, worst, rows, full)}.")
    sentence, evidence = samples_evidence(history, [int(steps[worst]), *listed])
    warmup = warmup_hint(history, before=", ")
    fix = ("Look at the samples of the spiking batch for corrupt or extreme values (data "
           f"stage); lower the learning rate (tune stage){warmup} and clip gradients "
           "(train.grad_clip).")
    if warmup_end is not None:
        evidence.update(warmup_end_step=warmup_end, threshold_ratio_warmup=SPIKE_RATIO_WARMUP)
    if rows is not None:
        evidence.update(batch_size_at_max=int(rows[worst]), full_batch_size=full)
    return [make(Severity.WARNING, "gradient_spike", message + sentence, fix, listed[0],
                 num_spikes=len(where), spike_steps=listed, max_ratio=num(ratio[worst]),
                 max_grad_norm=num(grads[worst]), threshold_ratio=SPIKE_RATIO,
                 threshold_mads=SPIKE_MADS, **evidence)]


def _batch_note(history: list[Row], steps: np.ndarray, where: np.ndarray, worst: int,
                rows: np.ndarray | None, full: int) -> str:
    """Why a short batch's spike still counts; or, when the rows do not record batch sizes
    and every spike ends an epoch, that those may be short last batches."""
    if rows is not None:
        if rows[worst] >= full:
            return ""
        return (f" (a {rows[worst]:.0f}-row batch, the norm scaled to the full "
                f"{full}-row batch's noise: sqrt({rows[worst]:.0f} / {full}))")
    epoch_steps, epochs = column(history, "step", "epoch")
    ends = {int(s) for s, e, after in zip(epoch_steps, epochs, np.append(epochs[1:], np.nan),
                                          strict=True) if e != after}
    if len(ends) < 2 or not all(int(steps[i]) in ends for i in where):
        return ""
    return (" (every spike is the last step of an epoch: when the training set does not "
            "divide by the batch size that batch is short, and its mean gradient noisier; "
            "log each step's batch_size to have it allowed for)")


def rule_vanishing_gradients(history: list[Row]) -> list[Finding]:
    """The global norm vanished; else, per layer, some layers vanished (diagnose_layers)."""
    return _vanishing_globally(history) or rule_vanishing_layers(history)


def _vanishing_globally(history: list[Row]) -> list[Finding]:
    steps, grads = _grad_curve(history)
    n = len(grads)
    if n < MIN_POINTS:
        return []
    # The norm at initialisation, or the median of the first 5 if lower: a norm that blows
    # up on the first updates (lr far too high) is not the reference for "vanished".
    early = float(min(grads[0], np.median(grads[:5])))
    floor = max(VANISH_RATIO * early, VANISH_ZERO)
    start, length = longest_run(grads < floor)
    if length < max(5, VANISH_SHARE * n):
        return []
    first, last = int(steps[start]), int(steps[start + length - 1])
    losses = loss_between(history, first, last)
    if losses and losses[0] > 0 and losses[1] < CONVERGED_SHARE * losses[0]:
        return []  # the loss is nearly gone: tiny gradients mean convergence, not a stall
    stretch = float(np.median(grads[start: start + length]))
    if early < VANISH_ZERO:
        what = (f"The gradient norm is zero (< {VANISH_ZERO:g}) from the first step: no "
                "gradient reaches the parameters.")
        fix = ("Check for frozen parameters (requires_grad=False), a detached graph "
               "(.detach(), .item(), torch.no_grad) or a loss that ignores the model's output "
               "(check stage: gradient flow).")
    else:
        what = (f"The gradient norm vanished: {stretch:.2g} over steps {first}-{last}, "
                f"{stretch / early:.1e}x its early value {early:.3g}, while the loss had not "
                "converged.")
        fix = ("Check gradient flow layer by layer (check stage): saturating activations "
               "(sigmoid/tanh), dead ReLUs, missing normalisation; use He init for ReLU layers "
               "(model stage).")
    return [make(Severity.WARNING, "vanishing_gradients", what, fix, first,
                 early_grad_norm=num(early), stretch_grad_norm=num(stretch),
                 stretch_first_step=first, stretch_last_step=last, stretch_rows=length,
                 loss_during_stretch=num(losses[1]) if losses else None,
                 threshold_ratio=VANISH_RATIO)]
