"""Split indices: a registry of splitters, sized in samples, pure (a seed, never global RNG)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xxhash
from sklearn.model_selection import StratifiedShuffleSplit

from trainwise.data.sources import DataError

# A splitter gets labels (N,), group codes (N,) int64 or None, the number of validation
# samples wanted, and a seeded Generator; it returns the validation row indices.
Splitter = Callable[[np.ndarray, "np.ndarray | None", int, np.random.Generator], np.ndarray]
SPLITTERS: dict[str, Splitter] = {}
GROUPED = ("group", "stratified_group")
STRATIFIED = ("stratified", "stratified_group")
BLOCK = 256  # groups evaluated per vectorised step of the greedy pass
MAX_MOVES = 200  # local-search steps after the greedy pick; each step is one vectorised pass
MAX_SWAP_SIZE = 2_000_000  # val groups x train groups x classes: above it, no swaps


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

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val)}


@register("random")
def random_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                 rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(len(y))[:num_val]


@register("stratified")
def stratified_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                     rng: np.random.Generator) -> np.ndarray:
    # sklearn rounds per-class counts so the total is exact and shares are within one sample
    seed = int(rng.integers(2**31 - 1))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=num_val, random_state=seed)
    _, val = next(splitter.split(np.zeros((len(y), 1)), y))
    return val


def _cost(val_counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """L1 distance of val class counts (..., K) to the target, plus the size error again, so
    the total size counts twice as much as how it spreads over classes."""
    size_error = np.abs(val_counts.sum(axis=-1) - target.sum())
    return np.abs(val_counts - target).sum(axis=-1) + size_error


def _greedy_groups(counts: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A first pick of groups (rows of counts, (G, K)): visit groups in a seeded random order
    and take one when it brings the val counts closer to the target (K,) without overshooting
    any class by more than 1% of the val size. Without that limit a large one-class group
    taken early is a local minimum no later single move can undo."""
    order = rng.permutation(len(counts))
    cumulative = np.cumsum(counts[order], axis=0)  # (G, K)
    # a prefix that stays under the target in every class is what the loop would take anyway
    prefix = int(np.all(cumulative <= target, axis=1).sum())
    taken = np.zeros(len(counts), dtype=bool)
    taken[order[:prefix]] = True
    current = cumulative[prefix - 1] if prefix else np.zeros(counts.shape[1], dtype=np.int64)
    ceiling = target + max(1.0, 0.01 * target.sum())
    rest = order[prefix:]
    # room only shrinks as groups are taken, so a group that does not fit now never will
    rest = rest[np.all(counts[rest] <= ceiling - current, axis=1)]
    position = 0
    while position < len(rest):  # the sequential greedy, evaluated a block at a time
        block = rest[position:position + BLOCK]
        after = current + counts[block]  # (B, K) val counts if each group were taken next
        fits = (_cost(after, target) < _cost(current, target)) & np.all(after <= ceiling, axis=1)
        if not fits.any():
            position += len(block)
            continue
        first = int(np.argmax(fits))
        taken[block[first]], current = True, after[first]
        position += first + 1
    return taken


