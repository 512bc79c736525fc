"""Split by time: validation after training, a gap between them, per series when there are several,
or whole groups ordered by when each group starts (`whole_groups`).

TimeSeriesSplit counts row positions, assumes sorted rows and ignores series; here cuts are
times (a date, a duration such as "30D", or a share of each series' rows), rows sharing a
timestamp stay together, and a gap in time units separates the two sides.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainwise.data.errors import DataError
from trainwise.data.time_empty import Timeline, by_cut, by_fold, by_fraction, by_gap, raise_empty


@dataclass(frozen=True)
class TimeParts:
    train: np.ndarray  # row indices, sorted int64
    val: np.ndarray
    num_dropped: int  # rows inside the gap: in neither part, counted so nothing vanishes


def as_times(times: object) -> np.ndarray:
    """Times as one numpy array: numbers as given, dates as datetime64. numpy has no time
    zones, so np.asarray turns a tz-aware pandas Series into dtype object; such dates (and
    aware datetime objects) become naive UTC, as the table loader reads '+01:00' offsets."""
    if isinstance(getattr(times, "dtype", None), pd.DatetimeTZDtype):
        return pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None).to_numpy()
    array = np.asarray(times)
    if array.dtype == object and array.size and all(
            isinstance(v, datetime.datetime) for v in array.ravel()):
        parsed = pd.to_datetime(array.ravel(), utc=True).tz_localize(None)
        return parsed.to_numpy().reshape(array.shape)
    return array


def time_axis(times: np.ndarray) -> np.ndarray:
    """datetime64 -> int64 nanoseconds, numbers -> float64: one axis that spans subtract on."""
    times = as_times(times)
    if times.dtype.kind == "M":
        return times.astype("datetime64[ns]").astype(np.int64)
    if times.dtype.kind in "iuf":
        return times.astype(np.float64)
    raise DataError(f"times have dtype {times.dtype}; expected dates (datetime64, or pandas "
                    "datetimes: tz-aware ones are read in UTC) or numbers. Parse date text "
                    "first, e.g. pd.to_datetime(column, utc=True).")


def parse_span(value: str | float, times: np.ndarray, name: str = "split.gap") -> float:
    """A duration on the time axis: '2D', '6h', '1 days' for dates, a number for numeric times."""
    if value in ("", None, 0):
        return 0.0
    if np.asarray(times).dtype.kind == "M":
        try:
            return float(pd.Timedelta(str(value)).value)  # ns
        except ValueError:
            raise DataError(f"{name} = {value!r} is not a duration; write e.g. '7D', '12h' or "
                            "'30min' (pandas Timedelta units).") from None
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{name} = {value!r}: the times are numbers, so give a number in the "
                        "same units.") from None


def format_time(value: object, times: np.ndarray | None = None) -> str:
    """One time as every split message writes it: a date alone when it is midnight
    ('2020-05-23'), else date and time; whole numbers in full (epoch seconds: '1514764800',
    not '1.51476e+09', so a user can pick a cut from them), others to 6 digits. `value`: a
    datetime64, or a number on the axis of `times` (nanoseconds when they are dates)."""
    dated = times is not None and np.asarray(times).dtype.kind == "M"
    if isinstance(value, (np.datetime64, datetime.datetime)) or dated:
        stamp = pd.Timestamp(int(value) if isinstance(value, (int, float, np.number))
                             else value)  # type: ignore[arg-type]
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)
    number = float(value)  # type: ignore[arg-type]
    return f"{number:.0f}" if number == round(number) and abs(number) < 1e16 else f"{number:.6g}"


def _is_duration(value: object, times: np.ndarray) -> bool:
    """A cut on dates that is not a date ('2024-06...' or '6/1/2024'): a span such as '30D'."""
    dated = np.asarray(times).dtype.kind == "M"
    return dated and not re.match(r"^\d{4}-\d{2}|.*/", str(value).strip())


def _cut_values(value: object, times: np.ndarray, axis: np.ndarray,
                codes: np.ndarray) -> np.ndarray:
    """Per-row cut from split.cut: a date / number is one cut for all; a duration ('30D') is
    counted back from the end of each series."""
    dated = np.asarray(times).dtype.kind == "M"
    text = str(value).strip()
    if _is_duration(value, times):
        if not any(c.isalpha() for c in text):  # pandas would read a bare '30' as 30 ns
            raise DataError(f"split.cut = {value!r} needs a unit: '30D', '12h' (a duration "
                            "back from each series' end) or a date such as '2024-06-01'.")
        try:
            span = float(pd.Timedelta(text).value)
        except ValueError:
            raise DataError(f"split.cut = {value!r} is neither a date nor a duration; write "
                            "e.g. '2024-06-01' or '30D'.") from None
        ends = pd.Series(axis).groupby(codes).max().to_numpy()
        return ends[codes] - span
    try:
        cut = float(pd.Timestamp(text).value) if dated else float(text)
    except ValueError:
        if dated:
            raise DataError(f"split.cut = {value!r} is neither a date nor a duration; write "
                            "e.g. '2024-06-01' or '30D'.") from None
        raise DataError(_numeric_cut_advice(value, axis)) from None
    return np.full(len(axis), cut)


EPOCH_UNITS = {"seconds": 1e9, "milliseconds": 1e6}  # ns per unit of common numeric times


def _numeric_cut_advice(value: object, axis: np.ndarray) -> str:
    """Why a cut that is not a number fails on numeric times, with a cut in their units; a
    date is converted only as a hint, when it lands inside the times read as epoch seconds
    (or ms): the same numbers could be days or row numbers, so it is never applied silently."""
    low, high = float(axis.min()), float(axis.max())
    example = float(np.quantile(axis, 0.8, method="lower"))  # a time that leaves 20% after it
    advice = (f"split.cut = {value!r} is not a number, but the times are numbers (from "
              f"{format_time(low)} to {format_time(high)}), so the cut must be one in the same "
              f"units, e.g. '{format_time(example)}'; durations such as '30D' need dates.")
    try:
        date_ns = float(pd.Timestamp(str(value).strip()).value)
    except ValueError:
        return advice
    for unit, ns in EPOCH_UNITS.items():
        if low <= date_ns / ns <= high:
            return (f"{advice} If the times are {unit} since 1970-01-01 (UTC), {value!r} is "
                    f"'{date_ns / ns:.0f}'.")
    return advice


def _positions(axis: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row's place in its series' timeline, in [0, 1): (rank + u) / size, u one uniform
    draw per series. The offset makes short series contribute in proportion on average (a
    3-row series would otherwise always give 1 row of 3 to a 20% part: 33%, not 20%); rows
    sharing a timestamp take the rank of the first of them so they stay on one side."""
    order = np.lexsort((axis, codes))
    sorted_codes, sorted_axis = codes[order], axis[order]
    new_series = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    starts = np.flatnonzero(new_series)
    sizes = np.diff(np.r_[starts, len(order)])
    series_start = np.repeat(starts, sizes)
    tie_start = np.r_[True, (sorted_axis[1:] != sorted_axis[:-1]) | new_series[1:]]
    first_of_tie = np.maximum.accumulate(np.where(tie_start, np.arange(len(order)), 0))
    offset = rng.random(len(sizes))
    place = (first_of_tie - series_start + np.repeat(offset, sizes)) / np.repeat(sizes, sizes)
    positions = np.empty(len(order))
    positions[order] = place
    return positions


