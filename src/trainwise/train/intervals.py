"""How far a score read off a finite split can be trusted: a 95% interval for an accuracy.

Wilson's score interval (scipy's binomtest, method "wilson", the same numbers as statsmodels'
proportion_confint): unlike the textbook p +- 1.96 sqrt(p(1-p)/n) it stays inside 0-100% and
keeps a width at 0% or 100% (wine's 36 of 36 right: 90.4-100%, where that one gives 100-100%).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95
# A score within one point of chance is at chance whatever the rows: on 4,000 rows finding 1 of
# 80 rare rows is above chance statistically (balanced accuracy 0.506, interval from 0.501)
# but no use (audit s9 I2: the collapse the train stage must name).
CHANCE_MARGIN = 0.01
# the test row's cluster-bootstrap interval of the accuracy (group_interval.py), its group
# key's column name and how many groups the test rows come from
GROUP_INTERVAL_SUFFIX = "accuracy_group_interval"
GROUP_INTERVAL = f"test_{GROUP_INTERVAL_SUFFIX}"
GROUP_COLUMN = "test_group_column"
GROUPS = "test_groups"


@dataclass(frozen=True)
class AccuracyInterval:
    low: float
    high: float
    num_correct: int
    num_rows: int
    # set when the bounds come from resampling the rows' groups (group_interval.py), not
    # from Wilson's interval over rows
    num_groups: int | None = None
    group_column: str = ""

    def text(self) -> str:
        """'95% CI 96.7-98.6%, 1000 rows', or with groups '95% CI 68.9-82.4%, 605 rows,
        resampling the 118 patient_id groups' (plain ASCII: the console prints it too)."""
        return (f"{CONFIDENCE:.0%} CI {percent(self.low)}-{percent(self.high)}%, "
                f"{self.num_rows} rows" + (f", {self.resampling()}" if self.num_groups else ""))

    def resampling(self) -> str:
        """'resampling the 118 patient_id groups': which interval a grouped one is; '' for
        Wilson's over rows."""
        if not self.num_groups:
            return ""
        name = f" {self.group_column}" if self.group_column else ""
        return f"resampling the {self.num_groups:,}{name} groups"


def percent(fraction: float) -> str:
    """One decimal, but the bounds 0 and 1 as '0' and '100' (a bound, not a rounding)."""
    if fraction in (0.0, 1.0):
        return f"{100 * fraction:.0f}"
    return f"{100 * fraction:.1f}"


def accuracy_interval(num_correct: int, num_rows: int) -> AccuracyInterval | None:
    """The 95% Wilson interval of num_correct / num_rows; None for an empty split."""
    if num_rows <= 0 or not 0 <= num_correct <= num_rows:
        return None
    ci = binomtest(int(num_correct), int(num_rows)).proportion_ci(CONFIDENCE, method="wilson")
    return AccuracyInterval(float(ci.low), float(ci.high), int(num_correct), int(num_rows))


def split_accuracy_interval(row: dict[str, Any], prefix: str = "test") -> AccuracyInterval | None:
    """From a metrics row's confusion matrix (rows true, columns predicted): its sum is the
    split's rows, its diagonal the right answers: Wilson's interval, or the cluster
    bootstrap's when the row carries one (its rows come in groups). None when the row has no
    matrix (a Monitor row, a regression)."""
    matrix = row.get(f"{prefix}_confusion")
    if not isinstance(matrix, list) or not matrix:
        return None
    try:
        counts = np.asarray(matrix, dtype=np.int64)
    except (TypeError, ValueError):
        return None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return None
    wilson_rows = accuracy_interval(int(np.trace(counts)), int(counts.sum()))
    bounds, num_groups = row.get(f"{prefix}_{GROUP_INTERVAL_SUFFIX}"), row.get(f"{prefix}_groups")
    if wilson_rows is None or not bounds or not num_groups:
        return wilson_rows
    # the rows come in groups: the cluster bootstrap's bounds (audit s13 F10), never narrower
    # than the rows' own Wilson interval
    low, high = _grouped_bounds(float(bounds[0]), float(bounds[1]), wilson_rows, int(num_groups))
    return replace(wilson_rows, low=min(low, wilson_rows.low), high=max(high, wilson_rows.high),
                   num_groups=int(num_groups), group_column=str(row.get(GROUP_COLUMN) or ""))


def _grouped_bounds(low: float, high: float, rows: AccuracyInterval,
                    num_groups: int) -> tuple[float, float]:
    """A percentile bootstrap of an accuracy of 0 or 1 draws it in every resample: [1, 1] on
    590 right rows of 118 groups (review s13 final F1). There, Wilson over the groups, the
    sample when each group's rows agree, says what the resampling cannot (96.8-100%)."""
    if low < high:
        return low, high
    by_groups = accuracy_interval(round(rows.num_correct / rows.num_rows * num_groups),
                                  num_groups)
    assert by_groups is not None  # a share of num_groups >= 1 groups: always in 0..num_groups
    return by_groups.low, by_groups.high


