"""Short runs on a small validation part: is the best candidate better than the range test's
point by more than the noise of a mean loss over so few rows?

On iris (24 validation rows) the short runs' scores differed by 0.002-0.03 nats, and the
chosen lr moved 140x between seeds (0.0066 to 0.91) while the range test's point stayed at
0.031-0.035 (audit s11 M1). The difference of two candidates' mean losses over the same N rows
has the standard error sd(per-row difference) / sqrt(N): paired, since both score the same
rows. When the best does not beat the candidate nearest the range test's point by
NOISE_Z of those errors, the short runs cannot tell them apart, and whichever of that
candidate and refine's pick lies nearer the range test's point is kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwise.findings import Finding, Severity
from trainwise.model.class_weights import ClassWeightedCrossEntropy

SMALL_VAL_ROWS = 200  # the check runs below this many validation rows. The calibration tasks
# (bench/tune_vs_oracle.py, whose picks refine() was fitted on) score 397 (digits) and 500
# (Friedman-1) rows, so their picks are untouched; at 200 rows one classification row is
# 0.5 points of accuracy, and per-row losses of every candidate cost 200 loss calls
NOISE_Z = 2.0  # two standard errors: a one-sided ~98% test that the best is really better


def few_rows(val_loader: Any) -> bool:
    """The validation loader holds fewer than SMALL_VAL_ROWS rows (unknown length: False)."""
    dataset = getattr(val_loader, "dataset", None)
    try:
        return 0 < len(dataset) < SMALL_VAL_ROWS  # type: ignore[arg-type]
    except TypeError:
        return False


def row_losses(loss_fn: Any, outputs: Any, targets: Any) -> list[float]:
    """Each row's share of the mean loss, scaled so that their plain mean is the loss over
    all rows: a batch of one row gives that row's loss (short_run_inputs refuses a per-sample
    loss), and a cross-entropy or NLL over class indices divides by the sum of its targets'
    class weights (1 without `weight`; 0 at ignore_index), not the row count, so a row whose
    targets weigh W_i of W counts W_i * N / W times its own loss. Weighted 3:1, rows of
    losses 1 and 2 score (3 * 1 + 1 * 2) / 4 = 1.25, their plain mean 1.5 (review s11 VT2)."""
    losses = np.array([float(loss_fn(outputs[i:i + 1], targets[i:i + 1]))
                       for i in range(len(targets))], dtype=np.float64)
    weights = _row_weights(loss_fn, targets)
    if weights is None or not weights.sum() > 0:
        return losses.tolist()
    shares = np.where(weights > 0, losses, 0.0) * weights  # an all-ignored row's loss is NaN
    return (shares * len(losses) / weights.sum()).tolist()


def _row_weights(loss_fn: Any, targets: Any) -> np.ndarray | None:
    """Each row's summed target weight under a cross-entropy or NLL over class indices (the
    denominator of its weighted mean); None for any other loss (a plain mean over rows)."""
    own = isinstance(loss_fn, ClassWeightedCrossEntropy)  # train.class_weights = "balanced"
    if not (own or isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss))) or \
            torch.is_floating_point(targets):
        return None
    class_weight = loss_fn.weights if own else loss_fn.weight
    flat = targets.reshape(len(targets), -1).long().cpu()
    kept = flat != getattr(loss_fn, "ignore_index", -100)
    classes = torch.where(kept, flat, torch.zeros_like(flat))
    weight = class_weight.detach().cpu().double()[classes] if class_weight is not None \
        else torch.ones(flat.shape, dtype=torch.float64)
    return (weight * kept).sum(dim=1).numpy()


def paired_gap(best: list[float], reference: list[float]) -> tuple[float, float]:
    """(mean of reference - best, its standard error) over the same rows."""
    diff = np.asarray(reference, dtype=np.float64) - np.asarray(best, dtype=np.float64)
    se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.inf
    return float(diff.mean()), se


def settle_within_noise(result: Any, range_lr: float) -> None:
    """On a ShortRunResult: when the best candidate beats the one nearest `range_lr` (in log
    lr) by less than NOISE_Z standard errors of their paired difference, keep whichever of
    refine's pick and that candidate lies nearer `range_lr`, and say so in a finding.

    The gap is the difference of the scores that ranked them (with tail_evals > 1 the median
    of the last epoch's losses, which the rows' end losses need not match: their mean gap
    came out at -0.0125 on digits at a constant lr, review s11 VT2), so never negative; its
    standard error is the rows' paired one at the end. Refine's pick stays when nearer: on
    the built-in digits (144 rows) it was 0.0166 beside the range point 0.017, and the grid's
    0.0221 tested 95.82% against its 97.21% (review s11 VT1)."""
    finite = [c for c in result.candidates if math.isfinite(c.val_loss) and c.row_losses]
    if len(finite) < 2:
        return
    best = min(finite, key=lambda c: c.val_loss)
    reference = min(finite, key=lambda c: _decades(c.lr, range_lr))
    if reference is best or len(best.row_losses) != len(reference.row_losses):
        return
    gap = reference.val_loss - best.val_loss
    se = paired_gap(best.row_losses, reference.row_losses)[1]
    before = result.chosen_lr
    if gap > NOISE_Z * se or _decades(before, range_lr) <= _decades(reference.lr, range_lr):
        return  # told apart, or refine's pick is already as near the range test's point
    result.chosen_lr = reference.lr
    result.findings = [f for f in result.findings if f.code not in (
        "short_runs_edge", "short_runs_at_range_top")]  # the edge no longer decides
    result.findings.append(_indistinguishable(best, reference, gap, se, before))


def _decades(lr: float, range_lr: float) -> float:
    return abs(math.log10(lr / range_lr))


def _indistinguishable(best: Any, reference: Any, gap: float, se: float,
                       before: float) -> Finding:
    rows = len(best.row_losses)
    return Finding(  # an info with a fix: the choice is made, and why
        "tune", Severity.INFO, "short_runs_indistinguishable",
        f"Short runs indistinguishable on {rows} validation rows: the best ({best.lr:.3g}, "
        f"loss {best.val_loss:.4g}) beats the candidate nearest the range test's point "
        f"({reference.lr:.3g}, {reference.val_loss:.4g}) by {gap:.3g}, less than "
        f"{NOISE_Z:g} standard errors of that difference over these rows ({NOISE_Z * se:.3g}). "
        f"Training uses {reference.lr:.3g} instead of {before:.3g}.",
        {"rows": rows, "gap": gap, "standard_error": se, "best_lr": best.lr,
         "chosen_lr": reference.lr, "short_run_lr": before},
        "Nothing to do for this run; with more validation rows (split.val_fraction, or more "
        "data) the short runs can tell the lrs apart.")
