"""Columns of a table left out before anything reads them: those the user lists in
data.drop_columns, entirely empty ones (the 'Unnamed: 14' an Excel export with a trailing
separator adds) and exact copies of an earlier column ('bedrooms copy')."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from trainwise.data.column_table import ColumnFates, read_type
from trainwise.data.errors import DataError
from trainwise.data.keys import UNNAMED
from trainwise.findings import Finding, info, warning

SAMPLE_ROWS = 1000  # rows hashed per column to find candidate copies: comparing whole columns
# pairwise is F^2 passes over the data; a copy agrees on its first rows, so only columns that
# agree there are compared in full
MAX_NEAR_COPY_COLUMNS = 300  # number columns compared pairwise for near copies (a 300-column
# sample of 1000 rows is ~45k column pairs, ~0.1 s); wider tables are not checked
MIN_SHARED = 20  # sample rows where both columns have a value, for a pair to be a candidate


def drop_listed(frame: pd.DataFrame, names: list[str], target: str, source: str
                ) -> pd.DataFrame:
    """The frame without data.drop_columns; a name not in it (a typo, a case slip) is an error
    that names the closest column, as a silently ignored name would keep the column in."""
    columns = [str(c) for c in frame.columns]
    for name in names:
        if name == target:
            raise DataError(f"data.drop_columns lists '{name}', the target (data.target): a run "
                            "cannot leave out what it predicts. Remove it from "
                            "data.drop_columns, or choose another data.target.")
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.0) or [columns[0]]
            raise DataError(f"data.drop_columns lists '{name}', which is not a column of "
                            f"'{source}' (the closest is '{close[0]}'; names are compared "
                            f"exactly, case and spaces included). Correct the name in "
                            "data.drop_columns and rerun from the data stage.")
    return frame.drop(columns=[c for c in frame.columns if str(c) in set(names)])


def drop_empty(frame: pd.DataFrame, keep: list[str]) -> tuple[pd.DataFrame, list[Finding]]:
    """The frame without columns that hold no value at all (after na_values), as their one
    finding says; `keep` (the target, declared keys) stays for the checks that explain them.
    An 'Unnamed: N' column is an export's trailing separator: an info. A named one was meant
    to hold data: a warning, since the model never sees it."""
    empty = [c for c in frame.columns if str(c) not in keep and frame[c].isna().all()]
    if not empty:
        return frame, []
    unnamed = [str(c) for c in empty if UNNAMED.match(str(c))]
    named = [str(c) for c in empty if not UNNAMED.match(str(c))]
    findings = []
    if unnamed:
        findings.append(info(
            "data", "empty_column_dropped",
            f"left out {len(unnamed)} column(s) without a header or a single value: "
            f"{', '.join(repr(c) for c in unnamed)}, what an export with a trailing separator "
            "adds.", columns=unnamed))
    if named:
        findings.append(warning(
            "data", "empty_column_dropped",
            f"left out column(s) {', '.join(repr(c) for c in named)}: every cell is empty (or "
            "a missing-value marker), so they hold nothing to learn from.",
            "Nothing to do if the column is unused. If it should hold values, check how the "
            "file was written (an export that lost the column, a data.na_values entry that "
            "matches every cell) and rerun from the data stage.", columns=named))
    return frame.drop(columns=empty), findings


def drop_copies(frame: pd.DataFrame, keep: list[str]
                ) -> tuple[pd.DataFrame, dict[str, str], list[Finding]]:
    """The frame without columns equal in every row to an earlier column (same type too), and
    {copy: the column it copies}. `keep` (the target, declared keys) is never dropped: a copy
    of the target is a leak, which the leak check names."""
    candidates = [c for c in frame.columns if str(c) not in keep]
    head = frame[candidates].head(SAMPLE_ROWS)
    seen: dict[tuple, list] = {}  # first rows' hashes -> the distinct columns with them
    copies: dict[str, str] = {}
    for name in candidates:
        try:
            sample = (str(frame[name].dtype),
                      tuple(pd.util.hash_pandas_object(head[name], index=False).tolist()))
        except TypeError:  # unhashable cells (a parquet list column): not compared
            continue
        bucket = seen.setdefault(sample, [])
        original = next((e for e in bucket if frame[name].equals(frame[e])), None)
        if original is None:
            bucket.append(name)
        else:
            copies[str(name)] = str(original)
    if not copies:
        return frame, {}, []
    pairs = ", ".join(f"'{c}' = '{o}'" for c, o in copies.items())
    finding = warning(
        "data", "duplicate_column",
        f"left out {len(copies)} column(s) equal in every row to an earlier one: {pairs}. A "
        "copy adds no information.",
        "Nothing to do for this run. If the columns should differ, the export copied one "
        "over the other: fix the file and rerun from the data stage.", copies=copies)
    return frame.drop(columns=list(copies)), copies, [finding]


def drop_unused(frame: pd.DataFrame, fates: ColumnFates, listed: list[str], keep: list[str],
                source: str) -> tuple[pd.DataFrame, list[Finding]]:
    """The frame without the listed, empty and copied columns, each recorded in `fates` with
    why it went; `keep`: the target and declared keys, never dropped as empty or a copy."""
    by_name = {str(c): c for c in frame.columns}
    for name in listed:
        fates.read_as[name] = read_type(frame[by_name[name]]) if name in by_name else ""
    frame = drop_listed(frame, listed, fates.target, source)
    fates.dropped.update({name: "dropped: listed in data.drop_columns" for name in listed})
    before = frame
    frame, findings = drop_empty(frame, keep)
    for name in before.columns.difference(frame.columns):
        fates.dropped[str(name)], fates.read_as[str(name)] = "dropped: empty, no value", "empty"
    frame, copies, found = drop_copies(frame, keep)
    for name, original in copies.items():
        fates.dropped[name] = f"dropped: a copy of '{original}', equal in every row"
        fates.read_as[name] = read_type(before[by_name[name]])
    return frame, findings + found


def _equal_where_both(a: np.ndarray, b: np.ndarray) -> tuple[bool, int]:
    """(a near copy?, rows with both): equal where both have a value, over 2+ distinct values
    (two sparse flags agree on their zeros by chance), missing in different rows (else an
    exact copy, of another type)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    near = np.array_equal(a[both], b[both]) and len(np.unique(a[both])) > 1 \
        and not np.array_equal(np.isnan(a), np.isnan(b))
    return bool(near), int(both.sum())


