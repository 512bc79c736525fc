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


def _pattern(decimal: str) -> re.Pattern[str]:
    """Sign, currency, digits with whole thousands groups, decimals, currency, percent."""
    dec = re.escape(decimal)
    sep = re.escape("," if decimal == "." else ".")
    body = rf"\d{{1,3}}(?:{sep}\d{{3}})+(?:{dec}\d+)?|\d+(?:{dec}\d+)?|{dec}\d+"
    return re.compile(rf"^(?P<sign>[-+]?)\s*(?P<pre>[{CURRENCY}]?)\s*(?P<sign2>[-+]?)"
                      rf"(?P<body>{body})\s*(?P<post>[{CURRENCY}]?)\s*(?P<pct>%?)$")


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
    numbers too ('0,5' in a decimal-comma file, text only because of a '?' cell)."""
    text = column[column.notna()].astype(str).str.strip()
    parts = text.str.extract(PATTERNS[decimal])
    matched = parts["body"].notna()
    if not matched.any():
        return None
    parts = parts[matched]
    thousands = "," if decimal == "." else "."
    symbols = set(parts["pre"]) | set(parts["post"])
    symbols.discard("")
    has_pct = parts["pct"] == "%"
    grouped = parts["body"].str.contains(re.escape(thousands) + r"\d{3}", regex=True)
    double_sign = (parts["sign"] != "") & (parts["sign2"] != "")
    leading_zero = parts["body"].str.match(r"0\d")  # '02134': a code, not an amount
    if len(symbols) > 1 or 0 < has_pct.sum() < len(parts) or (double_sign | leading_zero).any():
        return None
    if not plain and not symbols and not has_pct.any() and not grouped.any():
        return None
    sign = parts["sign"] + parts["sign2"]
    digits = parts["body"].str.replace(thousands, "", regex=False).str.replace(
        decimal, ".", regex=False)
    numbers = pd.Series(np.nan, index=column.index, dtype=np.float64)
    numbers[parts.index] = pd.to_numeric(sign + digits).astype(np.float64)
    percent = bool(has_pct.any())
    return Formatted(numbers, _removed(symbols, percent, thousands, bool(grouped.any())),
                     str(text[parts.index[0]]), percent)


def _removed(symbols: set[str], percent: bool, thousands: str, grouped: bool) -> str:
    parts = [f"currency '{next(iter(symbols))}'"] if symbols else []
    parts += ["'%'"] if percent else []
    parts += [f"thousands separators '{thousands}'"] if grouped else []
    return " and ".join(parts)
