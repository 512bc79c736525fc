"""Split indices: a registry of splitters, sized in samples, pure (a seed, never global RNG).

Strategies: random, stratified, group, stratified_group, time (per series), group_time (whole
groups by start time); k folds of each in folds.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xxhash
from sklearn.model_selection import StratifiedShuffleSplit

from trainwise.data.copies import join, tie_codes
from trainwise.data.errors import DataError
from trainwise.data.grouping import grouped_split
from trainwise.data.timesplit import as_times, time_split

# A splitter gets labels (N,), group codes (N,) int64 or None, the number of validation
# samples wanted, and a seeded Generator; it returns the validation row indices.
Splitter = Callable[[np.ndarray, "np.ndarray | None", int, np.random.Generator], np.ndarray]
SPLITTERS: dict[str, Splitter] = {}
GROUPED = ("group", "stratified_group", "group_time")  # every group on one side only
STRATIFIED = ("stratified", "stratified_group")
# strategies that take times, not a Splitter (see timesplit.py): "time" cuts each series' own
# timeline, so a series (group) has rows on both sides; "group_time" keeps groups whole
TIMED = ("time", "group_time")
# a row strategy with copies to keep together (copies.py) draws by its grouped twin over the
# copies' codes: each untied row is a group of one, so class shares and sizes hold as before
TIED = {"random": "group", "stratified": "stratified_group"}
# each part's name in messages, one spelling for every stage (review s12 VD10)
PART_WORDS = {"train": "train", "val": "validation", "test": "test"}


def register(name: str) -> Callable[[Splitter], Splitter]:
    def add(splitter: Splitter) -> Splitter:
        SPLITTERS[name] = splitter
        return splitter

    return add


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of the two parts (sorted int64) and how they were drawn."""

    train: np.ndarray
    val: np.ndarray
    strategy: str
    fingerprint: str  # xxh64 of both index arrays: the run records exactly which split it used
    num_dropped: int = 0  # rows in neither part (a time split's gap), counted, never hidden

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val)}


@register("random")
def random_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                 rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(len(y))[:num_val]


def single_row_classes(y: np.ndarray) -> np.ndarray:
    """The labels held by exactly one row: a stratified split keeps those rows in train."""
    labels, counts = np.unique(y, return_counts=True)
    return labels[counts == 1]


def stratified_size(y: np.ndarray, num_val: int) -> int:
    """How many validation rows a stratified draw takes from the classes of 2+ rows: their
    share of num_val (num_val counts every row, but the single rows stay in train), or 0
    when that draw cannot hold one row of each such class on both sides.

    Drawing all num_val from the smaller rest took 35% of it for val where 20% was asked, and
    k folds drew more rows than were left (sklearn's raw ValueError)."""
    counts = np.unique(y, return_counts=True)[1]
    num_rest = int(counts[counts >= 2].sum())
    num_classes = int((counts >= 2).sum())
    size = round(num_val * num_rest / len(y))
    return size if num_classes >= 1 and min(size, num_rest - size) >= num_classes else 0


@register("stratified")
def stratified_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                     rng: np.random.Generator) -> np.ndarray:
    # A class with one row cannot be on both sides (StratifiedShuffleSplit refuses it), and
    # falling back to a random split for every class left a 2% class with no validation row
    # in 11 of 50 seeds. So the single rows stay in train, where the model at least sees
    # them, and the other classes keep their shares (stage_split warns, naming the classes).
    num_rest = stratified_size(y, num_val)
    if num_rest == 0:  # only when a fold's draw has too few rows left (_can_stratify checked y)
        return random_split(y, groups, num_val, rng)
    rest = np.flatnonzero(~np.isin(y, single_row_classes(y)))
    # sklearn rounds per-class counts so the total is exact and shares are within one sample
    seed = int(rng.integers(2**31 - 1))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=num_rest, random_state=seed)
    _, val = next(splitter.split(np.zeros((len(rest), 1)), y[rest]))
    return rest[val]


@register("group")
def group_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                rng: np.random.Generator) -> np.ndarray:
    assert groups is not None  # split_indices refuses group strategies without groups
    return grouped_split(np.zeros(len(y), dtype=np.int64), groups, num_val, rng)


@register("stratified_group")
def stratified_group_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                           rng: np.random.Generator) -> np.ndarray:
    assert groups is not None
    return grouped_split(pd.factorize(y, sort=True)[0], groups, num_val, rng)


STRATEGIES = (*SPLITTERS, *TIMED)


def _can_stratify(y: np.ndarray, num_val: int) -> bool:
    """Room on both sides for each class of 2+ rows, sized as stratified_split draws."""
    return stratified_size(y, num_val) > 0


def min_stratified_fraction(y: np.ndarray) -> float | None:
    """The smallest val_fraction (in steps of 0.01, up to 0.5) whose validation draw can be
    stratified on `y`, or None: what split.strategy = "auto" falls back to random below."""
    for percent in range(1, 51):
        if _can_stratify(y, _check_sizes(len(y), percent / 100)):
            return percent / 100
    return None


