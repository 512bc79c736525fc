"""Features that give the target away: one column that predicts it almost perfectly on its
own (a copy of the label, a value recorded after the outcome), or one that holds the target
of a later row (next month's value in a series).

Such a column makes every score a lie: patients_leak.csv (an `outcome_flag` equal to the label)
trained to validation loss 0 and 100% test accuracy, reported as healthy. The test part cannot
catch it, since it holds the same column. Only the data can: a model with one input should not
know the answer.

The score of one column is how well it predicts the target alone, out of sample: the idea of
the predictive power score (deepchecks' Feature-Label Correlation), here by nearest neighbour
in that column, left out one row at a time, on at most MAX_ROWS rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainwise.data.lag_series import lag_series_findings
from trainwise.findings import Finding, warning

MAX_ROWS = 5000  # rows scored: enough for a score near 1 to mean it
MAX_SHIFT_ROWS = 100_000  # rows searched for a future value
MIN_ROWS = 20  # fewer rows: a perfect score can be chance
MAX_COLUMNS = 2000  # wider inputs (pixels, long sequences) are not scored: ~1 s per 2000
CHUNK = 256  # columns scored at once: (5000, 256) float64 arrays are 10 MB each
LEAK_SCORE = {"classification": 0.99, "regression": 0.995}  # balanced accuracy, R^2 of one
# column alone. Honest sets score far below: best column of breast_cancer 0.88, wine 0.73,
# digits 0.20, mnist1d 0.13, churn.csv 0.57 (balanced accuracy); the trending series score
# high, R^2 0.973 for macro.csv's lag1 (exempt anyway as a lag, below) and 0.987 for the
# yearly means of macro_year.csv; a copy of the target plus noise of 5% of its spread: 0.995
STANDOUT_SCORE = 0.9  # a classifier's column this good alone, and STANDOUT_MARGIN above the
STANDOUT_MARGIN = 0.05  # next best, is a possible leak: iris's best two score 0.920 and
# 0.907 (two honest petal sizes), breast_cancer's 0.876, wine's 0.707, digits' 0.197
SHIFT_SHARE = 0.8  # rows whose value is exactly the target of the row k steps away; below
# 1 because a shift within each series misses at each series' edge (40 series of 10: 10%)
NUM_VOTERS = 200  # rows sampled to propose shifts: the true k gets ~all their votes
MAX_TIES = 50  # a value shared by more targets proposes 50+ shifts, one of them right
NUM_CANDIDATES = 3  # most-voted shifts checked on every row
MAX_SHOWN = 5


@dataclass
class Leak:
    column: str
    score: float  # leave-one-out balanced accuracy or R^2 of the column alone
    shift: int | None  # k: the column is the target k rows later (in time order); 0: a copy
    next_best: float | None = None  # a possible leak: under LEAK_SCORE, far above this
    # score of every other column (_standout)


def _neighbour_scores(x: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """(n, D) columns, (n,) targets -> (D,) leave-one-out score of predicting each row's
    target by the row nearest in that one column: balanced accuracy, or R^2.

    Nearest-neighbour in 1-D is a sort, so all columns are scored in one vectorised pass
    (sklearn fits one model per column: a small tree took ~20 ms, 3 s for digits' 64
    columns). It is ~1 when the column determines the target through any function, coded
    in any order (a label copy, 2*y+1, text levels one per class), and low for an id (no
    row shares its value) or a column that merely correlates: its neighbour's target
    carries that row's noise twice."""
    finite = np.isfinite(x)
    low = np.where(finite, x, np.inf).min(axis=0)
    high = np.where(finite, x, -np.inf).max(axis=0)
    far = np.where(np.isfinite(high), high + (high - low) + 1.0, 0.0)  # missing: one far value
    x = np.where(finite, x, far)
    # ties (a binary column) are broken at random, not by file order, where a sorted file
    # would make the neighbour the next row in time and its target the nearest one
    shuffle = np.random.default_rng(0).permutation(len(x))
    order = shuffle[np.argsort(x[shuffle], axis=0, kind="stable")]  # (n, D) row numbers
    values, truth = np.take_along_axis(x, order, axis=0), y[order]  # (n, D) each
    gap = np.diff(values, axis=0)  # (n - 1, D)
    left = np.vstack([np.full((1, x.shape[1]), np.inf), gap])  # distance to the row before
    right = np.vstack([gap, np.full((1, x.shape[1]), np.inf)])
    before = np.vstack([truth[1:2], truth[:-1]])  # the first row has no row before
    after = np.vstack([truth[1:], truth[-2:-1]])
    guess = np.where(left <= right, before, after)
    if task == "regression":
        spread = ((y - y.mean()) ** 2).sum()
        return 1.0 - ((guess - truth) ** 2).sum(axis=0) / spread
    recalls = [((guess == truth) & (truth == c)).sum(axis=0) / (y == c).sum()
               for c in np.unique(y)]
    return np.mean(recalls, axis=0)


