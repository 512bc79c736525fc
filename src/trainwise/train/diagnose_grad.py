"""Diagnosis rules on the global gradient norm: sudden spikes and vanishing gradients."""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    finite,
    longest_run,
    loss_curve,
    make,
    num,
    rows_of,
    series,
    starting_loss,
)

MIN_POINTS = 8
SPIKE_MADS = 10.0  # above the trailing median by 10 median absolute deviations...
SPIKE_RATIO = 5.0  # ...and 5x that median: lognormal batch noise (sigma 0.3) is ~1e-7 there
SPIKE_GLOBAL = 2.0  # ...and 2x the highest typical (trailing-median) level of the whole run.
# Why the last one: once the training loss is near zero, most batches give tiny gradients and
# a batch holding one hard sample (or the short last batch of an epoch) gives 5-20x more;
# measured on healthy MLP runs, those stay far below the norms of early training.
SPIKE_WINDOW = 20  # trailing rows that define "normal" at each step
SPIKES_LISTED = 10
VANISH_RATIO = 1e-3  # below 1/1000 of the early gradient norm...
VANISH_ZERO = 1e-10  # (or below this when it was zero from the start)...
VANISH_SHARE = 0.2  # ...for at least 20% of the logged steps
CONVERGED_SHARE = 0.1  # loss under 10% of its start: small gradients are just convergence


def _grad_curve(history: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    # Non-finite norms are AMP overflow skips or divergence; the divergence rule owns those.
    return finite(*series(rows_of(history, "step"), "grad_norm"))


def spike_scores(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_spike, ratio to the trailing median) for every row; the first rows never spike.

    The first max(5, 5%) rows are skipped: gradient norms at initialisation and during
    warmup swing by large factors in healthy runs.
    """
    n = len(grads)
    window = int(np.clip(n // 5, 5, SPIKE_WINDOW))
    skip = max(5, n // 20, window)
    is_spike, ratio = np.zeros(n, dtype=bool), np.zeros(n)
    if n <= skip:
        return is_spike, ratio
    trailing = np.lib.stride_tricks.sliding_window_view(grads[:-1], window)  # row k -> k+window
    median = np.median(trailing, axis=1)
    mad = np.median(np.abs(trailing - median[:, None]), axis=1)
    current = grads[window:]
    hit = (median > 0) & (current > median + SPIKE_MADS * mad) & (current > SPIKE_RATIO * median)
    hit &= current > SPIKE_GLOBAL * median[skip - window:].max()
    ratio[window:] = np.divide(current, median, out=np.zeros_like(current), where=median > 0)
    is_spike[window:] = hit
    is_spike[:skip] = False
    return is_spike, ratio


def rule_gradient_spike(history: list[Row]) -> list[Finding]:
    steps, grads = _grad_curve(history)
    if len(grads) < MIN_POINTS:
        return []
    is_spike, ratio = spike_scores(grads)
    if not is_spike.any():
        return []
    where = np.flatnonzero(is_spike)
    worst = where[np.argmax(ratio[where])]
    listed = [int(s) for s in steps[where][:SPIKES_LISTED]]
    message = (f"Gradient norm spiked {len(where)} time(s), first at step {listed[0]}; the "
               f"largest was {ratio[worst]:.0f}x the recent median at step {steps[worst]}.")
    fix = ("Lower the learning rate or add warmup (tune stage) and clip gradients "
           "(train.grad_clip); inspect the batches at those steps for abnormal samples "
           "(data stage).")
    return [make(Severity.WARNING, "gradient_spike", message, fix, listed[0],
                 num_spikes=len(where), spike_steps=listed, max_ratio=num(ratio[worst]),
                 max_grad_norm=num(grads[worst]), threshold_ratio=SPIKE_RATIO,
                 threshold_mads=SPIKE_MADS)]


def _loss_between(history: list[Row], first: int, last: int) -> tuple[float, float] | None:
    """(loss at the start of training, median loss over steps [first, last]), or None."""
    steps, loss = loss_curve(history)
    inside = (steps >= first) & (steps <= last)
    if len(loss) < 3 or not inside.any():
        return None
    return starting_loss(history, loss), float(np.median(loss[inside]))


def rule_vanishing_gradients(history: list[Row]) -> list[Finding]:
    steps, grads = _grad_curve(history)
    n = len(grads)
    if n < MIN_POINTS:
        return []
    early = float(np.median(grads[:5]))
    floor = max(VANISH_RATIO * early, VANISH_ZERO)
    start, length = longest_run(grads < floor)
    if length < max(5, VANISH_SHARE * n):
        return []
    first, last = int(steps[start]), int(steps[start + length - 1])
    losses = _loss_between(history, first, last)
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
