"""Columns that hold the target of another row (label_leak's future values and lags): values[t]
equals y[t + k] for one k, in time order within each series. k > 0: a future value (a leak);
k < 0: a lag, known when predicting. Pure."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MAX_SHIFT_ROWS = 100_000  # rows searched for a future value
SHIFT_SHARE = 0.8  # rows whose value is exactly the target of the row k steps away; below
# 1 because a shift within each series misses at each series' edge (40 series of 10: 10%)
NUM_VOTERS = 200  # rows sampled to propose shifts: the true k gets ~all their votes
MAX_TIES = 50  # a value shared by more targets proposes 50+ shifts, one of them right
NUM_CANDIDATES = 3  # most-voted shifts checked on every row


def _nearest(ranked: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions in sorted `ranked` of the entries nearest to each of `values`."""
    above = np.clip(np.searchsorted(ranked, values), 0, len(ranked) - 1)
    below = np.maximum(above - 1, 0)  # a float32 target may round either side of the value
    return np.where(np.abs(ranked[below] - values) < np.abs(ranked[above] - values),
                    below, above)


def _matches(ranked: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value, the [low, high) range of sorted `ranked` entries equal to it (within float32
    rounding: a float32 target may round either side of the value)."""
    by_key = np.argsort(values, kind="stable")  # sorted keys search ~10x faster (100k rows:
    keys = values[by_key]  # 6 ms, against 60 ms in file order, cache misses)
    tolerance = 1e-6 * np.abs(keys) + 1e-12
    low, high = np.empty(len(values), np.int64), np.empty(len(values), np.int64)
    low[by_key] = np.searchsorted(ranked, keys - tolerance, "left")
    high[by_key] = np.searchsorted(ranked, keys + tolerance, "right")
    return low, high


def _candidates(low: np.ndarray, high: np.ndarray, by_value: np.ndarray) -> list[int]:
    """The k that most sampled rows t vote for (a row s with y[s] == values[t] votes s - t),
    at most NUM_CANDIDATES; rows whose value more than MAX_TIES targets share carry no vote
    (a 0 of a count target names no row)."""
    ties = high - low
    sampled = np.flatnonzero((ties > 0) & (ties <= MAX_TIES))
    sampled = sampled[:: max(1, len(sampled) // NUM_VOTERS)]
    if not len(sampled):
        return []
    votes = np.concatenate([by_value[low[t]:high[t]] - t for t in sampled])
    steps, counts = np.unique(votes, return_counts=True)
    keep = counts >= SHIFT_SHARE / 2 * len(sampled)
    return steps[keep][np.argsort(-counts[keep])][:NUM_CANDIDATES].tolist()


def _match_share(values: np.ndarray, y: np.ndarray, k: int) -> float:
    """Share of all rows t with values[t] == y[t + k] (rows past the end count as misses)."""
    a, b = (values[:len(y) - k], y[k:]) if k >= 0 else (values[-k:], y[:k])
    return float(np.isclose(a, b, rtol=1e-6, atol=1e-12).sum() / len(y))


def target_shift(values: np.ndarray, y: np.ndarray, by_value: np.ndarray) -> int | None:
    """k when values[t] equals y[t + k] for >= SHIFT_SHARE of the rows t (rows in time
    order, `by_value` = argsort(y)) and far above chance; None when no single k does.

    Chance: a target with ties (sales in cents, 61% distinct over 8.7k rows; unit counts)
    matches some other row often, so the share is read against the share a random row would
    match, sum over t of (rows with y == values[t]) / n (audit s13 F6: such targets were
    skipped, and a next-day sales column passed)."""
    ranked = y[by_value]
    probe = values[:: max(1, len(values) // 1000)]  # most columns fail on 1000 rows: 1 ms,
    if np.isclose(ranked[_nearest(ranked, probe)], probe, rtol=1e-6).mean() < SHIFT_SHARE / 2:
        return None  # where matching all 100k rows takes ~35 ms per column (measured)
    low, high = _matches(ranked, values)
    chance = float((high - low).mean() / len(y))
    if (high > low).mean() < SHIFT_SHARE:
        return None
    for k in _candidates(low, high, by_value):
        share = _match_share(values, y, k)
        if share >= SHIFT_SHARE and (share - chance) / (1 - chance) >= SHIFT_SHARE:
            return k  # candidates come most voted first: the true shift before a chance one
    return None


def column_shifts(columns: Mapping[str, np.ndarray], y: np.ndarray, task: str,
            order: np.ndarray) -> dict[str, int]:
    """Columns that are the target of another row: {name: k}, k rows later (in `order`)."""
    if task != "regression":
        return {}
    order = order[:MAX_SHIFT_ROWS]  # a run of consecutive rows keeps every shift but its edge
    ordered = y[order]
    by_value = np.argsort(ordered, kind="stable")
    found = {name: target_shift(np.asarray(values, np.float64)[order], ordered, by_value)
             for name, values in columns.items()}
    return {name: k for name, k in found.items() if k is not None}