def _nearest(ranked: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions in sorted `ranked` of the entries nearest to each of `values`."""
    above = np.clip(np.searchsorted(ranked, values), 0, len(ranked) - 1)
    below = np.maximum(above - 1, 0)  # a float32 target may round either side of the value
    return np.where(np.abs(ranked[below] - values) < np.abs(ranked[above] - values),
                    below, above)


def _matches(ranked: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value, the [low, high) range of sorted `ranked` entries equal to it (within float32
    rounding: a float32 target may round either side of the value)."""
    tolerance = 1e-6 * np.abs(values) + 1e-12
    return (np.searchsorted(ranked, values - tolerance, "left"),
            np.searchsorted(ranked, values + tolerance, "right"))


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
        return None  # where searching all 100k rows' values takes ~90 ms per column
    low, high = _matches(ranked, values)
    chance = float((high - low).mean() / len(y))
    if (high > low).mean() < SHIFT_SHARE:
        return None
    for k in _candidates(low, high, by_value):
        share = _match_share(values, y, k)
        if share >= SHIFT_SHARE and (share - chance) / (1 - chance) >= SHIFT_SHARE:
            return k  # candidates come most voted first: the true shift before a chance one
    return None


def _shifts(columns: Mapping[str, np.ndarray], y: np.ndarray, task: str,
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


def _rows(n: int) -> np.ndarray:
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_ROWS, replace=False))


def find_leaks(columns: Mapping[str, np.ndarray], y: np.ndarray, task: str,
               order: np.ndarray | None = None) -> list[Leak]:
    """Columns (numbers: values, text: integer codes; one per row) that predict `y` (class
    codes, or numbers) almost perfectly alone, or hold a later row's target.

    `order`: row positions in time order, within each series (default: file order). A column
    that is the target of an earlier row is a lag, known at prediction time: never flagged."""
    return leaks_and_lags(columns, y, task, order)[0]


def leaks_and_lags(columns: Mapping[str, np.ndarray], y: np.ndarray, task: str,
                   order: np.ndarray | None = None) -> tuple[list[Leak], dict[str, int]]:
    """find_leaks, and the lags it exempts: {column: k < 0}, the target k rows earlier."""
    y = np.asarray(y).reshape(-1)
    y = y.astype(np.int64) if task == "classification" else y.astype(np.float64)
    names = list(columns)
    if not names or len(names) > MAX_COLUMNS or len(y) < MIN_ROWS \
            or not np.isfinite(y).all() or len(np.unique(y)) < 2:
        return [], {}
    shifts = _shifts(columns, y, task, np.arange(len(y)) if order is None else order)
    leaks = [Leak(name, 1.0, k) for name, k in shifts.items() if k >= 0]  # 0: a copy
    rows, scores = _rows(len(y)), {}
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        x = np.column_stack([np.asarray(columns[n], np.float64)[rows] for n in chunk])
        # a lag (k < 0), the target of an earlier row, is known when predicting
        scores.update({n: float(v) for n, v in zip(
            chunk, _neighbour_scores(x, y[rows], task), strict=True) if n not in shifts})
    leaks += [Leak(n, v, None) for n, v in scores.items() if v >= LEAK_SCORE[task]]
    leaks += _standout(scores, task)
    return leaks, {name: k for name, k in shifts.items() if k < 0}


