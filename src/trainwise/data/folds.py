"""k folds of every split strategy, each fold's validation part ~1/k of the samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.copies import tie_codes
from trainwise.data.errors import DataError
from trainwise.data.split import SPLITTERS, TIMED, SplitIndices, finish, prepare, with_ties
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


def _carve_folds(y: np.ndarray, codes: np.ndarray | None, num_folds: int, strategy: str,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Fold j takes 1/(k-j) of the rows still unassigned, so every fold is sized in samples
    and keeps class shares by the same splitter a single split uses; the last takes the rest.
    Whole groups: each fold leaves a group for every later one (kfold_indices checked k <= G)."""
    left, folds = np.arange(len(y)), []
    for j in range(num_folds - 1):
        num_val = round(len(left) / (num_folds - j))
        sub = None if codes is None else pd.factorize(codes[left], sort=True)[0]
        val = SPLITTERS[strategy](y[left], sub, num_val, rng)
        if sub is not None:
            val = _keep_groups_for_later_folds(val, sub, num_folds - j - 1)
        val = left[val]
        folds.append(np.sort(val))
        left = np.setdiff1d(left, val, assume_unique=True)
    return folds + [left]


def _check_group_count(num_folds: int, groups: np.ndarray | None,
                       joined: np.ndarray | None) -> None:
    """Each fold validates on whole groups, so k folds need k groups (after copies join)."""
    if groups is None or joined is None:
        return
    num_groups, num_joined = int(groups.max()) + 1, int(joined.max()) + 1
    if num_joined >= num_folds:
        return
    copies = "" if num_joined == num_groups else (
        f", and exact copies of rows across groups join them into {num_joined} sets that "
        "must stay whole")
    raise DataError(f"{num_folds} folds need at least {num_folds} groups, one or more per "
                    f"fold's validation part; the data has {num_groups} groups{copies}. "
                    f"{_fewer_folds(num_joined)}, or add groups.")


def _fewer_folds(max_folds: int) -> str:
    return (f"Lower split.num_folds to {max_folds} or fewer" if max_folds >= 2 else
            "Use one split (split.num_folds = 1)")


def _check_time_group_count(num_folds: int, codes: np.ndarray | None) -> None:
    """Expanding windows of whole groups: k + 1 blocks, each needing a group of its own."""
    assert codes is not None
    num_groups = int(codes.max()) + 1
    if num_groups <= num_folds:
        raise DataError(f"{num_folds} time folds need at least {num_folds + 1} groups: they cut "
                        f"the groups, kept whole and in order of start, into {num_folds + 1} "
                        f"blocks (fold j trains on the blocks before block j and validates on "
                        f"it); the data has {num_groups} groups. "
                        f"{_fewer_folds(num_groups - 1)}, or add groups.")


def kfold_indices(y: np.ndarray, *, num_folds: int, groups: np.ndarray | None = None,
                  strategy: str = "auto", seed: int = 0, task: str = "classification",
                  times: np.ndarray | None = None, gap: str | float = "",
                  ties: np.ndarray | None = None) -> list[SplitIndices]:
    """k folds of any strategy: each fold's val part holds ~1/k of the samples (time:
    expanding windows, fold j validating on the j-th of k+1 blocks of each series' timeline).
    Same rules, purity, seeding and `ties` as split_indices; no fold is empty."""
    y = np.asarray(y).reshape(-1)
    times = None if times is None else as_times(times)
    if not 2 <= num_folds <= len(y):
        raise DataError(f"num_folds = {num_folds}: k-fold needs 2 <= k <= {len(y)} rows.")
    codes, strategy = prepare(y, groups, times, len(y) // num_folds, strategy, task)
    if strategy in TIMED:
        assert times is not None
        if strategy == "group_time":
            _check_time_group_count(num_folds, codes)
        folds = time_folds(np.asarray(times).reshape(-1), num_folds=num_folds, series=codes,
                           gap=gap, seed=seed, whole_groups=strategy == "group_time")
        return [finish(f.val, len(y), strategy, f.train, f.num_dropped) for f in folds]
    splitter, joined = with_ties(strategy, codes, tie_codes(ties, num_folds))
    _check_group_count(num_folds, codes, joined)
    vals = _carve_folds(y, joined, num_folds, splitter, np.random.default_rng(seed))
    return [finish(val, len(y), strategy) for val in vals]