def wilson(num_hits: int, num_rows: int) -> tuple[float, float] | None:
    """(low, high) of the 95% Wilson interval of num_hits / num_rows; None when num_rows is 0
    (a recall with no true rows, a precision with no predictions: nothing to estimate)."""
    interval = accuracy_interval(num_hits, num_rows)
    return None if interval is None else (interval.low, interval.high)


def balanced_accuracy_interval(confusion: Any) -> tuple[float, float] | None:
    """A 95% interval for balanced accuracy from a (C, C) confusion matrix (rows true): see
    mean_recall_interval. None without true rows or without a square matrix."""
    if not isinstance(confusion, list | np.ndarray) or not len(confusion):
        return None
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return None
    return mean_recall_interval(counts.sum(axis=1).tolist(), np.diagonal(counts).tolist())


def mean_recall_interval(rows: Sequence[int], right: Sequence[int]
                         ) -> tuple[float, float] | None:
    """A 95% interval for the mean of the per-class recalls right[i] / rows[i] (classes with
    rows): balanced accuracy; with one entry, accuracy (then it is Wilson's). None without
    rows.

    MOVER (Zou & Donner 2008, "method of variance estimates recovery"; Newcombe's interval
    for a difference of proportions is its two-term case) combines each recall's Wilson
    limits l_i, u_i: mean -/+ sqrt(sum (r_i - l_i)^2) / k and sqrt(sum (u_i - r_i)^2) / k. Like
    Wilson it keeps a width at 0% or 100% recall and stays within 0-100%; the textbook
    sqrt(sum r(1-r)/n) / k collapses to zero width when every recall is 0 or 1. Its noise is
    the rare classes' few rows, not the split's n. Hand-written: neither scipy nor
    statsmodels has it for a mean of k proportions."""
    present = [(int(n), int(hits)) for n, hits in zip(rows, right, strict=True) if n > 0]
    if not present:
        return None
    recall = np.array([hits / n for n, hits in present])
    limits = np.array([wilson(hits, n) for n, hits in present])  # (k, 2)
    mean, k = float(recall.mean()), len(present)
    low = mean - float(np.sqrt(((recall - limits[:, 0]) ** 2).sum())) / k
    high = mean + float(np.sqrt(((limits[:, 1] - recall) ** 2).sum())) / k
    return max(low, 0.0), min(high, 1.0)


def at_chance(score: float, num_classes: int, rows: Sequence[int] | None = None,
              right: Sequence[int] | None = None) -> bool:
    """Whether `score` (a balanced accuracy, or an accuracy) is not clearly above 1 / k, what
    a constant answer or a random guess scores over `num_classes` classes: within
    CHANCE_MARGIN of it (too little to matter), or, given the per-class `rows` and `right`
    answers it was counted from (one entry each for an accuracy), with a 95% interval
    (mean_recall_interval) that reaches it (within the noise of these rows).

    The one reading of "at chance" for the train stage's collapse rule (validation) and the
    evaluate stage's baseline verdicts (test), beside the same interval in the report: the
    two splits cannot disagree over a model by using two rules."""
    chance = 1 / max(num_classes, 1)
    if score < chance + CHANCE_MARGIN:
        return True
    interval = None if rows is None or right is None else mean_recall_interval(rows, right)
    return interval is not None and interval[0] <= chance


# Under this many groups in a scored part, its interval is read as a caveat: audit s11 (M10)
# met "95% CI 83.9-100%, 20 rows" on a test part that was ONE subject. Rows of one group (a
# patient, a site) tend to agree, so the rows are not independent draws: the effective sample
# size lies between the groups and the rows, and with a handful of groups the Wilson interval
# over rows is far too narrow (a group bootstrap over 1-9 groups is no better: 1 group gives
# zero width).
FEW_GROUPS = 10


def few_groups(num_rows: int, num_groups: int | None) -> str:
    """'' unless the `num_rows` scored rows come from fewer than FEW_GROUPS groups (and fewer
    groups than rows); then the short form, e.g. "3 groups: too narrow". The verdict, the
    report's headline and grouped_rows_caveat all word it here (review s11 VA8)."""
    if num_groups is None or num_groups >= min(FEW_GROUPS, num_rows) or num_groups < 1:
        return ""
    return ("1 group" if num_groups == 1 else f"{num_groups} groups") + ": too narrow"


def grouped_rows_caveat(num_rows: int, num_groups: int | None) -> str:
    """few_groups, with why the interval is too narrow and what to do instead."""
    few = few_groups(num_rows, num_groups)
    if not few:
        return ""
    return (f"the {num_rows:,} rows come from {few} (this interval assumes independent "
            "rows); score every group once with grouped k-fold "
            "(trainwise.kfold(y, num_folds=5, groups=...)) for an estimate that holds for new "
            "groups")