def _standout(scores: dict[str, float], task: str) -> list[Leak]:
    """A classifier's column under LEAK_SCORE that still scores >= STANDOUT_SCORE and
    STANDOUT_MARGIN above every other column: a label recorded after the fact with a few %
    of noise (audit s13 P4: 97% equal to the label, 0.944, next best 0.861) passed the
    absolute bar. Not for regression: a trending series' honest yearly mean scores 0.987."""
    honest = sorted(((v, n) for n, v in scores.items() if v < LEAK_SCORE[task]),
                    reverse=True)
    if task != "classification" or len(honest) < 2:
        return []
    (best, name), (second, _) = honest[:2]
    if best >= STANDOUT_SCORE and best >= second + STANDOUT_MARGIN:
        return [Leak(name, best, None, next_best=second)]
    return []


def row_order(n: int, times: np.ndarray | None = None, groups: np.ndarray | None = None
              ) -> np.ndarray:
    """(n,) row positions by series, then time, then file position (each key when given)."""
    keys = [np.arange(n)]
    if times is not None:
        keys.append(np.asarray(times))
    if groups is not None:
        keys.append(pd.factorize(pd.Series(groups, dtype=object))[0])
    return np.lexsort(keys)  # the last key sorts first


def table_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Feature columns as numbers: values, dates as nanoseconds, text as integer codes."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            values = column.to_numpy("datetime64[ns]")
            columns[str(name)] = np.where(np.isnat(values), np.nan, values.astype(np.int64))
        elif pd.api.types.is_numeric_dtype(column) and column.dtype.kind != "b":
            columns[str(name)] = column.to_numpy(np.float64, na_value=np.nan)
        else:
            columns[str(name)] = pd.factorize(column)[0].astype(np.float64)  # NaN: code -1
    return columns


def leak_findings(columns: Mapping[str, np.ndarray], y: np.ndarray, task: str,
                  target: str = "the target", times: np.ndarray | None = None,
                  groups: np.ndarray | None = None, order: np.ndarray | None = None
                  ) -> list[Finding]:
    """The target_leak warning for `columns` (see find_leaks), or none; and, with no time
    column, series_without_time when a column is a lag of the target (lag_series.py).
    `order`: row_order of (times, groups) when the caller has it already."""
    order = row_order(len(y), times, groups) if order is None else order
    leaks, lags = leaks_and_lags(columns, y, task, order)
    findings = [] if times is not None else lag_series_findings(
        columns, lags, target, order, groups is not None)
    return findings + ([_leak_warning(leaks, task, target, times is not None)] if leaks
                       else [])


def _said(leak: Leak, metric: str, target: str, later: str) -> str:
    if leak.shift:
        return (f"'{leak.column}' equals {target} {leak.shift} row"
                f"{'s' if leak.shift > 1 else ''} {later} (a future value)")
    said = f"'{leak.column}' alone predicts {target} with {metric} {leak.score:.3f}"
    return said if leak.next_best is None else (
        f"{said}, far above every other column (next best {leak.next_best:.3f}): possibly "
        "a leak, check that it is known at prediction time")


def _leak_warning(leaks: list[Leak], task: str, target: str, timed: bool) -> Finding:
    metric = "balanced accuracy" if task == "classification" else "R^2"
    later = "later in time" if timed else "further down the file"
    said = [_said(leak, metric, target, later) for leak in leaks[:MAX_SHOWN]]
    more = f" (and {len(leaks) - MAX_SHOWN} more)" if len(leaks) > MAX_SHOWN else ""
    return warning(
        "data", "target_leak",
        f"{'; '.join(said)}{more}. One input that gives the answer away is almost always a "
        "leak: a copy or recoding of the label, a value recorded after the outcome (a few % "
        "of noise keep it under a perfect score), or a future value. The model would score "
        "near-perfectly here, the test part included, and fail where the column is not "
        "known.",
        "If the column is truly known when a prediction is made, nothing to do. Otherwise "
        "delete it from the data (df.drop(columns=[...]).to_csv(path, index=False)) and "
        "rerun from the data stage.",
        columns=[leak.column for leak in leaks],
        scores={leak.column: round(leak.score, 4) for leak in leaks},
        shifts={leak.column: leak.shift for leak in leaks if leak.shift},
        possible=[leak.column for leak in leaks if leak.next_best is not None])
