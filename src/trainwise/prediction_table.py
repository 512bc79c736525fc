"""A table's rows -> the run's (N, F) features for trainwise.predict, encoded as the run
encoded its own: numeric columns as numbers (a cell that is not one is named, with its row),
text columns one-hot with the levels saved in preprocess.npz (levels the run never saw are
counted and said), and the missing or infinite cells of the rows reported (audit s12 S1, S5,
S12). Warnings are PredictionWarning; `trainwise predict` prints them on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.caller_line import warn_at_caller
from trainwise.config import DataConfig
from trainwise.data.coltypes import COMMON_MARKERS, folded, read_numbers, replace_na_values
from trainwise.data.errors import DataError
from trainwise.preprocessing import FILE_NAME, Preprocessing

NUM_SHOWN = 5  # rows and values named in a message; the count says the rest


class PredictionWarning(UserWarning):
    """Something about the rows to predict that the predictions alone would hide."""


@dataclass(frozen=True)
class TableInput:
    """What predict knows of a table beyond its cells: what it was (a file, named in errors,
    or a DataFrame) and the run's constant features (the data stage's constant_features)."""

    source: str = "DataFrame"
    constant: tuple[str, ...] = ()


def constant_features(findings: Sequence[Any]) -> tuple[str, ...]:
    """The features the run's data stage found constant (findings.json's constant_features)."""
    return tuple(str(name) for f in findings if f.code == "constant_features"
                 for name in f.evidence.get("features", []))


def table_features(frame: pd.DataFrame, prep: Preprocessing, data: DataConfig, *,
                   folder: str | Path, table: TableInput | None = None) -> np.ndarray:
    """(N, F) float64 features of `frame` in the run's order, NaN where a cell is missing
    (filled from the training statistics later); `folder`: the run's, named in advice."""
    table = table or TableInput()
    if len(frame) == 0:
        raise DataError("there are no rows to predict: the table has its columns but 0 rows. "
                        "Pass at least one row.")
    names = prep.feature_names
    meanings = {m[0]: m for m in prep.one_hot}
    raw = {m[1] for m in prep.one_hot if m[1] in frame.columns}
    encoded = [n for n in names if n not in frame.columns and meanings.get(n, "  ")[1] in raw]
    frame = _with_constants(frame, prep, [n for n in names if n not in frame.columns
                                          and n not in encoded and n in table.constant])
    _refuse_missing([n for n in names if n not in frame.columns and n not in encoded],
                    frame, prep, folder, table.source)
    decimal = data.decimal or "."  # predict passes the run's (its own, or the sniffed one)
    frame = replace_na_values(frame, data.na_values, decimal)  # as the run read its own
    if prep.one_hot:  # rows of text columns: imputed_cells cannot tell an empty row there
        used = [n for n in names if n not in encoded] + [meanings[n][1] for n in encoded]
        _say_empty(np.flatnonzero(frame[list(dict.fromkeys(used))].isna().all(axis=1)))
    columns = {n: _numbers(frame[n], n, decimal) for n in names if n not in encoded}
    for column in dict.fromkeys(meanings[n][1] for n in encoded):
        columns.update(_one_hot(frame[column], [meanings[n] for n in encoded
                                                if meanings[n][1] == column]))
    return np.column_stack([columns[n] for n in names])


def _with_constants(frame: pd.DataFrame, prep: Preprocessing,
                    missing: list[str]) -> pd.DataFrame:
    """`frame` with the missing columns that were constant in training, each at its training
    value (preprocess.npz's mean): the data stage advised dropping them (audit s14 R8), and
    the model saw that one value on every row, so filling it changes no prediction."""
    if not missing or prep.mean is None or len(prep.mean) != len(prep.feature_names):
        return frame
    values = {n: float(prep.mean[prep.feature_names.index(n)]) for n in missing}
    _warn(f"column{'s' if len(missing) > 1 else ''} {missing} missing from the rows: constant "
          "in training (constant_features), so every row gets the training value ("
          + ", ".join(f"{n} = {v:g}" for n, v in values.items()) + ").")
    return frame.assign(**values)


