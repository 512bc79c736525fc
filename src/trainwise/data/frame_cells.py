"""A DataFrame from a notebook made into the table a CSV file would give, before it is saved
as parquet (run) or read (audit): one name per column, one number or text per cell.

Why: pandas holds what no CSV can (audit s14 Z3, Z4, Z12; R5). Two columns of one name crashed
column work with "truth value of a Series is ambiguous"; MultiIndex columns got advice that
repeated the failing call; an object column mixing 1, 2 and "n/a" (pd.read_excel, frames built
by hand) crashed pyarrow, which the same column read from a CSV does not; lists, dicts and
complex numbers crashed hashing or pyarrow; a Categorical of int codes (plan 1/2/3) came back
from parquet as int64 and was standardised as a quantity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.findings import TrainwiseError

NESTED = (list, tuple, dict, set, frozenset, np.ndarray)  # no CSV cell holds one of these
FLATTEN = 'df.columns = ["_".join(map(str, c)) for c in df.columns]'


def refuse_bad_names(frame: pd.DataFrame, where: str) -> None:
    """MultiIndex or repeated column names: an error with the one-liner that fixes them."""
    if isinstance(frame.columns, pd.MultiIndex):
        shown = ", ".join(map(str, frame.columns[:3]))
        last = "_".join(map(str, frame.columns[-1]))  # a target is most often the last column
        raise TrainwiseError(f"{where} has MultiIndex columns ({shown}, ...); trainwise names a "
                             "column by one string. Flatten them first: " + FLATTEN + " (then "
                             f"name the target as flattened, e.g. target=\"{last}\").")
    names = pd.Index([str(name) for name in frame.columns])
    repeated = sorted(set(names[names.duplicated()]))
    if repeated:
        raise TrainwiseError(f"{where} has {len(repeated)} column name(s) used twice or more: "
                             f"{repeated[:10]} (pd.concat(axis=1) or a merge makes them); a "
                             "column must be named once. Rename them, or keep the first of "
                             "each: df = df.loc[:, ~df.columns.duplicated()].")


def _family(kind: type) -> str:
    if issubclass(kind, NESTED):
        return "nested"
    if issubclass(kind, (complex, np.complexfloating)):
        return "complex"
    if issubclass(kind, (bool, np.bool_)):
        return "bool"
    if issubclass(kind, (int, float, np.integer, np.floating)):
        return "number"
    return "text" if issubclass(kind, str) else kind.__name__


def _refuse_cells(name: str, kinds: list[str], where: str) -> None:
    """A column of lists / dicts / arrays, or of complex numbers, named with its fix."""
    if "complex" in kinds[0]:
        fix = (f"split it into two number columns: df['{name}_re'], df['{name}_im'] = "
               f"df['{name}'].to_numpy().real, df['{name}'].to_numpy().imag, then drop "
               f"'{name}'")
    else:
        fix = (f"expand it into one column per item: df = df.join(pd.DataFrame(df['{name}']"
               f".tolist(), index=df.index).add_prefix('{name}_')).drop(columns=['{name}'])")
    raise TrainwiseError(f"column '{name}' of {where} holds {' and '.join(kinds)} cells; a cell "
                         f"must hold one number or text, as in a CSV file. Either {fix}; or "
                         f"drop it: df.drop(columns=['{name}']).")


def _as_csv_cells(column: pd.Series, where: str) -> pd.Series:
    """The column as a CSV reader would see it: an object column mixing numbers and text (or
    dates and text) as text, "1" and "n/a", which the table reader then reads as it reads a
    CSV's mixed column (with its warning); missing cells stay missing."""
    if column.dtype.kind == "c":
        _refuse_cells(str(column.name), [str(column.dtype)], where)
    if isinstance(column.dtype, pd.CategoricalDtype):
        # parquet gives int categories back as int64 (R5): text categories stay categorical
        return column.cat.rename_categories(str)
    if column.dtype != object:
        return column
    kinds = set(map(type, column.dropna().to_numpy()))
    families = {_family(kind) for kind in kinds}
    if families & {"nested", "complex"}:
        _refuse_cells(str(column.name), sorted(k.__name__ for k in kinds
                                               if _family(k) in ("nested", "complex")), where)
    if len(families) <= 1:
        return column
    return column.astype(str).where(column.notna(), None)


def as_csv_table(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The frame with text column names, each column as a CSV would hold it (see above)."""
    refuse_bad_names(frame, where)
    frame = frame.rename(columns=str)
    changed = {}
    for name in frame.columns:
        column = frame[name]
        cells = _as_csv_cells(column, where)
        if cells is not column:
            changed[name] = cells
    return frame.assign(**changed) if changed else frame
