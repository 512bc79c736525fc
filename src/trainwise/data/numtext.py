"""Numbers written for people: '1,576', '$314,986.78', '5.3%', '48.033,28 €'.

An Excel or database export writes amounts with thousands separators, a currency symbol or a
percent sign, and pandas reads such a column as text: a square-footage column became 63
one-hot levels, a price target one class per row. Here a column is read as numbers only when
its cells follow one consistent pattern (one decimal mark, thousands groups of exactly three
digits, one currency symbol or none, '%' on every cell or on none), so a code such as '1.2.3',
a date '04.03.2020' or a zip code is never taken for a number.

pandas' own `thousands=` option of read_csv is not used for this: it drops the separator
wherever it stands, without checking the groups ('04.03.2020' -> 4032020, '1.5' -> 15 with
thousands='.'), and it cannot strip a currency symbol or a percent sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

CURRENCY = "$€£¥"  # symbols stripped before or after an amount
# Between sign, symbol and digits: space, tab and the no-break spaces ('48.033,28\u00a0€',
# French '12,5\u202f%'), as characters. Digits as [0-9]. pandas runs a regex in pyarrow (RE2)
# only without \s or \d (whose meaning differs there): with them it loops over the cells in
# Python, 2.6 s per 1M cells instead of 0.3 s.
SPACE = " \t\u00a0\u202f"


def _pattern(decimal: str) -> str:
    """Sign, currency, sign, digits with whole thousands groups, decimals, currency, percent.
    No named groups: pandas has no pyarrow kernel for str.extract and loops over the cells in
    Python (30 s per 1M cells); str.fullmatch with this pattern runs in pyarrow."""
    dec = re.escape(decimal)
    sep = re.escape("," if decimal == "." else ".")
    body = rf"[0-9]{{1,3}}(?:{sep}[0-9]{{3}})+(?:{dec}[0-9]+)?|[0-9]+(?:{dec}[0-9]+)?|{dec}[0-9]+"
    return (rf"[-+]?[{SPACE}]*[{CURRENCY}]?[{SPACE}]*[-+]?(?:{body})[{SPACE}]*[{CURRENCY}]?"
            rf"[{SPACE}]*%?")


PATTERNS = {".": _pattern("."), ",": _pattern(",")}


@dataclass
class Formatted:
    """A text column read as numbers, and what was removed to read it."""
    numbers: pd.Series  # float64; NaN where a cell was missing or did not match
    removed: str  # "currency '$' and thousands separators ','", for the message
    example: str  # one cell as written, e.g. '$314,986.78'
    percent: bool = False  # '5.3%' read as 5.3, the number as written, not 0.053


def read_formatted(column: pd.Series, decimal: str = ".", plain: bool = False
                   ) -> Formatted | None:
    """The column's cells that match the number pattern of `decimal` ('.': '1,234.5';
    ',': '1.234,5') as float64, or None when no cell carries a thousands separator, a
    currency symbol or a percent sign (plain numbers are pandas' to read), or when the
    cells mix symbols, or '5%' with '0.05', or one has a leading zero. `plain`: read plain
    numbers too ('0,5' in a decimal-comma file, text only because of a '?' cell).

    Whole-column string kernels only (fullmatch, contains, replace, a cast): 1M cells in
    about a second where a per-cell regex extract took 30 s."""
    text = column[column.notna()].astype(str).str.strip()
    text = text[text.str.fullmatch(PATTERNS[decimal]).fillna(False).astype(bool)]
    if len(text) == 0:
        return None
    thousands = "," if decimal == "." else "."
    symbols = {c for c in CURRENCY if text.str.contains(c, regex=False).any()}
    has_pct = text.str.endswith("%")
    # '-$ 1,234.5' -> '-1,234.5': a matched cell holds only sign, digits and marks once
    # its symbols and spaces are gone
    signed = text.str.replace(f"[{CURRENCY}%{SPACE}]", "", regex=True)
    grouped = signed.str.contains(re.escape(thousands) + "[0-9]{3}", regex=True)
    double_sign = signed.str.match("[-+]{2}")
    leading_zero = signed.str.match("[-+]?0[0-9]")  # '02134': a code, not an amount
    if len(symbols) > 1 or 0 < has_pct.sum() < len(text) or (double_sign | leading_zero).any():
        return None
    if not plain and not symbols and not has_pct.any() and not grouped.any():
        return None
    digits = signed.str.replace(thousands, "", regex=False)
    digits = digits.str.replace(decimal, ".", regex=False) if decimal != "." else digits
    numbers = pd.Series(np.nan, index=column.index, dtype=np.float64)
    numbers[text.index] = digits.astype(np.float64).to_numpy()  # every cell matched: no error
    percent = bool(has_pct.any())
    return Formatted(numbers, _removed(symbols, percent, thousands, bool(grouped.any())),
                     str(text.iloc[0]), percent)


def _removed(symbols: set[str], percent: bool, thousands: str, grouped: bool) -> str:
    parts = [f"currency '{next(iter(symbols))}'"] if symbols else []
    parts += ["'%'"] if percent else []
    parts += [f"thousands separators '{thousands}'"] if grouped else []
    return " and ".join(parts)
