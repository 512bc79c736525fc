"""A table's feature columns as the model reads them: numbers as float32 (NaN kept), dates as
day counts (dates.date_features), text one-hot, its rare levels sharing one OTHER column; and
what each one-hot column stands for (OneHot), so trainwise.predict encodes new rows alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trainwise.data.dates import date_features
from trainwise.data.errors import DataError
from trainwise.findings import Finding, Severity

MAX_ONE_HOT = 64  # one-hot columns per text column at most (its 63 most frequent levels and
# OTHER): 1M rows x 64 is 256 MB of float32, where a 1000-level column in full would be 4 GB.
# city.csv (label set by a 40-level city, 1500 rows; logistic regression on one-hot city: 88.7%):
# the old limit of 32 made city one integer code in string order, test accuracy 69.3%; one-hot,
# 90.0% and 90.7% (seeds 0, 1). native.parquet (3-level text, no wide column): 97.5% either way.
MANY_LEVELS = 20  # text columns with this many levels get a note: they once read as group keys
OTHER = "(other)"  # the level that rare levels share
OneHot = tuple[str, str, str, str]  # (feature, column, level, role: level / other / missing)


def as_float32(column: pd.Series, what: str) -> np.ndarray:
    """float32, as training computes; a finite value beyond its range (3.4e38) would turn
    into inf and read as missing, so it is an error that says so."""
    values = column.to_numpy(np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    largest = float(np.abs(finite).max()) if finite.size else 0.0
    if largest > np.finfo(np.float32).max:
        raise DataError(f"{what} holds values up to {largest:.3g}, beyond float32's range "
                        f"(3.4e38) that training computes in. Rescale it (divide by a power "
                        "of ten) or take its log.")
    return values.astype(np.float32)


def is_categorical(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column) and column.dtype.kind != "M" \
        or column.dtype.kind == "b"


def _top_levels(column: pd.Series, name: str, share: float | None
                ) -> tuple[pd.Series, Finding]:
    """Levels past the MAX_ONE_HOT - 1 most frequent share one OTHER level: the frequent ones
    stay usable by a model, where one integer code in string order made them arbitrary
    numbers. Counted over the whole table: it uses no labels, so nothing leaks."""
    counts = column.value_counts(dropna=True)
    kept = counts.index[:MAX_ONE_HOT - 1]
    rare = ~column.isin(kept) & column.notna()
    finding = info_with_fix(
        "data", "rare_levels_grouped",
        f"column '{name}' has {len(counts):,} categories: its {len(kept)} most frequent are "
        f"one-hot columns, and the other {len(counts) - len(kept):,} ({int(rare.sum()):,} "
        f"rows) share one '{OTHER}' column.",
        _numbers_fix(name, share) or
        "If the rare categories matter, merge them into broader ones in the file (a region "
        "instead of a postcode); if each value is a subject (rows that belong together), "
        f"declare it: --set 'split.group_column=\"{name}\"'.",
        column=name, num_levels=len(counts), num_one_hot=len(kept))
    return column.astype(object).where(~rare, OTHER), finding


def _many_levels(column: pd.Series, name: str, share: float | None) -> Finding:
    """Say that a many-level text column is a feature: it used to be taken for a group key."""
    return info_with_fix(
        "data", "many_levels_one_hot",
        f"column '{name}' has {column.nunique(dropna=True)} categories, averaging "
        f"{column.notna().sum() / column.nunique(dropna=True):.0f} rows each: it is a "
        "feature, one-hot encoded.",
        _numbers_fix(name, share) or
        "Nothing to do if it describes rows (a city, a product). If each value is a subject "
        "whose rows belong together (a patient), declare it: "
        f"--set 'split.group_column=\"{name}\"'.", column=name)


def _numbers_fix(name: str, share: float | None) -> str:
    """The fix for a text column whose levels are mostly numbers (a measurement with a few
    words): its numbers are what to recover, no group key (audit s12 K4); '' otherwise.
    `share`: its share of numbers, where coerce_numeric_text warned it mixed (None: it did
    not; all numbers is text on purpose, zip codes in a parquet)."""
    if share is None:
        return ""
    return (f"{share:.0%} of its cells are numbers: it is a number column that its text "
            f"cells made text (see the text_in_numeric_column warning for '{name}'). Fix or "
            "remove those cells in the file, or list them in data.na_values if they mean "
            "missing, so it is read as numbers; then rerun from the data stage.")


def _categorical(frame: pd.DataFrame, names: list[str], mixed: dict[str, float]
                 ) -> tuple[list[np.ndarray], list[str], list[Finding], list[OneHot]]:
    """Per text column, each row's one-hot column (-1: none, the level of a dropped column);
    the kept columns' names, what each stands for (for trainwise.predict to encode new rows
    the same way), and notes. A missing value is its own level where present; a column that
    is all 0 or all 1 (an unused NaN level, a constant column) is dropped. `mixed`:
    mixed_number_columns, the text columns that are mostly numbers.

    Integer codes replace pd.get_dummies + concat, same layout (its levels in Categorical
    order, then '<column>_nan'): on 1M rows x 3 text columns get_dummies took 2.1 s, and its
    DataFrame's (N, 138) float32 copy into x 1.4 s more; the codes are scattered into x."""
    findings, codes, names_kept, meanings = [], [], [], []
    for name in names:
        column = frame[name]
        levels = pd.Categorical(column.astype(object))  # what get_dummies factorises
        role_other = False
        if len(levels.categories) > MAX_ONE_HOT:
            column, finding = _top_levels(column, str(name), mixed.get(str(name)))
            findings.append(finding)
            levels, role_other = pd.Categorical(column.astype(object)), True
        elif len(levels.categories) >= MANY_LEVELS:
            findings.append(_many_levels(column, str(name), mixed.get(str(name))))
        column_codes, column_meanings = _kept_levels(levels, str(name), role_other)
        codes.append(column_codes + len(names_kept) * (column_codes >= 0))
        names_kept += [m[0] for m in column_meanings]
        meanings += column_meanings
    return codes, names_kept, findings, meanings


