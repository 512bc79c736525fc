"""Reading a CSV file whose dialect may not be UTF-8 with commas.

A ';'-separated export (Excel in locales with a decimal comma) read with ',' is one column
named 'a;b;c;label', and every later message is about that column; a latin-1 file fails with
"'utf-8' codec can't decode". Both are said here, with the setting that reads the file.
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

import pandas as pd

from trainwise.data.errors import DataError
from trainwise.findings import Finding, info

OTHER_SEPARATORS = ";\t|"  # tried when the header holds no comma
SNIFF_BYTES = 64 * 1024  # csv.Sniffer reads this much of the file
DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")  # '0,4642': a number written with a decimal comma
DOT_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")  # '0.4642': a decimal point, which rules commas out
DECIMAL_SHARE = 0.5  # share of a column's sampled cells like '0,46' for it to be such a number
NAMES = {";": "';'", "\t": "tab", "|": "'|'", ",": "','"}


def _first_undecodable(path: Path, encoding: str) -> tuple[int, bytes]:
    """(line, byte) of the first byte `encoding` cannot decode; pandas' own error gives an
    offset into its read buffer, not the file, so the file is decoded again here in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[: exc.start].count(b"\n"), chunk[exc.start: exc.start + 1]
            line += chunk.count(b"\n")
    return line, b""


def _decode_error(path: Path, encoding: str) -> DataError:
    line, byte = _first_undecodable(path, encoding)
    return DataError(
        f"'{path}' is not {encoding} text: byte 0x{byte.hex()} on line {line} cannot be "
        f"decoded. Save the file as UTF-8 (Excel: 'CSV UTF-8'), or name its encoding: "
        "--set data.encoding=latin-1 (Western European exports; cp1252 for Windows, "
        "shift_jis, gbk, ...).")


def _sniff(path: Path, encoding: str) -> tuple[str, str]:
    """(separator, decimal) of a file whose header has no comma, or ('', '') if unclear."""
    with open(path, encoding=encoding, errors="replace", newline="") as file:
        sample = file.read(SNIFF_BYTES)
    try:
        separator = csv.Sniffer().sniff(sample, delimiters=OTHER_SEPARATORS).delimiter
    except csv.Error:  # no separator gives every line the same number of fields
        return "", ""
    return separator, _decimal(sample, separator)


def _decimal(sample: str, separator: str) -> str:
    """',' when some column's cells are mostly numbers like '0,46' and no cell has a decimal
    point, else '.'. Per column: text and whole-number columns (city, rooms) sit beside the
    decimal ones in a European export, so a share over all fields would miss them."""
    rows = list(csv.reader(sample.splitlines()[1:200], delimiter=separator))
    columns = [[c.strip() for c in column if c.strip()] for column in zip(*rows, strict=False)]
    if any(DOT_DECIMAL.match(cell) for column in columns for cell in column):
        return "."
    comma_columns = [column for column in columns if column and sum(
        bool(DECIMAL_COMMA.match(cell)) for cell in column) >= DECIMAL_SHARE * len(column)]
    return "," if comma_columns else "."


def _read(path: Path, sep: str, encoding: str, decimal: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, encoding=encoding, decimal=decimal)
    except UnicodeDecodeError:
        raise _decode_error(path, encoding) from None


def read_csv(path: Path, sep: str = "", encoding: str = "", decimal: str = ""
             ) -> tuple[pd.DataFrame, list[Finding]]:
    """`sep`/`decimal` '' = ',' and '.', or sniffed when the header holds no comma but a ';',
    tab or '|'; `encoding` '' = UTF-8. The finding says what was sniffed and how to override."""
    encoding = encoding or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"data.encoding = '{encoding}' is not an encoding Python knows. Use "
                        "one such as 'utf-8', 'latin-1', 'cp1252'.") from None
    frame = _read(path, sep or ",", encoding, decimal or ".")
    header = str(frame.columns[0]) if len(frame.columns) == 1 else ""
    if sep or not any(s in header for s in OTHER_SEPARATORS):
        return frame, []
    sniffed, sniffed_decimal = _sniff(path, encoding)
    if not sniffed:
        raise DataError(
            f"'{path}' reads as one column named {header!r}: its fields are not separated by "
            "commas. Name the separator: --set 'data.sep=\";\"' (or \"\\t\" for tabs).")
    decimal = decimal or sniffed_decimal
    frame = _read(path, sniffed, encoding, decimal)
    comma = ", with decimal commas ('0,5')" if decimal == "," else ""
    return frame, [info(
        "data", "csv_dialect",
        f"'{path.name}' has no comma in its header: read as {NAMES[sniffed]}-separated"
        f"{comma}, {len(frame.columns)} columns. If that is wrong, set data.sep and "
        "data.decimal.", sep=sniffed, decimal=decimal)]
