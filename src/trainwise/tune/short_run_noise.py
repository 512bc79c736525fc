"""Short runs on a small validation part: is the best candidate better than the range test's
point by more than the noise of a mean loss over so few rows?

On iris (24 validation rows) the short runs' scores differed by 0.002-0.03 nats, and the
chosen lr moved 140x between seeds (0.0066 to 0.91) while the range test's point stayed at
0.031-0.035 (audit s11 M1). The difference of two candidates' mean losses over the same N rows
has the standard error sd(per-row difference) / sqrt(N): paired, since both score the same
rows. When the best does not beat the candidate nearest the range test's point by
NOISE_Z of those errors, the short runs cannot tell them apart, and that candidate is kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainwise.findings import Finding, Severity

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
    """The loss of each row alone: `loss_fn` is a mean over its batch (short_run_inputs
    refuses a per-sample loss), so a batch of one row gives that row's loss."""
    return [float(loss_fn(outputs[i:i + 1], targets[i:i + 1])) for i in range(len(targets))]


def paired_gap(best: list[float], reference: list[float]) -> tuple[float, float]:
    """(mean of reference - best, its standard error) over the same rows."""
    diff = np.asarray(reference, dtype=np.float64) - np.asarray(best, dtype=np.float64)
    se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.inf
    return float(diff.mean()), se


def settle_within_noise(result: Any, range_lr: float) -> None:
    """On a ShortRunResult: keep the candidate nearest `range_lr` (in log lr) when the best
    candidate beats it by less than NOISE_Z standard errors of the paired difference, and
    say so in a finding."""
    finite = [c for c in result.candidates if math.isfinite(c.val_loss) and c.row_losses]
    if len(finite) < 2:
        return
    best = min(finite, key=lambda c: c.val_loss)
    reference = min(finite, key=lambda c: abs(math.log(c.lr / range_lr)))
    if reference is best or len(best.row_losses) != len(reference.row_losses):
        return
    gap, se = paired_gap(best.row_losses, reference.row_losses)
    if gap > NOISE_Z * se:
        return
    rows, before = len(best.row_losses), result.chosen_lr
    result.chosen_lr = reference.lr
    result.findings = [f for f in result.findings if f.code not in (
        "short_runs_edge", "short_runs_at_range_top")]  # the edge no longer decides
    result.findings.append(Finding(  # an info with a fix: the choice is made, and why
        "tune", Severity.INFO, "short_runs_indistinguishable",
        f"Short runs indistinguishable on {rows} validation rows: the best ({best.lr:.3g}, "
        f"loss {best.val_loss:.4g}) beats the candidate nearest the range test's point "
        f"({reference.lr:.3g}, {reference.val_loss:.4g}) by {gap:.3g}, less than "
        f"{NOISE_Z:g} standard errors of that difference over these rows ({NOISE_Z * se:.3g}). "
        f"Training uses {reference.lr:.3g} instead of {before:.3g}.",
        {"rows": rows, "gap": gap, "standard_error": se, "best_lr": best.lr,
         "chosen_lr": reference.lr, "short_run_lr": before},
        "Nothing to do for this run; with more validation rows (split.val_fraction, or more "
        "data) the short runs can tell the lrs apart."))