def _best_swap(counts: np.ndarray, target: np.ndarray, taken: np.ndarray,
               current: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and move of the best exchange of one val group with one train group."""
    inside, outside = np.flatnonzero(taken), np.flatnonzero(~taken)
    size = len(inside) * len(outside) * counts.shape[1]
    if size == 0 or size > MAX_SWAP_SIZE:  # with very many groups, toggles suffice
        return np.inf, np.array([], dtype=np.int64)
    moved = current - counts[inside][:, None, :] + counts[outside][None, :, :]  # (I, O, K)
    costs = _cost(moved, target)
    i, o = np.unravel_index(np.argmin(costs), costs.shape)
    return float(costs[i, o]), np.array([inside[i], outside[o]])


def _improve(counts: np.ndarray, target: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Local search from the greedy pick: apply the best single move (one group in or out) or
    swap while it lowers the cost. On a few dozen unevenly sized groups the greedy pass can
    stop several points off in some class; these moves usually close that to under 2 points."""
    for _ in range(MAX_MOVES):
        current = counts[taken].sum(axis=0)
        sign = np.where(taken, -1, 1)[:, None]
        toggle_costs = _cost(current + sign * counts, target)  # (G,)
        toggle = int(np.argmin(toggle_costs))
        swap_cost, swap = _best_swap(counts, target, taken, current)
        best = min(float(toggle_costs[toggle]), swap_cost)
        if best >= _cost(current, target):
            break
        flip = np.array([toggle]) if best == toggle_costs[toggle] else swap
        trial = taken.copy()
        trial[flip] = ~trial[flip]
        if not trial.any() or trial.all():
            break
        taken = trial
    return taken


def _pick_groups(counts: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Groups (rows of counts, (G, K)) whose summed counts come closest to target (K,).

    Hand-written because GroupShuffleSplit sizes groups, not samples, and StratifiedGroupKFold
    only offers 1/k fractions (and its shuffle was broken before scikit-learn 1.8). With K
    classes, matching per-class counts hits the size and the class shares together.
    """
    taken = _improve(counts, target, _greedy_groups(counts, target, rng))
    sizes = counts.sum(axis=1)
    if not taken.any():  # every group alone overshoots: the smallest one keeps val non-empty
        taken[np.argmin(sizes)] = True
    if taken.all():  # keep train non-empty too
        taken[np.argmin(sizes)] = False
    return np.flatnonzero(taken)


def _grouped_split(labels: np.ndarray, groups: np.ndarray, num_val: int,
                   rng: np.random.Generator) -> np.ndarray:
    num_groups, num_labels = int(groups.max()) + 1, int(labels.max()) + 1
    counts = np.bincount(groups * num_labels + labels, minlength=num_groups * num_labels)
    counts = counts.reshape(num_groups, num_labels)  # (G, K) samples of each label per group
    target = counts.sum(axis=0) * (num_val / len(labels))
    return np.flatnonzero(np.isin(groups, _pick_groups(counts, target, rng)))


@register("group")
def group_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                rng: np.random.Generator) -> np.ndarray:
    assert groups is not None  # split_indices refuses group strategies without groups
    return _grouped_split(np.zeros(len(y), dtype=np.int64), groups, num_val, rng)


@register("stratified_group")
def stratified_group_split(y: np.ndarray, groups: np.ndarray | None, num_val: int,
                           rng: np.random.Generator) -> np.ndarray:
    assert groups is not None
    return _grouped_split(pd.factorize(y, sort=True)[0], groups, num_val, rng)


def _can_stratify(y: np.ndarray, num_val: int) -> bool:
    """StratifiedShuffleSplit needs 2+ samples per class and room for each class on both sides."""
    counts = np.unique(y, return_counts=True)[1]
    return counts.min() >= 2 and min(num_val, len(y) - num_val) >= len(counts)


def _resolve(strategy: str, task: str, has_groups: bool, y: np.ndarray, num_val: int) -> str:
    if strategy == "auto":
        classify = task == "classification"
        if has_groups:
            return "stratified_group" if classify else "group"
        return "stratified" if classify and _can_stratify(y, num_val) else "random"
    if strategy not in SPLITTERS:
        raise DataError(f"unknown split strategy '{strategy}'. Use 'auto' or one of "
                        f"{sorted(SPLITTERS)}.")
    if has_groups and strategy not in GROUPED:
        raise DataError(f"split strategy '{strategy}' ignores the declared group column: rows "
                        "of one group would land in both parts, a leak that inflates the "
                        "validation score. Use 'group', 'stratified_group' or 'auto', or remove "
                        "split.group_column if rows are truly independent.")
    if strategy in GROUPED and not has_groups:
        raise DataError(f"split strategy '{strategy}' needs a group key per row. Set "
                        "split.group_column, or use 'stratified' / 'random'.")
    if strategy in STRATIFIED and task != "classification":
        raise DataError(f"split strategy '{strategy}' needs class labels, but the task is "
                        f"{task}. Use 'random' (or 'group' with a group column).")
    if strategy == "stratified" and not _can_stratify(y, num_val):
        raise DataError("a stratified split needs at least 2 samples per class and a validation "
                        "part that can hold every class. Drop or merge rare classes, raise "
                        "val_fraction, or use split.strategy = \"random\".")
    return strategy


def _group_codes(groups: np.ndarray, num_rows: int) -> np.ndarray:
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != num_rows:
        raise DataError(f"{len(groups)} group keys for {num_rows} rows; give one key per row.")
    codes, uniques = pd.factorize(groups, sort=True)  # sorted: codes don't depend on row order
    if (codes < 0).any():
        raise DataError(f"{int((codes < 0).sum())} rows have no group key (empty/NaN). Fill "
                        "them (e.g. one new key per row) or drop those rows.")
    if len(uniques) < 2:
        raise DataError(f"only {len(uniques)} group in the group column: a group split needs at "
                        "least 2 groups. Check split.group_column.")
    return codes.astype(np.int64)


def _check_sizes(num_rows: int, val_fraction: float) -> int:
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction is {val_fraction}; it must lie strictly between 0 and 1 "
                        "(e.g. 0.1 or 0.2).")
    if num_rows < 2:
        raise DataError(f"{num_rows} rows cannot be split into two non-empty parts; "
                        "give at least 2 (in practice hundreds).")
    return min(max(round(num_rows * val_fraction), 1), num_rows - 1)


def _finish(val: np.ndarray, num_rows: int, strategy: str) -> SplitIndices:
    mask = np.zeros(num_rows, dtype=bool)
    mask[val] = True
    train, val = np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)
    if len(train) == 0 or len(val) == 0:  # a bug guard: every splitter should prevent this
        raise DataError(f"the {strategy} split produced an empty part; report this as a bug.")
    digest = xxhash.xxh64(train.tobytes())
    digest.update(b"|" + val.tobytes())
    return SplitIndices(train, val, strategy, digest.hexdigest())


def split_indices(y: np.ndarray, *, val_fraction: float, groups: np.ndarray | None = None,
                  strategy: str = "auto", seed: int = 0,
                  task: str = "classification") -> SplitIndices:
    """Split rows 0..N-1 into train and val, val holding ~val_fraction of the SAMPLES.

    "auto" picks stratified_group / group when groups are given, else stratified
    (classification, when every class has 2+ samples) or random. The same seed gives the
    same split; no global random state is read or changed.
    """
    y = np.asarray(y).reshape(-1)
    num_val = _check_sizes(len(y), val_fraction)
    codes = None if groups is None else _group_codes(groups, len(y))
    strategy = _resolve(strategy, task, codes is not None, y, num_val)
    val = SPLITTERS[strategy](y, codes, num_val, np.random.default_rng(seed))
    return _finish(val, len(y), strategy)


def split_test(y: np.ndarray, *, test_fraction: float, groups: np.ndarray | None = None,
               strategy: str = "auto", seed: int = 0,
               task: str = "classification") -> SplitIndices:
    """Carve a held-out test part from a pool that has none: `.train` is the part left for
    train+val, `.val` is the TEST part. Same rules as split_indices; the seed is offset so the
    test cut and the later val cut do not reuse one random stream."""
    return split_indices(y, val_fraction=test_fraction, groups=groups, strategy=strategy,
                         seed=seed + 1_000_003, task=task)