def _apply_gap(axis: np.ndarray, codes: np.ndarray, train: np.ndarray, val: np.ndarray,
               gap: float) -> tuple[np.ndarray, int]:
    """Drop training rows closer than `gap` before the first validation row of their series."""
    if gap <= 0 or not val.any():
        return train, 0
    first_val = pd.Series(axis[val]).groupby(codes[val]).min()
    cut = first_val.reindex(range(int(codes.max()) + 1)).to_numpy()  # NaN: series not in val
    near = train & (axis >= cut[codes] - gap)  # NaN comparisons are False: kept
    return train & ~near, int(near.sum())


def _parts(timeline: Timeline, train: np.ndarray, val: np.ndarray, gap: str | float,
           span: float, explain: Callable[[str], str]) -> TimeParts:
    """The two parts, or an error that says why one is empty: `explain(side)` names the cut,
    fraction or fold at fault; a gap that emptied training is named by itself."""
    kept, dropped = _apply_gap(timeline.axis, timeline.groups if not timeline.whole_groups
                               else np.zeros_like(timeline.groups), train, val, span)
    if train.any() and val.any() and not kept.any():
        raise_empty(timeline, "training", by_gap(timeline, int(train.sum()), gap))
    if not train.any() or not val.any():
        side = "training" if not train.any() else timeline.held_out
        raise_empty(timeline, side, explain(side))
    return TimeParts(np.flatnonzero(kept), np.flatnonzero(val), dropped)


