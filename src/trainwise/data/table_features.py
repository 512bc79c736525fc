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
                 ) -> tuple[np.ndarray, list[str], list[Finding], list[OneHot]]:
    """(N, sum of levels) one-hot columns, a missing value its own level where present; and
    what each column stands for, for trainwise.predict to encode new rows the same way.
    `mixed`: mixed_number_columns, the text columns that are mostly numbers."""
    findings, columns, grouped = [], {}, set()
    for name in names:
        column, levels = frame[name], frame[name].nunique(dropna=True)
        if levels > MAX_ONE_HOT:
            column, finding = _top_levels(column, str(name), mixed.get(str(name)))
            findings.append(finding)
            grouped.add(name)
        elif levels >= MANY_LEVELS:
            findings.append(_many_levels(column, str(name), mixed.get(str(name))))
        columns[name] = column.astype(object)
    dummies = pd.get_dummies(pd.DataFrame(columns), dummy_na=True, dtype=np.float32)
    kept = (dummies.nunique(dropna=False) > 1).to_numpy()  # e.g. an unused NaN level
    meanings = _one_hot_meanings(columns, grouped)
    if [m[0] for m in meanings] != [str(c) for c in dummies.columns]:
        meanings = []  # pandas named them otherwise: predict then refuses the raw table
    dummies = dummies.loc[:, kept]
    meanings = [m for m, keep in zip(meanings, kept, strict=False) if keep]
    return dummies.to_numpy(np.float32), [str(c) for c in dummies.columns], findings, meanings


def _one_hot_meanings(columns: dict, grouped: set) -> list[OneHot]:
    """Per get_dummies column, in its order: pandas lays out each column's levels in
    Categorical order, named '<column>_<str(level)>', then '<column>_nan'. `grouped`: the
    columns whose rare levels share OTHER (an unseen level of theirs goes there too)."""
    meanings = []
    for name, column in columns.items():
        for level in pd.Categorical(column).categories:
            role = "other" if name in grouped and level == OTHER else "level"
            meanings.append((f"{name}_{level}", str(name), str(level), role))
        meanings.append((f"{name}_nan", str(name), "", "missing"))
    return meanings


def encode_features(frame: pd.DataFrame, time_key: pd.Series | None = None,
                    mixed: dict[str, float] | None = None
                    ) -> tuple[np.ndarray, list[str], list[Finding], list[OneHot]]:
    """Numbers stay (NaN kept, filled later from training statistics); dates become days
    since their first date (+ month, weekday), or days before the row's `time_key` (the
    split's time column, when it holds dates); text is one-hot, its MAX_ONE_HOT - 1 most
    frequent levels when it has more. `mixed`: mixed_number_columns of the data's findings."""
    findings, parts = [], {}
    text, meanings = [], []
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
    columns = [np.asarray(v, dtype=np.float32) for v in parts.values()]
    names = list(parts)
    if text:
        one_hot, one_hot_names, text_findings, meanings = _categorical(frame, text, mixed or {})
        columns.append(one_hot)
        names += one_hot_names
        findings += text_findings
    x = np.column_stack(columns) if names else np.zeros((len(frame), 0), np.float32)
    return x, names, findings, meanings


def info_with_fix(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    """A note with a fix: findings.info takes none, and a table's notes say what to do."""
    return Finding(stage, Severity.INFO, code, message, evidence, fix)
