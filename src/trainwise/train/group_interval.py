"""A 95% interval for a test accuracy whose rows come in groups: a cluster bootstrap.

Rows of one group (a patient's visits) tend to be right or wrong together, so Wilson's
interval over rows (intervals.py), which counts them as independent draws, is too narrow: a
user audit (s13 F10) scored 605 visits of 118 patients with a per-patient label, Wilson
72.0-78.8%, resampling the patients 68.9-82.4%, twice as wide. The effective sample is the
groups, so resample them: draw the test groups with replacement NUM_RESAMPLES times, score
each draw's rows (accuracy = its right answers / its rows, groups weighted by their size) and
take the 2.5th and 97.5th percentiles (Efron's percentile interval).

Used only from FEW_GROUPS groups up (under 10 groups a bootstrap is no better than Wilson:
one group gives zero width; the result says "too narrow" instead) and when the groups hold
more than one row on average (one row each: the rows are the groups, Wilson is exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trainwise.train.intervals import FEW_GROUPS, GROUP_COLUMN, GROUP_INTERVAL
from trainwise.train.regression_intervals import percentile_bounds, resamples

NUM_RESAMPLES = 2000  # the 2.5/97.5 percentiles move by ~1% of the width between seeds


def group_accuracy_interval(right: np.ndarray, groups: np.ndarray,
                            seed: int = 0) -> tuple[float, float] | None:
    """(low, high): the percentile cluster bootstrap of the accuracy of `right` (one bool per
    test row) resampling `groups` (one label per row); None under FEW_GROUPS groups or with
    no more rows than groups (then Wilson's interval over rows stands)."""
    right = np.asarray(right, dtype=bool).reshape(-1)
    codes, uniques = pd.factorize(pd.Series(np.asarray(groups).reshape(-1), dtype=object),
                                  sort=True, use_na_sentinel=False)
    num_groups = len(uniques)
    if num_groups < FEW_GROUPS or len(right) <= num_groups:
        return None
    rows = np.bincount(codes, minlength=num_groups)  # (G,) rows per group
    hits = np.bincount(codes, weights=right, minlength=num_groups)  # (G,) right per group
    scores = [hits[drawn].sum(axis=1) / rows[drawn].sum(axis=1)  # (resamples,)
              for drawn in resamples(num_groups, seed, NUM_RESAMPLES)]
    low, high = percentile_bounds(np.concatenate(scores))
    return low, high


def group_interval_keys(right: np.ndarray, groups: np.ndarray | None, column: str | None,
                        seed: int = 0) -> dict[str, Any]:
    """The test row's keys: GROUP_INTERVAL and GROUP_COLUMN (when the key has a column name);
    the stage adds test_groups (GROUPS). {} without groups or when Wilson's interval stands."""
    if groups is None:
        return {}
    bounds = group_accuracy_interval(right, groups, seed)
    if bounds is None:
        return {}
    return {GROUP_INTERVAL: list(bounds), **({GROUP_COLUMN: column} if column else {})}