def near_copies(frame: pd.DataFrame, keep: list[str], fates: ColumnFates) -> list[Finding]:
    """Number columns equal wherever both have a value, but missing in different rows (a copy
    made before cells of the original were blanked): kept, as one fills the other's gaps, but
    warned about and noted in `fates`. Pairs of up to MAX_NEAR_COPY_COLUMNS number columns,
    found on the first SAMPLE_ROWS rows, confirmed on all."""
    names = [c for c in frame.columns if str(c) not in keep
             and frame[c].dtype.kind in "iuf" and frame[c].notna().any()]
    if len(names) < 2 or len(names) > MAX_NEAR_COPY_COLUMNS:
        return []
    sample = frame[names].head(SAMPLE_ROWS).to_numpy(np.float64)  # (S, F)
    pairs = {}
    for i in range(len(names) - 1):
        rest = sample[:, i + 1:]
        both = ~np.isnan(sample[:, [i]]) & ~np.isnan(rest)
        same = ((sample[:, [i]] == rest) | ~both).all(axis=0) & (both.sum(axis=0) >= MIN_SHARED)
        shared = np.where(both, rest, np.nan)  # varying where both have values: columns of
        with np.errstate(invalid="ignore"):  # zeros in the first rows (sparse counts) agree
            same &= np.nanmax(shared, axis=0, initial=-np.inf) > \
                np.nanmin(shared, axis=0, initial=np.inf)  # by chance, and are not compared
        for j in np.flatnonzero(same) + i + 1:
            first, second = (frame[names[k]].to_numpy(np.float64) for k in (i, j))
            equal, shared = _equal_where_both(first, second)
            if equal and str(names[j]) not in pairs:
                pairs[str(names[j])] = (str(names[i]), shared)
    if not pairs:
        return []
    for copy, (original, _) in pairs.items():
        fates.notes[copy] = f"equals '{original}' wherever both have a value"
    said = ", ".join(f"'{c}' = '{o}' ({n:,} rows with both)" for c, (o, n) in pairs.items())
    return [warning("data", "near_duplicate_column",
                    f"{len(pairs)} number column(s) equal an earlier one wherever both have a "
                    f"value, and are missing in other rows: {said}. Kept, as each fills the "
                    "other's gaps, but one is likely a copy of the other.",
                    "If one is a copy, leave it out (data.drop_columns) after filling the "
                    "other's missing cells from it in the file; rerun from the data stage.",
                    copies={c: o for c, (o, _) in pairs.items()})]
