"""Column typing for tables: a number column with a few missing-value markers stays numeric.

pandas reads a column as text as soon as one cell is not a number: 15 '?' cells among 800
incomes made `income` a 781-level text column ("100000" < "9000" once coded), and 5
'unknown' ages made `age` look like a subject key. Here such a column is read as numbers, its
marker cells become missing, and a warning names what was replaced. Only markers: a mostly
numeric column with other text ('online' among store numbers, 'A3' among product codes) holds
real values, and is kept as text with a warning, never silently emptied.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from trainwise.data.numtext import Formatted, read_formatted
from trainwise.findings import Finding, Severity, warning

NUMERIC_SHARE = 0.9  # share of a text column's non-missing cells that must parse as numbers
MIXED_SHARE = 0.5  # from this share of numbers up, a text column kept as text is warned about:
# 450 numbers and 150 'low' / 'high' cells became 422 levels, 63 one-hot, with no word (s12 K4)
# Cells that mean "missing" in exported tables (UCI '?', SAS '.', Excel '-', 'n/a', ...);
# compared stripped and case-folded, and not counted against NUMERIC_SHARE: a column that is
# 30% '?' and otherwise numbers is a number column with many gaps, not text.
# NA_MARKERS are never a value: punctuation and the spellings pandas' CSV reader already reads
# as missing ('NA', 'n/a', 'null'), so a text target's are read as missing too (markers.py).
NA_MARKERS = frozenset({"", "?", "??", "-", "--", ".", "n/a", "na", "nan", "null", "#n/a",
                        "n.a."})
# Words can be real values (a class 'unknown', an answer 'none'): only warned about in text.
WORD_MARKERS = frozenset({"unknown", "none", "missing", "not available"})
COMMON_MARKERS = NA_MARKERS | WORD_MARKERS
SAMPLE = 1000  # cells parsed first: a plain text column is rejected without parsing it all
NUM_SHOWN = 5  # replaced text values named in the warning
# A spreadsheet's footer ('Total,,51773548' as the last line) is no sample: said as such when
# such a word is the only text of a number column and sits in the last FOOTER_ROWS rows.
SUMMARY_WORDS = frozenset({"total", "totals", "grand total", "subtotal", "sum", "summe",
                           "gesamt", "total général", "totale", "average", "mean"})
FOOTER_ROWS = 3


def is_text(column: pd.Series) -> bool:
    """Text cells (object or a pandas string dtype); categoricals and numbers are not. A pandas
    Categorical (whose dtype.kind is 'O' too) holds categories its user chose, an ordered
    target's order among them: it is never read as numbers or dates."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return False
    return column.dtype.kind in "OUS" or str(column.dtype).startswith(("str", "string"))


def folded(column: pd.Series) -> pd.Series:
    """Cells as text, stripped and case-folded: how markers and case variants are compared."""
    return column.astype(str).str.strip().str.casefold()


def listed_values(counts: pd.Series) -> tuple[str, str]:
    """("'?' x12, '-' x6", '"?", "-"') of value counts: for a message, and for the na_values
    fix (stripped, as data.na_values compares them)."""
    shown = ", ".join(f"{v!r} x{c}" for v, c in counts.head(NUM_SHOWN).items())
    return shown, ", ".join(f'"{str(v).strip()}"' for v in counts.index[:NUM_SHOWN])


def replace_na_values(frame: pd.DataFrame, na_values: Iterable[str], decimal: str = "."
                      ) -> pd.DataFrame:
    """Cells equal to one of `na_values` (data.na_values; stripped, any case) become missing,
    in every text column: the user declared them, so no warning. `decimal`: the file's decimal
    mark (data.decimal, or sniffed), which plain numbers such as '0,5' are read with."""
    markers = {str(v).strip().casefold() for v in na_values}
    if not markers:
        return frame
    frame = frame.copy()
    for name in frame.columns:
        column = frame[name]
        categorical = isinstance(column.dtype, pd.CategoricalDtype)  # declared: masked too
        found = folded(column).isin(markers) & column.notna() \
            if is_text(column) or categorical else None
        if found is not None and found.any():
            frame[name] = column.mask(found) if categorical else \
                _numbers_or_text(column.mask(found), decimal)
    return frame


