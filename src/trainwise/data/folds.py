"""k folds of every split strategy, each fold's validation part ~1/k of the samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.copies import tie_codes
from trainwise.data.errors import DataError
from trainwise.data.group_count import GroupCount
from trainwise.data.split import (
    SPLITTERS,
    TIMED,
    SplitIndices,
    as_labels,
    finish,
    prepare,
    single_row_classes,
    with_ties,
)
from trainwise.data.timesplit import as_times, time_folds


def _keep_groups_for_later_folds(val: np.ndarray, codes: np.ndarray,
                                 folds_after: int) -> np.ndarray:
    """Trim a fold's val rows (indices into `left`) to whole groups that leave at least one
    group for each later fold: with one group holding most rows, a fold sized 1/k in rows can
    otherwise take every small group and leave the big one alone for several folds."""
    picked, sizes = np.unique(codes[val], return_counts=True)
    allowed = len(np.unique(codes)) - folds_after
    if len(picked) <= allowed:
        return val
    keep = picked[np.argsort(-sizes, kind="stable")[:allowed]]  # the largest: nearest 1/k
    return val[np.isin(codes[val], keep)]


def _top_up_with_single_rows(y: np.ndarray, val: np.ndarray, num_val: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Fill a stratified fold (indices into `left`) up to num_val with rows of classes that
    have one row left. stratified_split keeps those in train, but in k folds every row
    validates once: without this they all piled into the last fold (70 rows, 30 single-row
    classes, k = 3: folds of 13, 13 and 44)."""
    singles = np.setdiff1d(np.flatnonzero(np.isin(y, single_row_classes(y))), val)
    extra = rng.permutation(singles)[:max(num_val - len(val), 0)]
    return np.concatenate([val, extra])


def _carve_folds(y: np.ndarray, codes: np.ndarray | None, num_folds: int, strategy: str,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Fold j takes 1/(k-j) of the rows still unassigned, so every fold is sized in samples
    and keeps class shares by the same splitter a single split uses; the last takes the rest.
    Whole groups: each fold leaves a group for every later one (GroupCount checked k <= G)."""
    left, folds = np.arange(len(y)), []
    for j in range(num_folds - 1):
        num_val = round(len(left) / (num_folds - j))
        sub = None if codes is None else pd.factorize(codes[left], sort=True)[0]
        val = SPLITTERS[strategy](y[left], sub, num_val, rng)
        if strategy == "stratified":
            val = _top_up_with_single_rows(y[left], val, num_val, rng)
        if sub is not None:
            val = _keep_groups_for_later_folds(val, sub, num_folds - j - 1)
        val = left[val]
        folds.append(np.sort(val))
        left = np.setdiff1d(left, val, assume_unique=True)
    return folds + [left]


def kfold_indices(y: np.ndarray, *, num_folds: int, groups: np.ndarray | None = None,
                  strategy: str = "auto", seed: int = 0, task: str = "classification",
                  times: np.ndarray | None = None, gap: str | float = "",
                  ties: np.ndarray | None = None) -> list[SplitIndices]:
    """k folds of any strategy: each fold's val part holds ~1/k of the samples (time:
    expanding windows, fold j (from 0) validating on block j + 1 of the k + 1 blocks (0..k) of
    each series' timeline).
    Same rules, purity, seeding and `ties` as split_indices; no fold is empty."""
    y = as_labels(y, "kfold")
    times = None if times is None else as_times(times)
    if not 2 <= num_folds <= len(y):
        raise DataError(f"num_folds = {num_folds}: k-fold needs 2 <= k <= {len(y)} rows.")
    codes, strategy = prepare(y, groups, times, len(y) // num_folds, strategy, task)
    if strategy in TIMED:
        assert times is not None
        if strategy == "group_time":
            assert codes is not None
            GroupCount.check_folds(num_folds, codes, timed=True)
        folds = time_folds(np.asarray(times).reshape(-1), num_folds=num_folds, series=codes,
                           gap=gap, seed=seed, whole_groups=strategy == "group_time")
        return [finish(f.val, len(y), strategy, f.train, f.num_dropped) for f in folds]
    splitter, joined = with_ties(strategy, codes, tie_codes(ties, num_folds))
    if codes is not None and joined is not None:  # each fold validates on whole groups
        GroupCount.check_folds(num_folds, codes, timed=False, joined=joined)
    vals = _carve_folds(y, joined, num_folds, splitter, np.random.default_rng(seed))
    return [finish(val, len(y), strategy) for val in vals]