def _resolve_auto(task: str, has_groups: bool, has_times: bool, y: np.ndarray,
                  num_val: int) -> str:
    if has_times:  # a group column promises whole groups; per series only when asked ("time")
        return "group_time" if has_groups else "time"
    classify = task == "classification"
    if has_groups:
        return "stratified_group" if classify else "group"
    return "stratified" if classify and _can_stratify(y, num_val) else "random"


def _refuse_ignored_keys(strategy: str, has_groups: bool, has_times: bool) -> None:
    if has_times and strategy not in TIMED:
        raise DataError(f"split strategy '{strategy}' ignores the declared time column: rows "
                        "from after the validation period would train the model, a leak from "
                        "the future. Use 'time' or 'auto', or remove split.time_column if the "
                        "order of rows carries no meaning.")
    if has_groups and strategy not in GROUPED + TIMED:
        raise DataError(f"split strategy '{strategy}' ignores the declared group column: rows "
                        "of one group would land in both parts, a leak that inflates the "
                        "validation score. Use 'group', 'stratified_group', 'group_time' or "
                        "'auto', or remove split.group_column if rows are truly independent.")


def _resolve(strategy: str, task: str, has_groups: bool, y: np.ndarray, num_val: int,
             has_times: bool = False) -> str:
    if strategy == "auto":
        return _resolve_auto(task, has_groups, has_times, y, num_val)
    if strategy not in STRATEGIES:
        raise DataError(f"unknown split strategy '{strategy}'. Use 'auto' or one of "
                        f"{list(STRATEGIES)}.")
    _refuse_ignored_keys(strategy, has_groups, has_times)
    if strategy in TIMED and not has_times:
        raise DataError(f"split strategy '{strategy}' needs a time per row. Set "
                        "split.time_column (or save `times` in the .npz).")
    if strategy in GROUPED and not has_groups:
        raise DataError(f"split strategy '{strategy}' needs a group key per row. Set "
                        "split.group_column, or use 'stratified' / 'random' ('time' without "
                        "groups).")
    if strategy in STRATIFIED and task != "classification":
        raise DataError(f"split strategy '{strategy}' needs class labels, but the task is "
                        f"{task}. Use 'random' (or 'group' with a group column).")
    if strategy == "stratified" and not _can_stratify(y, num_val):
        raise DataError("a stratified split needs a validation part and a training part that "
                        "can each hold one row of every class with 2 or more rows (here "
                        f"{num_val} validation rows of {len(y)}, drawn in proportion from "
                        "the rows of those classes; single rows stay in train). Drop or merge "
                        "rare classes, raise val_fraction, or use split.strategy = "
                        "\"random\".")
    return strategy


def _compact_ints(groups: np.ndarray) -> np.ndarray | None:
    """Small non-negative integer keys -> codes in value order by a presence table: O(N),
    where factorize hashes every row (10M rows: ~0.1 s instead of ~1 s)."""
    if groups.dtype.kind not in "iu" or len(groups) == 0:
        return None
    low, high = int(groups.min()), int(groups.max())
    if low < 0 or high >= 4 * len(groups) + 1024:
        return None
    present = np.zeros(high + 1, dtype=bool)
    present[groups] = True
    return (np.cumsum(present) - 1)[groups].astype(np.int64)


def group_codes(groups: np.ndarray, num_rows: int) -> np.ndarray:
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != num_rows:
        raise DataError(f"{len(groups)} group keys for {num_rows} rows; give one key per row.")
    codes = _compact_ints(groups)
    if codes is None:  # sorted: codes don't depend on row order
        codes = pd.factorize(groups, sort=True)[0]
    if (codes < 0).any():
        raise DataError(f"{int((codes < 0).sum())} rows have no group key (empty/NaN). Fill "
                        "them (e.g. one new key per row) or drop those rows.")
    if codes.max() < 1:
        raise DataError(f"only {int(codes.max()) + 1} group in the group column: a group split "
                        "needs at least 2 groups. Check split.group_column.")
    return codes.astype(np.int64)


def _check_sizes(num_rows: int, val_fraction: float) -> int:
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction is {val_fraction}; it must lie strictly between 0 and 1 "
                        "(e.g. 0.1 or 0.2).")
    if num_rows < 2:
        raise DataError(f"{num_rows} rows cannot be split into two non-empty parts; "
                        "give at least 2 (in practice hundreds).")
    return min(max(round(num_rows * val_fraction), 1), num_rows - 1)


def finish(val: np.ndarray, num_rows: int, strategy: str,
            train: np.ndarray | None = None, num_dropped: int = 0) -> SplitIndices:
    mask = np.zeros(num_rows, dtype=bool)
    mask[val] = True
    val = np.flatnonzero(mask).astype(np.int64)
    if train is None:
        train = np.flatnonzero(~mask)
    train = np.sort(np.asarray(train, dtype=np.int64))
    if len(train) == 0 or len(val) == 0:  # a bug guard: every splitter should prevent this
        raise DataError(f"the {strategy} split produced an empty part; report this as a bug.")
    digest = xxhash.xxh64(train.tobytes())
    digest.update(b"|" + val.tobytes())
    return SplitIndices(train, val, strategy, digest.hexdigest(), num_dropped)