def _numbers_or_text(column: pd.Series, decimal: str) -> pd.Series:
    """A column that was text only because of its markers is numbers: left as text, its
    ages were categories ('100' < '9' once coded). Formatted numbers ('1.234', '$5') stay
    text here: coerce_numeric_text reads them and says what it removed."""
    numbers, formatted = _numbers(column, decimal)
    plain = formatted is None or not formatted.removed
    return numbers if plain and numbers.notna().sum() == column.notna().sum() else column


def _numbers(values: pd.Series, decimal: str) -> tuple[pd.Series, Formatted | None]:
    """(float64 numbers, NaN where a cell did not read; how formatted numbers were read or
    None): pandas' to_numeric ('1576.5') or the file's number format ('$1,576.50'; '0,5' and
    '1.234,5 €' with `decimal` ','), whichever reads more cells. On a tie the file's format
    wins in a decimal-comma file: there '438.278' is 438278, not to_numeric's 438.278."""
    numbers = pd.to_numeric(values.astype(str), errors="coerce").where(values.notna())
    comma = decimal == ","
    if numbers.notna().sum() == values.notna().sum() and not comma:
        return numbers, None
    formatted = read_formatted(values, decimal, plain=comma)  # '1,576', '$5', '0,5'
    if formatted is None:
        return numbers, None
    read, plain_read = formatted.numbers.notna().sum(), numbers.notna().sum()
    return (formatted.numbers, formatted) if read > plain_read or comma and read == plain_read \
        else (numbers, None)


def _parse(column: pd.Series, decimal: str = ".", share: float = NUMERIC_SHARE
           ) -> tuple[pd.Series, pd.Series, Formatted | None] | None:
    """(float64 numbers with NaN for every other cell, is_marker, how formatted numbers were
    read or None) when at least `share` of `column`'s non-marker cells are numbers, else
    None. `decimal`: the file's decimal mark."""
    head = column.dropna().head(SAMPLE)
    head = head[~folded(head).isin(COMMON_MARKERS)]
    if len(head) == 0 or _numbers(head, decimal)[0].notna().mean() < share:
        return None  # rejected on its first cells: a text column (a city) is not parsed whole
    markers = folded(column).isin(COMMON_MARKERS) & column.notna()
    values = column.where(~markers)
    numbers, formatted = _numbers(values, decimal)
    counted = int(values.notna().sum())
    if counted == 0 or numbers.notna().sum() < share * counted:
        return None
    return numbers.astype(np.float64), markers, formatted


def _replaced(column: pd.Series, numbers: pd.Series) -> pd.Series:
    """Counts of the text values that did not parse, most frequent first."""
    return column[column.notna() & numbers.isna()].astype(str).value_counts()


def _finding(name: str, replaced: pd.Series, num_numbers: int) -> Finding:
    shown, listed = listed_values(replaced)
    more = f" and {len(replaced) - NUM_SHOWN} more" if len(replaced) > NUM_SHOWN else ""
    total = int(replaced.sum())
    return warning(
        "data", "text_in_numeric_column",
        f"column '{name}' holds numbers except {total} cells ({shown}{more}): it is read as "
        f"numbers ({num_numbers:,} cells) and those cells as missing values.",
        f"If they are missing-value markers, list them so they are read as missing without "
        f"this warning: --set 'data.na_values=[{listed}]' (na_values = [{listed}] in [data]). "
        "If they are real values, fix them in the file (a typo, a unit, a decimal comma).",
        column=name, num_replaced=total,
        values={str(v): int(c) for v, c in replaced.head(NUM_SHOWN).items()},
        num_distinct=len(replaced))


