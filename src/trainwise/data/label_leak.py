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
from trainwise.data.target_shift import column_shifts
from trainwise.findings import Finding, warning

MAX_ROWS = 5000  # rows scored: enough for a score near 1 to mean it
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
MAX_SHOWN = 5
REPEAT_SHARE = 0.5  # more than half the columns (and >= REPEAT_MIN) each "leak" alone: the
REPEAT_MIN = 3  # rows repeat (a copy is its own neighbour at distance 0), not a leak per
# column: audit s15 B7, table.csv's 12 honest features written 3 times all scored 1.000
# the config key that keeps copies in one part (review s15 VE4: the fix said
# data.group_column, an unknown key; test_label_leak checks it against SplitConfig)
GROUP_KEY = "split.group_column"
HASH_STEP = np.uint64(0x100000001B3)  # FNV prime: folds one column's hashes into the row's


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


def _column_scores(x: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """_neighbour_scores; for a regression the better of the R^2 on the target and on its
    ranks. In target units a few outliers rule the R^2 (audit s14 R1): billed_twice = 2*cost
    + noise scored 0.831 on insurance.csv's cost (3 rows x60), 0.9987 without those 3 rows,
    and was never flagged; on the ranks it scores 1.000 while the honest columns stay at
    -0.7..0.25. A rank R^2 over LEAK_SCORE needs the column's order to follow the target's
    within ~0.1% of the rows: a function of the target, not a correlate."""
    scores = _neighbour_scores(x, y, task)
    if task != "regression":
        return scores
    ranks = pd.Series(y).rank().to_numpy()  # ties share their mean rank
    return np.maximum(scores, _neighbour_scores(x, ranks, task))


def _rows(n: int) -> np.ndarray:
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_ROWS, replace=False))


def _distinct(columns: Mapping[str, np.ndarray], y: np.ndarray, rows: np.ndarray
              ) -> np.ndarray:
    """`rows` less those whose inputs and target repeat an earlier one of `rows`: a row's
    exact copy is its nearest neighbour at distance 0 in every column, so each honest column
    would score 1.0 (audit s15 B7/M3). Deduplicating the scored rows is enough: no row left
    has a copy among them. (n,) hashes, one pass per column: (5000,) arrays, not (n, D)."""
    digest = pd.util.hash_array(y[rows])
    for values in columns.values():
        digest = digest * HASH_STEP ^ pd.util.hash_array(  # uint64 wraps around, as meant
            np.asarray(values, np.float64)[rows])
    first = np.unique(digest, return_index=True)[1]
    return rows[np.sort(first)]


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
    shifts = column_shifts(columns, y, task, np.arange(len(y)) if order is None else order)
    leaks = [Leak(name, 1.0, k) for name, k in shifts.items() if k >= 0]  # 0: a copy
    rows, scores = _distinct(columns, y, _rows(len(y))), {}
    if len(rows) < MIN_ROWS or len(np.unique(y[rows])) < 2:
        return leaks, {name: k for name, k in shifts.items() if k < 0}
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        x = np.column_stack([np.asarray(columns[n], np.float64)[rows] for n in chunk])
        # a lag (k < 0), the target of an earlier row, is known when predicting
        scores.update({n: float(v) for n, v in zip(
            chunk, _column_scores(x, y[rows], task), strict=True) if n not in shifts})
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
                  groups: np.ndarray | None = None, order: np.ndarray | None = None,
                  arrays: bool = False) -> list[Finding]:
    """The target_leak warning for `columns` (see find_leaks), or none; and, with no time
    column, series_without_time when a column is a lag of the target (lag_series.py).
    `order`: row_order of (times, groups) when the caller has it already; `arrays`: the
    columns are an array's positions (the fix then asks for a `times` array)."""
    order = row_order(len(y), times, groups) if order is None else order
    leaks, lags = leaks_and_lags(columns, y, task, order)
    findings = [] if times is not None else lag_series_findings(
        columns, lags, target, order, groups is not None, arrays)
    alone = [leak for leak in leaks if leak.shift is None and leak.next_best is None]
    copied = [leak for leak in alone if _copied(columns[leak.column])]
    if len(alone) >= REPEAT_MIN and len(alone) > REPEAT_SHARE * len(columns) \
            and len(copied) > REPEAT_SHARE * len(alone):
        # a column with few values (a label's recoding) leaks by itself, copies or not: it
        # keeps its own warning (review s15 VE2: it was told "do not delete")
        findings = [*findings, _repeat_warning(copied, len(columns), target)]
        leaks = [leak for leak in leaks if leak not in copied]
    return findings + ([_leak_warning(leaks, task, target, times is not None)] if leaks
                       else [])


def _copied(column: np.ndarray) -> bool:
    """A many-valued column whose values mostly repeat: rows copied (each value 3 times in
    table.csv written 3 times), not a column that separates the classes on its own (its
    values are distinct, or few, as a label's recoding)."""
    values = np.asarray(column, np.float64)
    values = values[np.isfinite(values)]
    _, counts = np.unique(values, return_counts=True)
    return len(counts) >= 0.1 * len(values) and counts[counts > 1].sum() >= 0.5 * len(values)


def _repeat_warning(leaks: list[Leak], num_columns: int, target: str) -> Finding:
    """Most columns predict the target alone: rows that repeat with a small change (an id,
    a timestamp) are each other's neighbours; deleting the columns would delete the data."""
    return warning(
        "data", "target_leak",
        f"{len(leaks)} of {num_columns} columns each predict {target} almost perfectly alone "
        f"({', '.join(repr(leak.column) for leak in leaks[:MAX_SHOWN])}"
        f"{', ...' if len(leaks) > MAX_SHOWN else ''}). So many leaks at once are almost "
        "always rows that repeat: the same sample recorded several times, perhaps under a "
        "different id or timestamp, so each row's nearest neighbour in any column is its own "
        "copy. Copies split across train and test inflate the test score.",
        "Do not delete these columns. Find the repeated samples (df[df.duplicated(subset=[...],"
        " keep=False)] over the columns named here), keep one of each or give copies one "
        f"group ({GROUP_KEY} = a column that copies share) so they stay in one part, and "
        "rerun from the data stage.",
        columns=[leak.column for leak in leaks], scores={
            leak.column: round(leak.score, 4) for leak in leaks}, repeated_rows=True)


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
        "of noise keeps it short of a perfect score), or a future value. The model would score "
        "near-perfectly here, the test part included, and fail where the column is not "
        "known.",
        "If the column is truly known when a prediction is made, nothing to do. Otherwise "
        "delete it from the data (df.drop(columns=[...]).to_csv(path, index=False)) and "
        "rerun from the data stage.",
        columns=[leak.column for leak in leaks],
        scores={leak.column: round(leak.score, 4) for leak in leaks},
        shifts={leak.column: leak.shift for leak in leaks if leak.shift},
        possible=[leak.column for leak in leaks if leak.next_best is not None])