def as_labels(y: object, verb: str) -> np.ndarray:
    """The labels y as (N,): one per row, what stratification and the row count come from.

    A table or a 2-D array is refused, not flattened: reshape(-1) of a 300 x 7 DataFrame gave
    2100 "rows", and indices past 299 then picked wrong rows or failed far from the cause.
    One column ((N, 1), a one-column frame) is the labels."""
    if isinstance(y, pd.DataFrame) and y.shape[1] != 1:
        columns = ", ".join(map(str, y.columns[:8])) + (", ..." if y.shape[1] > 8 else "")
        raise DataError(f"{verb} takes the labels y, one per row; got a DataFrame of "
                        f"{y.shape[0]} rows and {y.shape[1]} columns ({columns}). Pass the "
                        f"target column, e.g. trainwise.{verb}(df[\"{y.columns[-1]}\"], ...); "
                        "the indices it returns then select rows of df with df.iloc.")
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        return labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{verb} takes the labels y, one per row (shape (N,)); got shape "
                        f"{labels.shape}. Pass the target, e.g. y rather than x; for one-hot "
                        f"labels (N, C) pass y.argmax(axis=1).")
    return labels


def prepare(y: np.ndarray, groups: np.ndarray | None, times: np.ndarray | None,
             num_val: int, strategy: str, task: str) -> tuple[np.ndarray | None, str]:
    if times is not None and len(np.asarray(times).reshape(-1)) != len(y):
        raise DataError(f"{len(np.asarray(times).reshape(-1))} times for {len(y)} rows; give "
                        "one time per row.")
    codes = None if groups is None else group_codes(groups, len(y))
    strategy = _resolve(strategy, task, codes is not None, y, num_val, times is not None)
    return codes, strategy


def with_ties(strategy: str, codes: np.ndarray | None,
              ties: np.ndarray | None) -> tuple[str, np.ndarray | None]:
    """(splitter, group codes) that keep rows sharing a tie code (tie_codes) on one side: a
    row strategy's grouped twin over the ties, or the groups joined through the ties. Time
    strategies never come here: moving a copy would break the time order they promise."""
    if ties is None:
        return strategy, codes
    if codes is None:
        return TIED[strategy], ties
    joined = join(codes, ties)
    return (strategy, joined) if joined.max() >= 1 else (strategy, codes)


def split_indices(y: np.ndarray, *, val_fraction: float, groups: np.ndarray | None = None,
                  strategy: str = "auto", seed: int = 0, task: str = "classification",
                  times: np.ndarray | None = None, cut: object = "",
                  gap: str | float = "", ties: np.ndarray | None = None,
                  held_out: str = "validation") -> SplitIndices:
    """Split rows 0..N-1 into train and val, val holding ~val_fraction of the SAMPLES.

    y holds the labels, one per row (N,) (a DataFrame's target column, not the frame); the
    indices select rows of the table they came from (df.iloc[split.train]).

    "auto" picks group_time when times and groups are given (whole groups, the later-starting
    ones in val), time when only times are given (with `cut` and `gap` as in
    timesplit.time_split), else stratified_group / group when groups are given, else
    stratified (classification; a class of one row stays in train, the others keep their
    shares) or random. A per-series
    time split (each group's later rows in val) is strategy "time" with groups, never auto.
    Groups and times given here are declared: a strategy that ignores them is an error.
    `ties` (one code per row, e.g. copies.Copies.codes) keeps rows that share a code on one
    side, except in time splits. `held_out` names the val part in errors ("test" when it is
    a test part). The same seed gives the same split; no global random state is read or
    changed.
    """
    y = as_labels(y, "split")
    times = None if times is None else as_times(times)
    num_val = _check_sizes(len(y), val_fraction)
    codes, strategy = prepare(y, groups, times, num_val, strategy, task)
    if strategy in TIMED:
        assert times is not None
        parts = time_split(np.asarray(times).reshape(-1), val_fraction=val_fraction,
                           series=codes, cut=cut, gap=gap, seed=seed,
                           whole_groups=strategy == "group_time", held_out=held_out)
        return finish(parts.val, len(y), strategy, parts.train, parts.num_dropped)
    splitter, codes = with_ties(strategy, codes, tie_codes(ties))
    val = SPLITTERS[splitter](y, codes, num_val, np.random.default_rng(seed))
    return finish(val, len(y), strategy)


def split_test(y: np.ndarray, *, test_fraction: float, groups: np.ndarray | None = None,
               strategy: str = "auto", seed: int = 0, task: str = "classification",
               times: np.ndarray | None = None, gap: str | float = "",
               ties: np.ndarray | None = None) -> SplitIndices:
    """Carve a held-out test part from a pool that has none: `.train` is the part left for
    train+val, `.val` is the TEST part. Same rules as split_indices; the seed is offset so the
    test cut and the later val cut do not reuse one random stream."""
    return split_indices(y, val_fraction=test_fraction, groups=groups, strategy=strategy,
                         seed=seed + 1_000_003, task=task, times=times, gap=gap, ties=ties,
                         held_out="test")
