"""A range test that broke down at its start on a regression with extreme targets: the data
stage's target_outliers is the cause, not the lr nor the model (METHOD.md: when a stage
stalls, the fault is usually one stage earlier).

Audit s14 R2: 3 targets x60 in 800 rows. A batch holding one of them jumped the squared loss
~30x (0.107 -> 3.93); the test stopped at steps 6 and 12 of 100 and chose 1.75e-6, its start,
and training there learned nothing (test R^2 -0.12) while every message blamed the model or the
lr. On the log of the target the same data trained at lr 0.068 (R^2 0.56).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainwise.findings import Finding, Severity, explained, warning

# A seed broke down at its start when it stopped within the first 20% of its steps, or its
# point lies in the first 10% of the ramp in log lr (1e-6 .. 4e-6 of the default 1e-6 .. 1):
# an lr the ramp had barely left, where AdamW moves weights by ~1e-6 per step.
EARLY_STOP_SHARE = 0.2
START_SHARE = 0.1
# the range-test warnings whose fix then names the data first, ahead of the model and the lr
BLAMED = ("lr_range_no_descent", "lr_range_too_short", "lr_range_unstable")
CODE = "lr_range_target_outliers"


def broken_at_start(curves: Sequence[Any], points: Sequence[float], num_steps: int,
                    end_lr: float) -> list[int]:
    """The seeds whose test stopped early (diverged within EARLY_STOP_SHARE of num_steps) or
    whose point lies within START_SHARE of the ramp (log lr) from its start."""
    seeds = []
    for curve, lr in zip(curves, points, strict=True):
        if not curve.lrs or not math.isfinite(lr):
            continue
        start = curve.lrs[0]
        near_start = math.log(lr / start) <= START_SHARE * math.log(end_lr / start)
        stopped = curve.diverged and len(curve.lrs) <= EARLY_STOP_SHARE * num_steps
        if near_start or stopped:
            seeds.append(curve.seed)
    return seeds


def _jump(curves: Sequence[Any]) -> float:
    """The largest batch loss over the median one, over all seeds (30x in the audit's case)."""
    ratios = [max(finite) / np.median(finite) for c in curves
              if (finite := [v for v in c.losses if math.isfinite(v)]) and np.median(finite) > 0]
    return float(max(ratios, default=math.nan))


def target_outlier_blame(result: Any, num_steps: int, end_lr: float, num_extreme: int,
                         log_set: bool) -> list[Finding]:
    """The warning (empty when the targets hold no extreme value or no seed broke down).
    `result`: an LrRangeResult; `num_extreme`: the training targets' extreme values
    (data.audit.extreme_targets); `log_set`: data.target_transform = "log" already."""
    seeds = broken_at_start(result.curves, result.suggestions, num_steps, end_lr)
    if not num_extreme or not seeds:
        return []
    fix = ("Fix the data first, then rerun: look at the rows the data stage's target_outliers "
           "names and fix values entered in the wrong unit or drop them")
    fix += ("; data.target_transform = \"log\" is set and leaves them extreme."
            if log_set else ", or train on the target's log: --set "
            "data.target_transform='\"log\"' (errors are still reported in its units).")
    return [warning(
        "tune", CODE,
        f"The range test broke down at its start in seed(s) {seeds} (stopped within the first "
        f"{EARLY_STOP_SHARE:.0%} of its steps, or chose an lr within the first "
        f"{START_SHARE:.0%} of its ramp), and the training targets hold {num_extreme} extreme "
        f"values (the data stage's target_outliers): a batch holding one lifts the squared "
        f"loss up to {_jump(result.curves):.0f}x its median, which hides the loss's fall "
        f"whatever the lr. Its point, {result.lr:.3g}, is no learning rate to train with.",
        fix, seeds=seeds, extreme_targets=num_extreme, lr=result.lr, log_set=log_set)]


def lead_with_data(findings: list[Finding], blame: list[Finding]) -> list[Finding]:
    """The blame first, and the range test's own warnings' fixes name it first."""
    if not blame:
        return findings
    first = f"First fix the extreme targets ({CODE}); then: "
    return blame + [dataclasses.replace(f, fix=first + (f.fix or "")) if f.code in BLAMED
                    else f for f in findings]


# the range-test verdicts a model that starts trained explains (audit s16 D1): its loss sits
# near its floor, so it cannot fall much whatever the lr, and the seeds' points are noise
TRAINED_START = ("lr_range_no_descent", "lr_range_unstable")
# AdamW fine-tuning commonly runs at 1e-5 .. 1e-4 (BERT's 2e-5 .. 5e-5); 10x below where the
# test saw the loss rise keeps a step from undoing the trained weights
FINE_TUNE_LR = 1e-4


def fine_tuning(findings: list[Finding], starts_trained: str, lr_high: float) -> list[Finding]:
    """The range test's no-descent / unstable warnings as infos that say why, when the model
    starts from trained weights (`starts_trained`: the evidence, "" when it does not): their
    fixes sent the user back to the check and data stages, which have nothing to fix."""
    if not starts_trained:
        return findings
    lr = min(FINE_TUNE_LR, lr_high / 10) if math.isfinite(lr_high) and lr_high > 0 \
        else FINE_TUNE_LR
    note = (f"The model starts from trained weights ({starts_trained}): its loss has little "
            "left to fall at any lr, so this test reads a fine-tuning lr, not a from-scratch "
            "one; the model and the data are not at fault.")
    fix = (f"To fine-tune, train at a low constant lr: --set train.lr={lr:.2g} --set "
           "train.schedule='\"constant\"' (AdamW fine-tunes at 1e-5 to 1e-4, and at least 10x "
           f"below the range's upper end, {lr_high:.2g}, where steps start to undo the "
           "weights); or set tune.start_lr 100x lower so the test starts where the weights "
           "are safe.")
    return [explained(f, note, fix) if f.code in TRAINED_START
            and f.severity is Severity.WARNING else f for f in findings]
