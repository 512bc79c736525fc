"""From the range test's per-seed curves to one verdict: combined lr, range, spread, findings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from trainwise.findings import Finding, Severity, info, warning
from trainwise.tune.lr_rule import LrSuggestion, suggest_range
from trainwise.tune.suggest import get_rule

# Seeds further apart than 0.3 decades (2x) are more than the short-run search's log-spaced
# candidates (3-5 points per 1-1.5 decades) can absorb by themselves (tuning_anchors.md §9).
MAX_SPREAD_DECADES = 0.3
# A test that reached lr 1 without the loss rising has gone past where AdamW (the default
# optimiser) trains: its steps are normalised, so with BatchNorm the loss may never diverge,
# and on 2% positives the batch loss past the bottom is mostly noise. An MLP there still did
# not rise at end_lr 10, and "raise end_lr 10x" repeated (audit s9 I12).
HIGH_END_LR = 1.0


class Curve(Protocol):
    seed: int
    lrs: list[float]
    losses: list[float]


@dataclass
class Verdict:
    lr: float
    lr_low: float
    lr_high: float
    spread_decades: float
    suggestions: list[float] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _geometric_median(values: Sequence[float]) -> float:
    """10**median(log10): the middle seed for odd counts, the geometric mean of the two middle
    ones for even counts; one wild seed cannot drag it, unlike the geometric mean."""
    return float(10 ** np.median(np.log10(values)))


def verdict(curves: Sequence[Curve], rule: str, schedule: str = "onecycle") -> Verdict:
    """Combine the seeds: our rule gives each seed's range; `rule` gives each seed's point.
    `schedule`: train.schedule's name, said in the summary ("" : none named)."""
    ranges = [suggest_range(c.lrs, c.losses) for c in curves]
    pick = get_rule(rule)
    points = [r.lr if rule == "trainwise" else float(pick(c.lrs, c.losses))
              for c, r in zip(curves, ranges, strict=True)]
    logs = np.log10(points)
    # one seed has no spread to measure: nan, not a 0.00 that reads as stable (audit s13 T11)
    spread = float(logs.max() - logs.min()) if len(points) > 1 else math.nan
    result = Verdict(_geometric_median(points), _geometric_median([r.lr_low for r in ranges]),
                     _geometric_median([r.lr_high for r in ranges]), spread, points)
    fell = not all("no_descent" in r.flags for r in ranges)
    unrisen = [c.seed for c, r in zip(curves, ranges, strict=True) if "no_rise" in r.flags]
    result.findings = [_summary(result, curves, rule, fell, unrisen, schedule),
                       *_flag_warnings(ranges, curves)]
    if spread_too_wide(result.spread_decades):
        result.findings.append(_spread_warning(result, curves))
    return result


def spread_text(spread_decades: float | None) -> str:
    """The seeds' spread as the console, findings and report say it; unknown for one seed
    (nan in the result, null in JSON), whose single point cannot show its own noise."""
    if spread_decades is None or not math.isfinite(spread_decades):
        return "spread unknown (1 seed; tune.num_seeds >= 3 measures it)"
    return f"spread {spread_decades:.2f} decades ({10 ** spread_decades:.1f}x)"


def spread_too_wide(spread_decades: float | None) -> bool:
    """The point is noise-driven (lr_range_unstable): train inside the range, not at it."""
    return spread_decades is not None and spread_decades > MAX_SPREAD_DECADES


def _high_end(seeds: list[int], unrisen: list[int]) -> str:
    """What the range's upper end is: where the loss rose again, or, in the seeds flagged
    no_rise, just the end of the test (it read "loss rising again" beside a warning that the
    loss never rose)."""
    if not unrisen:
        return "loss rising again"
    if len(unrisen) == len(seeds):
        return "the end of the test: the loss never rose"
    rose = [seed for seed in seeds if seed not in unrisen]
    return (f"the loss rose again in seed(s) {rose}; in seed(s) {unrisen} it never rose, so "
            "there it is the end of the test")


SCHEDULE_SAID = {  # the peak the point is read as, per train.schedule (audit s15 K9: "for a
    # one-cycle schedule" was said under cosine too); the rule was calibrated on one-cycle
    # peaks, and at a constant lr the short runs start lower and scale their pick (search.py)
    "onecycle": " for a one-cycle schedule", "cosine": " for the cosine schedule",
    "constant": " read as a one-cycle peak (the lr stays constant here, which wants less)"}