def _refuse_missing(missing: list[str], frame: pd.DataFrame, prep: Preprocessing,
                    folder: str | Path, source: str = "DataFrame") -> None:
    names = prep.feature_names
    if names and not missing:
        return
    wrong = f"columns {missing[:8]} are missing" if missing else \
        "the run recorded no feature names"
    raw = [str(c) for c in frame.columns if c not in names]
    one_hot = not names or any(n.startswith(f"{c}_") for n in missing for c in raw)
    how = ("The run folder does not hold the levels of its text columns (a run of an "
           f"earlier trainwise): write them without retraining with trainwise run --resume "
           f"{folder}, or pass the one-hot encoded array, its columns in the run's order"
           if one_hot else "Add the missing columns to the rows: the model needs every "
           "column it trained on")
    encoded = {m[0] for m in prep.one_hot}
    columns = len({m[1] for m in prep.one_hot}) + len([n for n in names if n not in encoded])
    raise DataError(
        f"this {source} cannot be matched to the run's features: {wrong}. {how} ({columns} "
        f"columns of the training table, encoded as the {len(names)} features of "
        f"feature_names in {FILE_NAME} in the run folder).")


def _numbers(column: pd.Series, name: str, decimal: str) -> np.ndarray:
    """A column the run read as numbers, read with the run's own number reader (coltypes:
    '$1,183.47', '0,5' with the run's decimal mark); missing-value markers ('?', 'n/a') are
    missing, as the run read its own, and any other text is an error naming the cell."""
    if pd.api.types.is_numeric_dtype(column) and column.dtype.kind != "b":
        return column.to_numpy(np.float64, na_value=np.nan)
    marker = (folded(column).isin(COMMON_MARKERS) & column.notna()).to_numpy()
    values = column.astype(object).where(column.notna().to_numpy() & ~marker)
    numbers = read_numbers(values, decimal)
    bad = values.notna().to_numpy() & numbers.isna().to_numpy()
    if bad.any():
        _refuse_text(column, name, np.flatnonzero(bad))
    return numbers.to_numpy(np.float64, na_value=np.nan)


def _refuse_text(column: pd.Series, name: str, rows: np.ndarray) -> None:
    """The cells that no number reader reads; the na_values advice only for a cell without a
    digit ('n/r', 'none given'): one with digits is a value written another way, and listing
    it as missing would blank real values."""
    first = column.iloc[rows[0]]
    more = f" ({len(rows)} such cells, in rows {row_list(rows)})" if len(rows) > 1 else ""
    marker_like = not any(ch.isdigit() for ch in str(first))
    how = (f"Fix the cell (leave it empty if the value is missing), or, if {first!r} means "
           "missing, add it to na_values under [data] in the run folder's config.toml, which "
           "predict reads." if marker_like else
           "Write it as the training file wrote its numbers (a plain number such as 1234.5, "
           "or the training file's format), or leave it empty if the value is missing.")
    raise DataError(f"column '{name}' row {rows[0]} holds {first!r}, not a number{more}; the "
                    f"run read '{name}' as numbers. {how}")


def row_list(rows: Sequence[int] | np.ndarray) -> str:
    """'1, 4, 7', the first NUM_SHOWN rows and a count of the rest (prediction_text's too)."""
    shown = ", ".join(str(int(r)) for r in rows[:NUM_SHOWN])
    return shown + (f" and {len(rows) - NUM_SHOWN} more" if len(rows) > NUM_SHOWN else "")


