"""Rows that are a time series although no time column is set (audit s13 F2): a column equal to
the target of the row before (a lag: today's sales beside tomorrow's target) proves the rows
follow one another in time. Split at random, a test row's target then sits in a training row's
inputs (the next day of the same store) and the scores see the future; a split by time would
not. label_leak finds the lags; this module words the warning and guesses which columns hold
the time and the series. Pure."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trainwise.findings import Finding, warning

TIME_RISE = 0.9  # a time column rises from one row to the next in >= 90% of rows: a day
# number restarts once per series (12 stores x 728 days: rises at 99.9% of steps)
KEY_CHANGES = 0.05  # a series key changes between neighbouring rows in <= 5% of them
# (12 stores over 8.7k rows: 0.1%); a promo flag or a weekday changes far more often
MAX_NAMED = 3


def series_columns(columns: Mapping[str, np.ndarray], order: np.ndarray,
                   skip: set[str]) -> tuple[list[str], list[str]]:
    """(columns that look like a time, columns that look like a series key) along `order`."""
    times, keys = [], []
    for name, values in columns.items():
        ordered = np.asarray(values, np.float64)[order]
        step = np.diff(ordered)
        step = step[np.isfinite(step)]
        if name in skip or not len(step) or np.all(step == 0):
            continue
        if (step > 0).mean() >= TIME_RISE:
            times.append(name)
        elif (step != 0).mean() <= KEY_CHANGES:
            keys.append(name)
    return times[:MAX_NAMED], keys[:MAX_NAMED]


def _guess(names: list[str], what: str) -> str:
    return f"{what} (perhaps {' or '.join(repr(n) for n in names)})" if names else what


def lag_series_findings(columns: Mapping[str, np.ndarray], lags: dict[str, int],
                        target: str, order: np.ndarray, grouped: bool,
                        arrays: bool = False) -> list[Finding]:
    """The series_without_time warning when some column is a lag of the target (`lags`:
    {column: k < 0}, from label_leak.leaks_and_lags) while no time column is set; `grouped`:
    a split.group_column is set (then only the time is asked for); `arrays`: the rows are
    arrays (.npz, in memory), whose time comes as a `times` array, not a column."""
    if not lags:
        return []
    said = "; ".join(f"'{name}' equals {target} {-k} row{'s' * (k != -1)} earlier"
                     for name, k in list(lags.items())[:MAX_NAMED])
    more = f"; {len(lags) - MAX_NAMED} more columns alike" if len(lags) > MAX_NAMED else ""
    times, keys = ([], []) if arrays else series_columns(columns, order, set(lags))
    leak = ("The held-out series cover the same days as the training ones, so the scores "
            "measure no forecast of later days." if grouped else
            "A random split leaks the future: a test row's target is an input of the "
            "training row that follows it, and the scores will look better than any "
            "forecast can be.")
    return [warning(
        "data", "series_without_time",
        f"The rows look like a time series: {said}{more} (each a lag: the target of an "
        f"earlier row), yet no time column is set, so the split ignores time order. {leak}",
        _array_fix(grouped) if arrays else _column_fix(times, keys, grouped),
        lags=dict(lags), time_candidates=times, key_candidates=[] if grouped else keys)]


def _column_fix(times: list[str], keys: list[str], grouped: bool) -> str:
    keys_text = "" if grouped else (
        f", and split.group_column to {_guess(keys, 'the series key')} when several series "
        "share the file")
    return (f"Set split.time_column to {_guess(times, 'the column that holds the time')}: a "
            f"date, or a day or period number{keys_text}; then rerun (e.g. --set "
            f"split.time_column='\"{times[0] if times else 'day'}\"'). If the rows are not in "
            "time order, nothing to do.")


def _array_fix(grouped: bool) -> str:
    """Arrays have no named columns (x0, x1, ... are positions) and split.time_column reads
    tables only (review s13 VD6): the time comes as a `times` array. split.strategy = "time"
    alone is refused ("needs a time per row"), so rows already in time order need their
    positions saved as times."""
    groups = "" if grouped else (" (and a `groups` array, one series id per row, when several "
                                 "series share the file)")
    return (f"Save a `times` array, one time per row{groups}, in the .npz beside x and y, or "
            "pass times= (and groups=) to trainwise.array_data or trainwise.split; rows already in "
            "time order can use their positions: times = np.arange(len(y)). Then rerun. If "
            "the rows are not in time order, nothing to do.")
