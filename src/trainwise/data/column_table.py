"""How each column of a table was treated (kept as a number, one-hot, a date's features, a key,
dropped and why), one row per column of the file, for meta.json and the report's Data section:
an analyst must be able to say what became of every column, and a column that vanished
without a word (a constant 'country', a 'bedrooms copy') cannot be defended."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainwise.data.keys import KeyPlan
from trainwise.findings import Finding, warning

MAX_SHOWN_LEVEL = 40  # characters of a constant column's value quoted in its treatment


@dataclass
class ColumnFates:
    """What table_data decided before encoding, column by column. `dropped`: column -> why it
    was left out before keys were planned (data.drop_columns, empty, a copy of another)."""

    order: list[str]  # every column of the file, in the file's order
    target: str
    dropped: dict[str, str] = field(default_factory=dict)
    read_as: dict[str, str] = field(default_factory=dict)  # type read, for dropped columns
    notes: dict[str, str] = field(default_factory=dict)  # column -> a remark on a kept one


def read_type(column: pd.Series) -> str:
    """The type a column was read as: number, date, bool, text or empty."""
    if column.isna().all():
        return "empty"
    if column.dtype.kind == "b" or str(column.dtype) == "boolean":
        return "bool"
    if column.dtype.kind == "M":
        return "date"
    return "number" if pd.api.types.is_numeric_dtype(column) else "text"


def _missing(column: pd.Series) -> int:
    return int(column.isna().sum())


def _constant(column: pd.Series) -> bool:
    """All present values equal (what nunique() <= 1 said: -0.0 == 0.0, inf == inf), by one
    comparison with the first: hashing 16 float columns of 1M rows for nunique took 0.8 s.
    NaN removed as float, whatever the backend: an Arrow double column keeps NaN through
    dropna, and a leading NaN made every comparison NA, read as "all equal" (review s12 Z1)."""
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(np.float64, na_value=np.nan)
        numbers = numbers[~np.isnan(numbers)]
        return len(numbers) == 0 or bool((numbers == numbers[0]).all())
    return len(values) == 0 or bool(values.eq(values.iloc[0]).fillna(False).all())


def _number(column: pd.Series, ordered_id: bool) -> str:
    if _constant(column):
        return "kept as a number, but constant (see constant_features)"
    treatment = "kept as a number, standardised with the training mean and std"
    if missing := _missing(column):
        treatment += f"; {missing:,} missing cells filled with the training mean"
    if ordered_id:
        treatment += "; unique increasing integers, a record number? (see ordered_id_column)"
    return treatment


def categorical_treatment(column: pd.Series, max_one_hot: int, other: str) -> str:
    """As table_features._categorical encodes it: one column per level (the max_one_hot - 1 most
    frequent and `other` when more), a missing level where cells are missing; a single level
    without missing cells gives a constant column, which is dropped."""
    levels, missing = column.nunique(dropna=True), _missing(column)
    if levels <= 1 and not missing:
        value = str(column.iloc[0])[:MAX_SHOWN_LEVEL] if len(column) else ""
        return f"dropped: constant (every row is '{value}')"
    if levels > max_one_hot:
        treatment = (f"one-hot: its {max_one_hot - 1} most frequent of {levels:,} levels, the "
                     f"other levels share one '{other}' column")
    else:
        treatment = f"one-hot: {levels} level{'s' if levels != 1 else ''}"
    if missing:
        treatment += f", plus a level for its {missing:,} missing cells"
    return treatment


def _feature(column: pd.Series, name: str, plan: KeyPlan, dates: dict[str, str],
             max_one_hot: int, other: str) -> str:
    kind = read_type(column)
    if kind == "date":
        return f"date, as {dates.get(name, 'numbers')}"
    if kind in ("bool", "text"):
        return categorical_treatment(column, max_one_hot, other)
    return _number(column, name in plan.ordered_ids)


def _key(name: str, plan: KeyPlan) -> str | None:
    for key in plan.keys:
        if key.column == name:
            how = "declared" if key.declared else f"inferred: {key.reason or 'from its name'}"
            keeps = "keeps each value's rows in one part" if key.role == "group" else \
                "orders the parts in time"
            return f"not a feature: the split's {key.role} key ({how}); it {keeps}"
    if name in plan.row_ids:
        return f"dropped: {plan.reasons.get(name, 'unique per row, an identifier')}"
    return None


def column_table(frame: pd.DataFrame, fates: ColumnFates, plan: KeyPlan, task: str,
                 prose: list[str], tokens: bool, dates: dict[str, str], max_one_hot: int,
                 other: str) -> list[dict[str, str]]:
    """One {column, read_as, treatment} per column of the file, in its order. `frame`: the
    columns left after the drops, as read (numbers parsed, dates parsed); `prose`: free-text
    columns; `tokens`: the model reads the free text alone (data.kind = "tokens"); `dates`:
    per date column, the features it became."""
    rows, by_name = [], {str(c): c for c in frame.columns}
    for name in fates.order:
        if name in fates.dropped:
            rows.append({"column": name, "read_as": fates.read_as.get(name, ""),
                         "treatment": fates.dropped[name]})
            continue
        if name not in by_name:  # merged into another by a loader step: nothing to say
            continue
        column = frame[by_name[name]]
        if name == fates.target:
            treatment = f"the target ({task})"
        elif (key := _key(name, plan)) is not None:
            treatment = key
        elif name in prose:
            treatment = "read as words (token ids)" if tokens else \
                "set aside: free text, not one-hot encoded (see free_text_set_aside)"
        elif tokens:
            treatment = "not used: data.kind = \"tokens\" reads the free text alone"
        else:
            treatment = _feature(column, name, plan, dates, max_one_hot, other)
        if name in fates.notes:
            treatment += f"; {fates.notes[name]}"
        rows.append({"column": name, "read_as": read_type(column), "treatment": treatment})
    return rows


def constant_text_findings(table: list[dict[str, str]]) -> list[Finding]:
    """Text columns with one value in every row: their one-hot column is constant and dropped,
    which a number column's constant_features warning says; said here alike."""
    constant = [r["column"] for r in table if r["treatment"].startswith("dropped: constant")]
    if not constant:
        return []
    return [warning("data", "constant_columns",
                    f"{len(constant)} text column(s) hold one value in every row and were left "
                    f"out: {', '.join(repr(c) for c in constant)}.",
                    "Nothing to do for this run (they carry no information). If they should "
                    "vary, the file may hold one subset only (one country, one site): check "
                    "the export and rerun from the data stage.", columns=constant)]


IGNORED_KEY_CODES = ("ignored_time_key", "ignored_group_key")  # plan.key_findings's


def with_ignored_keys(table: list[dict[str, str]] | None, findings: list[Finding],
                      strategy: str) -> list[dict[str, str]] | None:
    """The column table with each inferred key that split.strategy ignores said as such: it
    read "the split's time key ... it orders the parts in time" while a stratified split never
    looked at it (audit s12 S14), so the table claimed a use the column never had."""
    ignored = {f.evidence.get("column"): f for f in findings if f.code in IGNORED_KEY_CODES}
    if not table or not ignored:
        return table
    rows = []
    for row in table:
        found = ignored.get(row["column"])
        if found is not None:
            role = found.code.removeprefix("ignored_").removesuffix("_key")
            row = {**row, "treatment": (
                f"not a feature (looks like a {role} key: {found.evidence.get('reason')}) and "
                f"not used by the split (split.strategy = '{strategy}'): see {found.code}")}
        rows.append(row)
    return rows