def _one_hot(column: pd.Series, meanings: list[tuple[str, str, str, str]]
             ) -> dict[str, np.ndarray]:
    """The run's one-hot columns of one text column: a level the run never saw goes to
    '(other)' where the run had one (as its own rare levels did), else to no column."""
    text, present = _as_text(column), column.notna().to_numpy()
    levels = {m[2]: m[0] for m in meanings if m[3] == "level"}
    other = next((m for m in meanings if m[3] == "other"), None)
    hits = {level: present & _is_level(column, text, level) for level in levels}
    unseen = present & ~np.logical_or.reduce([np.zeros(len(column), bool), *hits.values()])
    out = {levels[level]: hit.astype(np.float64) for level, hit in hits.items()}
    if other is not None:
        out[other[0]] = unseen.astype(np.float64)
    missing = next((m[0] for m in meanings if m[3] == "missing"), None)
    if missing is not None:
        out[missing] = (~present).astype(np.float64)
    _say_unseen(meanings[0][1], text[unseen], np.flatnonzero(unseen), other, len(levels))
    if missing is None and not present.all():
        gaps = np.flatnonzero(~present)
        _warn(f"column '{meanings[0][1]}' is missing in {_in_rows(gaps)}, and the run saw "
              "no missing cell in it: scored as none of "
              "its levels. Fill the cells if you know them.")
    return out


def _is_level(column: pd.Series, text: pd.Series, level: str) -> np.ndarray:
    """(N,) cells that are the run's level `level`: by number when the new column was read as
    numbers and the level reads as one (pandas wrote the training file's floats as '3.0',
    an int column's as '3': both match 3), else by its text."""
    if pd.api.types.is_numeric_dtype(column) and column.dtype.kind != "b":
        number = pd.to_numeric(pd.Series([level]), errors="coerce").iloc[0]
        if pd.notna(number):
            return (column.to_numpy(np.float64, na_value=np.nan) == float(number))
    return (text == level).to_numpy()


def _as_text(column: pd.Series) -> pd.Series:
    """Cells as the run's level names (pandas names a level str(value)), for the text match
    and the unseen levels' message; a column read as numbers here shows '3', not '3.0'
    (_is_level matches numbers by number)."""
    if pd.api.types.is_float_dtype(column):
        whole = column.dropna()
        if (whole == whole.round()).all():
            return column.map(lambda v: str(int(v)) if pd.notna(v) else v)
    return column.map(lambda v: str(v) if pd.notna(v) else v)


def _say_unseen(name: str, unseen: pd.Series, rows: np.ndarray, other: tuple | None,
                num_levels: int) -> None:
    if unseen.empty:
        return
    shown = ", ".join(repr(v) for v in unseen.value_counts().index[:NUM_SHOWN])
    where = f"{_in_rows(rows)} " + ("holds" if len(unseen) == 1 else "hold")
    if other is not None:
        _warn(f"column '{name}': {where} levels outside the run's {num_levels} one-hot "
              f"levels (e.g. {shown}): scored as '{other[2]}', as the run scored its rare "
              "levels.")
    else:
        _warn(f"column '{name}': {where} levels the run never saw (e.g. {shown}): "
              "scored as none of its levels (all its one-hot columns 0), a row the model "
              "never met in training. Map them to a level the run knew if one fits.")


def _warn(message: str) -> None:
    warn_at_caller(message, PredictionWarning)


def imputed_cells(array: np.ndarray, prep: Preprocessing) -> np.ndarray | None:
    """(N,) missing cells per row, which normalisation fills with the training mean (a
    warning names the columns that had none in training, and rows missing every feature);
    infinite cells are refused. None for token ids, which cannot be missing."""
    if prep.kind == "tokens" or array.dtype.kind != "f" or not array.size:
        return None
    flat = array.reshape(len(array), -1)  # (N, F), or (N, C*T) / (N, C*H*W) cells
    names = prep.feature_names if len(prep.feature_names) == flat.shape[1] else []
    _refuse_infinite(np.isinf(flat), names)
    missing = np.isnan(flat)
    if missing.any():
        _say_missing(missing, names, prep.feature_missing, bool(prep.one_hot))
    return missing.sum(axis=1)