def series_codes(series: np.ndarray | None, num_rows: int) -> np.ndarray:
    if series is None:
        return np.zeros(num_rows, dtype=np.int64)
    return pd.factorize(np.asarray(series), sort=True)[0].astype(np.int64)


def group_starts(axis: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each row's group's first time: the one time a whole-group split orders groups by, so
    every row of a group falls on the same side of any cut or gap."""
    first = pd.Series(axis).groupby(codes).min().to_numpy()  # codes are 0..G-1, all present
    return first[codes]


def _group_positions(starts: np.ndarray, codes: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Each row's place in [0, 1): the middle of its group's rows when groups are laid end to
    end by start time (ties in a seeded order), so val = groups past 1 - val_fraction holds
    ~val_fraction of the ROWS, and a group is never cut in two."""
    sizes = np.bincount(codes)
    first = np.zeros(len(sizes))
    first[codes] = starts
    order = np.lexsort((rng.permutation(len(sizes)), first))
    before = np.cumsum(sizes[order]) - sizes[order]
    middle = np.empty(len(sizes))
    middle[order] = (before + sizes[order] / 2) / len(codes)
    return middle[codes]


def _timeline(times: np.ndarray, series: np.ndarray | None, whole_groups: bool, seed: int,
              held_out: str = "validation") -> tuple[Timeline, np.ndarray]:
    """(timeline, positions) that cuts, gaps and folds act on. Whole groups: the axis is each
    group's start and the gap acts on one timeline, so the later-starting groups validate;
    otherwise each series has its own timeline."""
    axis, codes = time_axis(times), series_codes(series, len(times))
    rng = np.random.default_rng(seed)
    if whole_groups:
        axis = group_starts(axis, codes)
        positions = _group_positions(axis, codes, rng)
    else:
        positions = _positions(axis, codes, rng)
    span = f"{format_time(axis.min(), times)} to {format_time(axis.max(), times)}"
    return Timeline(axis, codes, whole_groups, held_out, span), positions


def time_split(times: np.ndarray, *, val_fraction: float, series: np.ndarray | None = None,
               cut: object = "", gap: str | float = "", seed: int = 0,
               whole_groups: bool = False, held_out: str = "validation") -> TimeParts:
    """Validation = the last `val_fraction` of each series' rows, or the rows at/after `cut`
    (a date, or a duration back from each series' end); training = rows before the cut minus
    `gap`. With whole_groups, `series` are groups kept whole: validation = the groups that
    start last (~val_fraction of the rows), or those starting at/after `cut`; `gap` drops the
    training groups that start within it. `held_out` names the later part in errors ("test"
    when carving one). Pure: the seed only places short series or orders groups that start
    together."""
    timeline, positions = _timeline(times, series, whole_groups, seed, held_out)
    span = parse_span(gap, times)
    if cut not in ("", None):
        codes = np.zeros_like(timeline.groups) if whole_groups else timeline.groups
        cuts = _cut_values(cut, times, timeline.axis, codes)
        val = timeline.axis >= cuts
        return _parts(timeline, ~val, val, gap, span,
                      lambda side: by_cut(timeline, side, cut, _is_duration(cut, times)))
    val = positions >= 1.0 - val_fraction
    return _parts(timeline, ~val, val, gap, span,
                  lambda side: by_fraction(timeline, side, val_fraction, positions))


def time_folds(times: np.ndarray, *, num_folds: int, series: np.ndarray | None = None,
               gap: str | float = "", seed: int = 0, whole_groups: bool = False) -> list[TimeParts]:
    """Expanding windows: each series' timeline (whole groups: the groups by start time) cut in
    num_folds + 1 blocks (0..num_folds); fold j (from 0, as the returned list) validates on
    block j + 1 and trains on the blocks before it (minus the gap)."""
    timeline, positions = _timeline(times, series, whole_groups, seed)
    span = parse_span(gap, times)
    blocks = np.floor(positions * (num_folds + 1))
    return [_parts(timeline, blocks < j, blocks == j, gap, span,
                   lambda side, j=j: by_fold(timeline, side, j - 1, num_folds))
            for j in range(1, num_folds + 1)]
