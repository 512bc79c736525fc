"""k folds of every split strategy, each fold's validation part ~1/k of the samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.copies import tie_codes
from trainwise.data.errors import DataError
from trainwise.data.split import SPLITTERS, TIMED, SplitIndices, finish, prepare, with_ties
from trainwise.data.timesplit import as_times, time_folds


def _carve_folds(y: np.ndarray, codes: np.ndarray | None, num_folds: int, strategy: str,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Fold j takes 1/(k-j) of the rows still unassigned, so every fold is sized in samples
    and keeps class shares by the same splitter a single split uses; the last takes the rest."""
    left, folds = np.arange(len(y)), []
    for j in range(num_folds - 1):
        num_val = round(len(left) / (num_folds - j))
        sub = None if codes is None else pd.factorize(codes[left], sort=True)[0]
        if sub is not None and sub.max() < 1:
            raise DataError(f"{num_folds} folds need at least {num_folds} groups; the groups "
                            "ran out. Lower split.num_folds.")
        val = left[SPLITTERS[strategy](y[left], sub, num_val, rng)]
        folds.append(np.sort(val))
        left = np.setdiff1d(left, val, assume_unique=True)
    return folds + [left]


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
        folds = time_folds(np.asarray(times).reshape(-1), num_folds=num_folds, series=codes,
                           gap=gap, seed=seed, whole_groups=strategy == "group_time")
        return [finish(f.val, len(y), strategy, f.train, f.num_dropped) for f in folds]
    splitter, codes = with_ties(strategy, codes, tie_codes(ties, num_folds))
    vals = _carve_folds(y, codes, num_folds, splitter, np.random.default_rng(seed))
    return [finish(val, len(y), strategy) for val in vals]