def _refuse_infinite(infinite: np.ndarray, names: list[str]) -> None:
    """Training read inf as missing; in new rows it is a broken feed (a division by zero
    upstream), and scoring it as the column's mean would hide that: refused, named."""
    if not infinite.any():
        return
    rows = np.flatnonzero(infinite.any(axis=1))
    where = ", ".join(f"'{names[k]}'" for k in np.flatnonzero(infinite.any(axis=0))[:8]) \
        if names else "the inputs"
    raise DataError(
        f"the rows to predict hold {int(infinite.sum())} infinite "
        f"value{'s' * (int(infinite.sum()) != 1)} (inf or -inf) in "
        f"{where}, in {which_rows(rows)}: no measurement is infinite, and the model would "
        "read them as the training mean. Fix what produced them (often a division by zero), "
        "or, if they mean 'missing', make them NaN (df.replace([np.inf, -np.inf], np.nan)): "
        "predict then fills them as training did and counts them in num_imputed.")


def _say_empty(empty: np.ndarray) -> None:
    if len(empty):
        has, them = ("has", "it") if len(empty) == 1 else ("have", "them")
        _warn(f"{_in_rows(empty)} {has} no value at all: scored as a row of training means, "
              f"an answer that says nothing about {them}. Drop {them} or fill {them} in.")


def which_rows(rows: Sequence[int] | np.ndarray) -> str:
    """'row 4' or 'rows 1, 4, 7' ("rows 0" named one row: audit s16 D10)."""
    return f"row{'s' * (len(rows) != 1)} {row_list(rows)}"


def _in_rows(rows: Sequence[int] | np.ndarray) -> str:
    """'row 4' for one row, '3 rows (rows 1, 4, 7)' for more (not "1 row (rows 0)")."""
    return which_rows(rows) if len(rows) == 1 else f"{len(rows)} rows ({which_rows(rows)})"


def _say_missing(missing: np.ndarray, names: list[str], trained: np.ndarray | None,
                 trained_one_hot: bool) -> None:
    """Warn of missing cells where the run had none (or where it is not known: an older
    run, or inputs not named by column), and of rows with no value at all."""
    if not trained_one_hot:  # table_features said it, from the text columns too
        _say_empty(np.flatnonzero(missing.all(axis=1)))
    if not names:
        rows = np.flatnonzero(missing.any(axis=1))
        _warn(f"{int(missing.sum())} input cells are missing (NaN), in "
              f"{_in_rows(rows)}: filled with the training "
              "mean; num_imputed counts them per row.")
        return
    for k in np.flatnonzero(missing.any(axis=0)):
        if trained is not None and len(trained) == len(names) and trained[k] > 0:
            continue  # the run filled this column's gaps too: the same treatment, as expected
        rows = np.flatnonzero(missing[:, k])
        _warn(f"column '{names[k]}' is missing in {_in_rows(rows)}, "
              "and the run's data had no missing cell in it: filled with the training mean, "
              "which the model never met as a stand-in. num_imputed counts them per row; "
              "fill the cells if you can.")


def key_columns(meta: dict) -> list[str]:
    """The columns the run set aside as row keys, from meta.json: its group and time keys,
    then the identifiers it dropped ("dropped: unique per row, an identifier"), in the
    file's order; what joins a prediction back to its row. `meta`: meta.json, read once
    by predict."""
    data = meta.get("data", {})
    keys = {str(k.get("column")) for k in data.get("keys", []) if isinstance(k, dict)}
    ids = {str(c.get("column")) for c in data.get("columns", []) if isinstance(c, dict)
           and "identifier" in str(c.get("treatment", ""))}
    ordered = [str(c.get("column")) for c in data.get("columns", []) if isinstance(c, dict)]
    return [c for c in ordered if c in keys | ids] + sorted(keys - set(ordered))