def coerce_numeric_text(frame: pd.DataFrame, keep: Iterable[str] = (), decimal: str = "."
                        ) -> tuple[pd.DataFrame, list[Finding]]:
    """Text columns whose non-marker cells are >= 90% numbers, and whose other cells are all
    missing-value markers -> float64, the markers missing. `keep`: columns left as they are
    (declared group and time keys: their values are labels, '12' and 'online' alike);
    `decimal`: the file's decimal mark ('0,5' and '1.234,5' with ',').

    A text column whose every cell is a number stays text: a CSV reader would have read it as
    numbers, so it was stored as text on purpose (zip codes, '00123' ids in a parquet file)."""
    findings: list[Finding] = []
    converted = frame
    kept = set(keep)
    for name in frame.columns:
        column = frame[name]
        parsed = _parse(column, decimal) if is_text(column) and name not in kept else None
        if parsed is None:
            findings += _mixed_text(str(name), column, decimal) \
                if is_text(column) and name not in kept else []
            continue
        numbers, _, formatted = parsed
        replaced = _replaced(column, numbers)
        if len(replaced) == 0 and formatted is None:
            continue  # plain numbers stored as text on purpose (see above)
        real = replaced[~folded(pd.Series(replaced.index, dtype=object)).isin(
            COMMON_MARKERS).to_numpy()]
        if len(real):  # text that is no marker: real values, the column stays text
            findings.append(_kept_as_text(str(name), real, column))
            continue
        converted = converted.copy() if converted is frame else converted
        converted[name] = numbers
        num_numbers = int(numbers.notna().sum())
        if formatted is not None and formatted.removed:  # not for plain '0,5'
            findings.append(_formatted_finding(str(name), formatted, num_numbers))
        if len(replaced):
            findings.append(_finding(str(name), replaced, num_numbers))
    return converted, findings


def _mixed_text(name: str, column: pd.Series, decimal: str) -> list[Finding]:
    """A text column whose cells are MIXED_SHARE to NUMERIC_SHARE numbers: kept as text (its
    other cells are real values), with the warning that names them."""
    parsed = _parse(column, decimal, MIXED_SHARE)
    if parsed is None:
        return []
    replaced = _replaced(column, parsed[0])
    real = replaced[~folded(pd.Series(replaced.index, dtype=object)).isin(
        COMMON_MARKERS).to_numpy()]
    return [_kept_as_text(name, real, column)] if len(real) else []


def _formatted_finding(name: str, formatted: Formatted, num_numbers: int) -> Finding:
    return Finding(
        "data", Severity.INFO, "numbers_from_text",
        f"column '{name}': {num_numbers:,} values like '{formatted.example}' are read as "
        f"numbers ({formatted.removed} removed"
        + ("; '5.3%' is read as 5.3, not 0.053)." if formatted.percent else ")."),
        dict(column=name, removed=formatted.removed, example=formatted.example,
             num_values=num_numbers),
        "Nothing to do if they are quantities (amounts, sizes, rates)"
        + (" and '.' marks thousands in this file; if it is the decimal point, set "
           "data.decimal = \".\" and rerun from the data stage" if "'.'" in formatted.removed
           else "") + ". If the column is a label whose rows belong together, declare it: "
        f"--set 'split.group_column=\"{name}\"', which keeps it as written.")


def _footer(column: pd.Series, real: pd.Series) -> tuple[list, bool]:
    """(positions of the rows holding the text cells, up to NUM_SHOWN: the file's rows after
    the header, a DataFrame's iloc rows, as source_rows numbers them, not index labels, which
    a filtered frame's are not; whether they look like a spreadsheet's summary row: a word
    such as 'Total' in the last FOOTER_ROWS rows)."""
    where = column.notna() & column.astype(str).isin([str(v) for v in real.index])
    positions = np.flatnonzero(where.to_numpy())
    footer = len(positions) <= FOOTER_ROWS and bool(positions.min() >= len(column) - FOOTER_ROWS) \
        and folded(pd.Series(real.index, dtype=object)).isin(SUMMARY_WORDS).all()
    return positions[:NUM_SHOWN].tolist(), footer