def _summary(result: Verdict, curves: Sequence[Curve], rule: str, fell: bool,
             unrisen: list[int], schedule: str = "onecycle") -> Finding:
    seeds = [c.seed for c in curves]
    why = " (95% of the loss's fall done)" if rule == "trainwise" else ""
    if not fell:  # no seed's loss fell beyond its noise: the point is where noise dipped
        why = " (a guess: the loss did not clearly fall in any seed; see the warning)"
    return info(
        "tune", "lr_range",
        f"Learning-rate range test ({len(seeds)} seed(s), rule '{rule}'): peak lr "
        f"{result.lr:.2g}{SCHEDULE_SAID.get(schedule, '')}{why}; range "
        f"{result.lr_low:.2g} (3/4 of the fall done) to {result.lr_high:.2g} "
        f"({_high_end(seeds, unrisen)}) for the short-run search; per-seed points: "
        f"{spread_text(result.spread_decades)}.",
        lr=result.lr, lr_low=result.lr_low, lr_high=result.lr_high,
        spread_decades=result.spread_decades, rule=rule, seeds=seeds,
        suggestions=result.suggestions, steps=[len(c.lrs) for c in curves])


_FLAG_TEXT = {
    "no_descent": (
        "the loss did not fall during the test, by more than its noise",
        "Check that the model can learn at all (stage 'check': overfit one batch; the loss "
        "at init) and that targets match inputs and outputs in shape (stage 'data'); or "
        "raise end_lr (the loss never rose either). A loss that is very noisy (small "
        "batches) hides its fall: a larger batch_size steadies it."),
    "no_rise": (
        "the loss had not risen again by end_lr, so the test never saw where it diverges",
        f"Raise end_lr (e.g. 10x, up to {HIGH_END_LR:g}: AdamW rarely trains above lr "
        f"~{HIGH_END_LR:g}) and rerun; until then the suggestion may be too low."),
    "falls_at_start": (
        "the loss fell from the first steps, so the flat start is not visible",
        "Lower start_lr (e.g. 100x) and rerun; the range's low end may be too high."),
    "too_short": (
        "the test stopped after fewer than 5 usable steps",
        "Lower start_lr, or check stage 'check' (the loss may explode at any lr)."),
}


# no_rise past HIGH_END_LR: a higher end_lr would not help, so say what the range then is
_NO_RISE_HIGH_END_FIX = (
    "Keep end_lr: AdamW rarely trains above lr ~1, and its normalised steps (with BatchNorm, "
    "or a loss that is mostly noise past its bottom) may never diverge. The range's upper "
    "end is the end of the test, and the short runs pick inside the range by validation "
    "loss; with another optimiser (e.g. SGD) a higher end_lr can help.")


# no_descent in seeds that all rose (or were cut at a divergence): a higher end_lr only adds
# divergence (audit s13 T13: "raise end_lr" beside "the loss rose again in seed(s) [0, 1]")
_NO_DESCENT_ROSE_FIX = (
    "Check that the model can learn at all (stage 'check': overfit one batch; the loss at "
    "init) and that targets match inputs and outputs in shape (stage 'data'). Each seed's "
    "loss rose past its lowest point before end_lr, so a higher end_lr would add only more "
    "of that rise. A loss that is very noisy (small batches) hides its fall: a larger "
    "batch_size steadies it.")


def _flag_warnings(ranges: Sequence[LrSuggestion], curves: Sequence[Curve]) -> list[Finding]:
    found = []
    for flag, (what, fix) in _FLAG_TEXT.items():
        flagged = [(c, r) for c, r in zip(curves, ranges, strict=True) if flag in r.flags]
        seeds = [c.seed for c, _ in flagged]
        if not seeds:
            continue
        if flag == "no_descent" and not any("no_rise" in r.flags for _, r in flagged):
            fix = _NO_DESCENT_ROSE_FIX
        found.append(warning("tune", f"lr_range_{flag}",
                             f"Range test, seed(s) {seeds}: {what}.", fix, seeds=seeds))
        if flag == "no_rise" and min(c.lrs[-1] for c, _ in flagged) >= HIGH_END_LR:
            # nothing left to raise: a note, not a warning that repeats whatever end_lr is
            found[-1] = replace(found[-1], severity=Severity.INFO, fix=_NO_RISE_HIGH_END_FIX)
    return found


def _spread_warning(result: Verdict, curves: Sequence[Curve]) -> Finding:
    pairs = ", ".join(f"seed {c.seed}: {lr:.2g}"
                      for c, lr in zip(curves, result.suggestions, strict=True))
    return warning(
        "tune", "lr_range_unstable",
        f"The seeds disagree by {result.spread_decades:.2f} decades "
        f"({10 ** result.spread_decades:.1f}x; {pairs}): the point suggestion is noise-driven.",
        "Trust the range, not the point: run `trainwise tune` (tune.short_runs = true), whose "
        "short runs try 3-5 lrs between lr_low and lr_high; a larger tune.num_steps or "
        "train.batch_size steadies the test.", spread_decades=result.spread_decades,
        suggestions=result.suggestions)
