"""A CSV's header, once more in its rows or twice in itself.

Two exports joined with `cat a.csv b.csv` hold the header line again mid-file: each number
column became text with one cell 'a', was read as a unique "row id", and the run stopped with
advice about identifiers that fixed nothing (audit s14 Z2). A header naming 'a' twice is read
by pandas as 'a' and 'a.1' without a word (Z10).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from trainwise.data.coltypes import is_text
from trainwise.findings import Finding, warning

NUM_SHOWN = 5  # rows named
MANGLED = re.compile(r"\.\d+$")  # pandas' suffix on a repeated name: 'a.1', 'a.2'


def drop_repeated_headers(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Finding]]:
    """`frame` less the rows whose every cell is its column's name (a header line repeated
    mid-file), its text columns read again as numbers where every cell left is one; and the
    warning naming those rows."""
    if len(frame) == 0 or not all(is_text(frame[c]) for c in frame.columns):
        return frame, []  # a header cell makes every column text
    exact = [str(c) for c in frame.columns]
    cells = frame.astype(str).apply(lambda column: column.str.strip())
    repeated = (cells.eq(pd.Series(exact, index=frame.columns))
                | cells.eq(pd.Series([MANGLED.sub("", c) for c in exact], index=frame.columns))
                ).all(axis=1).to_numpy()
    if not repeated.any():
        return frame, []
    rows = np.flatnonzero(repeated)
    kept = frame.loc[~repeated].reset_index(drop=True)
    return kept.apply(_numbers_if_all), [_repeated_warning(rows)]


def _numbers_if_all(column: pd.Series) -> pd.Series:
    """The column as numbers when every cell reads as one, as pandas would have read it
    without the header cell; text ('0,5' in a decimal-comma file) is left for coltypes."""
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _repeated_warning(rows: np.ndarray) -> Finding:
    shown = ", ".join(map(str, rows[:NUM_SHOWN])) + (", ..." if len(rows) > NUM_SHOWN else "")
    return warning(
        "data", "repeated_header",
        f"{len(rows)} row{'s' if len(rows) > 1 else ''} ({shown}, counted from 0 after the "
        f"header) {'repeat' if len(rows) > 1 else 'repeats'} the header line, as files "
        "joined with their headers give: left out, the columns are read as they would be "
        "without them (later row numbers count the rows left).",
        "Nothing to do if the file was joined from exports; to silence this, delete those "
        "lines from the file (or join the files without their headers: `tail -n +2`).",
        num_rows=len(rows), rows=rows[:NUM_SHOWN].tolist())


def duplicate_name_findings(path: Path, separator: str, encoding: str) -> list[Finding]:
    """A warning naming the header's names that appear more than once: pandas keeps the
    first and renames the others 'a.1', 'a.2', which data.target and the report then show."""
    with open(path, encoding=encoding, errors="replace", newline="") as file:
        header = next(csv.reader([file.readline()], delimiter=separator), [])
    names = [name.strip() for name in header]
    twice = sorted({name for name in names if names.count(name) > 1 and name})
    if not twice:
        return []
    shown = ", ".join(f"'{name}' x{names.count(name)}" for name in twice[:NUM_SHOWN])
    renamed = ", ".join(f"'{name}.{k}'" for name in twice[:NUM_SHOWN]
                        for k in range(1, names.count(name)))
    return [warning(
        "data", "duplicate_column_names",
        f"the header of '{path.name}' names some columns more than once ({shown}): the "
        f"first of each keeps its name and the others are read as {renamed}, each a column "
        "of its own.",
        "Give every column its own name in the file's header and rerun from the data stage "
        "(name them in data.target or data.drop_columns by the names read until then).",
        names=twice[:NUM_SHOWN])]