def _kept_as_text(name: str, real: pd.Series, column: pd.Series) -> Finding:
    shown, listed = listed_values(real)
    rows, footer = _footer(column, real)
    num_numbers = int(column.notna().sum() - column.astype(str).isin(
        [str(v) for v in real.index]).sum())  # markers count here too: rarely many
    share = num_numbers / max(1, int(column.notna().sum()))
    at = (f" at row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))} (counted from 0 "
          "after the header, as pandas numbers rows)")
    if footer:
        return warning(
            "data", "text_in_numeric_column",
            f"column '{name}' holds numbers except {shown}{at}, at the end of the table: "
            "it looks like a spreadsheet's summary row, and it made the column text "
            "(categories; its numbers lose their order). Its other cells (a sum in the "
            "target) are no sample either.",
            f"Delete the summary row{'s' if len(rows) > 1 else ''} from the file and rerun "
            "from the data stage.",
            column=name, num_text=int(real.sum()), rows=rows, summary_row=True,
            share_numbers=round(share, 4),
            values={str(v): int(c) for v, c in real.head(NUM_SHOWN).items()}, kept_as_text=True)
    return warning(
        "data", "text_in_numeric_column",
        f"column '{name}' holds numbers ({num_numbers:,} cells, {share:.0%}) except "
        f"{int(real.sum())} cells ({shown})"
        f"{at if len(real) <= NUM_SHOWN and int(real.sum()) <= NUM_SHOWN else ''}: they are "
        "not missing-value markers, so the column is kept as text (categories; its numbers "
        "lose their order).",
        f"If those cells mean missing, list them: --set 'data.na_values=[{listed}]', and the "
        "column is read as numbers; if they are typos or units, fix them in the file; if "
        "they are values of another kind ('low', 'high'), move them to a column of their own "
        "in the file so this one is read as numbers; if the column is a label (codes, store "
        "numbers), nothing to do.",
        column=name, num_text=int(real.sum()), rows=rows, share_numbers=round(share, 4),
        values={str(v): int(c) for v, c in real.head(NUM_SHOWN).items()}, kept_as_text=True)


def mixed_number_columns(findings: Iterable[Finding]) -> dict[str, float]:
    """{column: share of its cells that are numbers} for the columns coerce_numeric_text kept
    as text though mostly numbers: a measurement with a few words, not a subject to group rows
    by. Read from its warnings, the one place that parsed them with the file's decimal mark:
    a second parse with '.' read '50,13' as text and gave a ';' file's column 0% (review VD3)."""
    return {f.evidence["column"]: f.evidence["share_numbers"] for f in findings
            if f.code == "text_in_numeric_column" and "share_numbers" in f.evidence}


def is_mostly_numeric(column: pd.Series) -> bool:
    """True for numbers, and for text that coerce_numeric_text would read as numbers (its
    other cells all markers: 'X1003' among numeric ids keeps them ids)."""
    if not is_text(column):
        return pd.api.types.is_numeric_dtype(column)
    parsed = _parse(column)
    if parsed is None:
        return False
    other = _replaced(column, parsed[0])
    return bool(folded(pd.Series(other.index, dtype=object)).isin(COMMON_MARKERS).all())


def read_numbers(values: pd.Series, decimal: str = ".") -> pd.Series:
    """float64 numbers of `values` read as a run reads its number columns (plain '1576.5',
    formatted '$1,576.50', '0,5' and '1.234,5 €' with `decimal` ','), NaN where a cell does
    not read: trainwise.predict's reader, so new rows parse as the training rows did."""
    return _numbers(values, decimal or ".")[0].astype(np.float64)
