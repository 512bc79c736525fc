"""Whether whole groups ordered by start time span one shared period (review s13 VD4, VD10).

A group_time split keeps groups whole and orders them by their first time, so some training
rows always come after the held-out part begins: a group that starts before it runs on. The
question is how many. When more than half of the training rows do, the groups are a panel
over one period (12 stores from one day: audit s13 F5), their start order is no forecast, and
the held-out part scores unseen groups, not later times. Cohorts that start one after another
leave few (10 cohorts of 45 days, 30 days apart: 14 of 315 rows, 4%): a real forecast.

One rule, written here once: the split stage's group_start_order proof, its few_groups advice
and its verdict in meta.json (split.same_period), which drift and crossval read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainwise.data.timesplit import time_axis

# The fix for groups that share a period, and why: said alike by the split, drift and crossval
# findings (review s13 VD10: four hand-written versions had drifted apart already)
GROUPED_KFOLD_FIX = ('set split.time_column = "none" and split.num_folds = 5: a grouped k-fold, '
                     "which validates each group once (the time column is then not used to "
                     "split)")
SAME_PERIOD_WHY = ("the groups span the same period, so their start order is no forecast, and "
                   "folds of groups by start time never validate the groups that start first")
# The alternative to GROUPED_KFOLD_FIX, and what a held-out part of such groups measures; the
# callers add the capital ("To {TIME_SPLIT_FIX}" / "to {TIME_SPLIT_FIX}")
TIME_SPLIT_FIX = 'forecast later rows of known groups, set split.strategy = "time"'
UNSEEN_GROUPS = "scores unseen groups, not later times"

Pair = tuple[np.ndarray, np.ndarray]  # (earlier part's rows, held-out part's rows)


def rows_after(train_times: np.ndarray, held_out_times: np.ndarray) -> int:
    """Training rows dated strictly after the held-out part begins (one on its first day is
    not after it)."""
    return int((time_axis(train_times) > time_axis(held_out_times).min()).sum())


def shares(num_after: int, num_rows: int) -> bool:
    """The rule itself: more than half of `num_rows` training rows come after (rows_after)."""
    return 2 * num_after > num_rows


def share_period(train_times: np.ndarray, held_out_times: np.ndarray) -> bool:
    """More than half of the training rows are dated after the held-out part begins."""
    if not len(train_times) or not len(held_out_times):
        return False
    return shares(rows_after(train_times, held_out_times), len(train_times))


def held_out_pairs(train: np.ndarray, val: np.ndarray, test: np.ndarray | None = None,
                   folds: Sequence[Pair] = ()) -> list[Pair]:
    """The pairs the split stage proves: each fold's (train, val), or the one (train, val);
    then (train+val, test) when the test part was carved from the data."""
    pairs = list(folds) or [(train, val)]
    if test is not None and len(test):
        pairs.append((np.concatenate([train, val]), test))
    return pairs


def groups_share_period(times: np.ndarray, pairs: Sequence[Pair]) -> bool:
    """share_period for any pair of row indices into `times`."""
    times = np.asarray(times)
    return any(share_period(times[np.asarray(a)], times[np.asarray(b)]) for a, b in pairs)
