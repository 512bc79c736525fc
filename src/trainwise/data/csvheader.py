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
from trainwise.data.compressed import open_text
from trainwise.findings import Finding, warning

NUM_SHOWN = 5  # rows named
SEPARATORS = ",;\t|"  # a line with none of them is no header of a table of 2+ columns
MAX_TITLE_LINES = 5  # title lines looked for above the header
MANGLED = re.compile(r"\.\d+$")  # pandas' suffix on a repeated name: 'a.1', 'a.2'


def drop_repeated_headers(frame: pd.DataFrame, keep: str = ""
                          ) -> tuple[pd.DataFrame, list[Finding]]:
    """`frame` less the rows whose every cell is its column's name (a header line repeated
    mid-file), its text columns read again as numbers where every cell left is one; and the
    warning naming those rows. `keep`: a column left as text (zero-padded class codes: as
    numbers '007' and '7' would merge again, review s14 VD1)."""
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
    numbers = kept.apply(_numbers_if_all)
    if keep in kept.columns:
        numbers[keep] = kept[keep]
    return numbers, [_repeated_warning(rows)]


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


def title_lines(sample: str, separators: str = SEPARATORS) -> int:
    """How many lines above the header are a title ('# exported 2024-01-01 by tool'): leading
    lines, up to MAX_TITLE_LINES, with none of `separators` (',', ';', tab, '|'; only the
    user's data.sep when given: a ':' header has none of the four, so the first row with a
    comma in a cell was taken for the header, review s14 VD2) before a line that has one.
    Read as the header, such a line made a 1-column table whose one name the target advice
    then offered (audit s14 Z15). A 1-column file has no separator anywhere: 0."""
    lines = sample.split("\n", MAX_TITLE_LINES + 1)[:MAX_TITLE_LINES + 1]
    for count, line in enumerate(lines):
        if any(s in line for s in separators):
            return count if any(text.strip() for text in lines[:count]) else 0
    return 0


def title_warning(path: Path, sample: str, skip: int) -> Finding:
    titles = [line.strip() for line in sample.split("\n", skip)[:skip] if line.strip()]
    shown = "; ".join(repr(line[:80]) for line in titles)
    return warning(
        "data", "title_lines",
        f"'{path.name}' starts with {skip} line{'s' if skip > 1 else ''} above its header "
        f"({shown}), with no field separator: read as a title and skipped; the header is "
        f"line {skip + 1}.",
        "Nothing to do if that is a title or comment; if it is the header, give the file "
        "its separator (',') and rerun from the data stage.",
        num_lines=skip, lines=titles)


def duplicate_name_findings(path: Path, separator: str, encoding: str, skip: int = 0
                            ) -> list[Finding]:
    """A warning naming the header's names that appear more than once: pandas keeps the
    first and renames the others 'a.1', 'a.2', which data.target and the report then show."""
    with open_text(path, encoding) as file:  # decompressed: a.csv.gz
        for _ in range(skip):  # title lines above the header
            file.readline()
        header = next(csv.reader([file.readline()], delimiter=separator), [])
    # a UTF-8 byte-order mark (Excel's 'CSV UTF-8') made the first name '\ufeffa', not 'a'
    names = [name.lstrip("\ufeff").strip() for name in header]
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