def _kept_levels(levels: pd.Categorical, name: str, grouped: bool
                 ) -> tuple[np.ndarray, list[OneHot]]:
    """(N,) each row's column among this text column's kept one-hot columns (-1: none), and
    their meanings. Kept: used by some rows and not all (get_dummies' nunique > 1)."""
    num_levels = len(levels.categories)
    one_hot = np.where(levels.codes < 0, num_levels, levels.codes)  # NaN: the last column
    counts = np.bincount(one_hot, minlength=num_levels + 1)
    kept = (counts > 0) & (counts < len(one_hot))
    position = np.where(kept, np.cumsum(kept) - 1, -1)
    meanings = [(f"{name}_{level}", name, str(level),
                 "other" if grouped and level == OTHER else "level")
                for level in levels.categories]
    meanings.append((f"{name}_nan", name, "", "missing"))
    return position[one_hot], [m for m, keep in zip(meanings, kept, strict=True) if keep]


def encode_features(frame: pd.DataFrame, time_key: pd.Series | None = None,
                    mixed: dict[str, float] | None = None
                    ) -> tuple[np.ndarray, list[str], list[Finding], list[OneHot]]:
    """Numbers stay (NaN kept, filled later from training statistics); dates become days
    since their first date (+ month, weekday), or days before the row's `time_key` (the
    split's time column, when it holds dates); text is one-hot, its MAX_ONE_HOT - 1 most
    frequent levels when it has more. `mixed`: mixed_number_columns of the data's findings.

    bench/data_leakage.py's 1M-row table (16 numbers, 3 text columns; x (1M, 154)), the
    codes path against get_dummies, same machine, two runs each: load 6.4-6.9 -> 3.6-3.7 s,
    audit 4.2-5.4 -> 0.9-1.1 s (row hashes by blocks, constant mask), split 1.9 -> 1.5 s."""
    findings, parts = [], {}
    text: list = []
    meanings: list[OneHot] = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            numbers, described = date_features(column, str(name), time_key)
            parts.update(numbers)
            findings.append(info_with_fix(
                "data", "date_feature", f"column '{name}' holds dates: a feature as "
                f"{described}.", "Nothing to do if rows are independent of time; if later "
                f"rows must be validated on, declare --set 'split.time_column=\"{name}\"'.",
                column=str(name), described=described))
        elif not is_categorical(column):
            parts[str(name)] = as_float32(column, f"column '{name}'")
        else:
            text.append(name)
    codes, one_hot_names = [], []
    if text:
        codes, one_hot_names, text_findings, meanings = _categorical(frame, text, mixed or {})
        findings += text_findings
    return _filled(len(frame), list(parts.values()), codes, len(one_hot_names)), \
        list(parts) + one_hot_names, findings, meanings


FILL_ROWS = 8192  # rows of x written at once: 8192 x 154 float32 is 5 MB, near cache size


def _filled(num_rows: int, numbers: list, codes: list[np.ndarray], num_one_hot: int
            ) -> np.ndarray:
    """(N, numbers + one-hot) float32, written once, FILL_ROWS rows at a time: np.column_stack
    of the parts made a second (N, D) copy (1M x 154: 0.6 GB), and writing x column by column
    touched all of it once per column (1M x 154: 1.8 s). `codes`: each row's one-hot column
    among the one-hot ones, -1 for none."""
    width = len(numbers) + num_one_hot
    x = np.zeros((num_rows, width), np.float32)  # pages the kernel zeroes on first touch
    # (0.1-1.2 s for 0.6 GB here, which any new x pays), where filling the one-hot part of
    # each block with 0 (a strided fill) took 1.0 s more
    dense = np.column_stack([np.asarray(v, dtype=np.float32) for v in numbers]) if numbers \
        else np.zeros((num_rows, 0), np.float32)  # (N, numbers): 64 MB for 16 columns
    for start in range(0, num_rows, FILL_ROWS):
        block = x[start:start + FILL_ROWS]
        block[:, :len(numbers)] = dense[start:start + FILL_ROWS]
        flat, rows = block.reshape(-1), np.arange(len(block), dtype=np.int64) * width
        for column in codes:
            part = column[start:start + FILL_ROWS]
            used = part >= 0
            flat[rows[used] + len(numbers) + part[used]] = 1.0
    return x


def info_with_fix(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    """A note with a fix: findings.info takes none, and a table's notes say what to do."""
    return Finding(stage, Severity.INFO, code, message, evidence, fix)
