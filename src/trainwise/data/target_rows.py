"""The rows a table's target leaves to learn from: missing targets dropped with a warning that
names them, and the targets no model can learn (no rows left, a value unique to every row).

Audit s14: 3822 of 4000 rows dropped for a 'None' class were a note (C2); three 'n/a' costs
left 797 of 800 rows with no console line (R6); an empty target column crashed in the audit
("cannot reshape array of size 0", Z8); a date picked as the target trained a 120-class
model of one row each to the end, "ok" (Z16).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.coltypes import NA_MARKERS
from trainwise.data.errors import DataError
from trainwise.findings import Finding, warning

NUM_SHOWN = 5  # rows and markers named
MIN_ROWS = 3  # one row each for training, validation and test: fewer cannot be split at all
UNIQUE_SHARE = 0.5  # more classes than half the rows: most classes have one row, no label
MIN_UNIQUE_ROWS = 10  # below this, a few classes of 1-2 rows are a tiny table, not an id


def drop_missing_target(frame: pd.DataFrame, raw: pd.Series, target: str, source: str
                        ) -> tuple[pd.DataFrame, np.ndarray | None, list[Finding]]:
    """The rows with a target, each one's position in `frame` (None: all kept), so the rows
    named later (outliers, label issues) are rows of the file, not of what is left; and the
    warning naming the dropped rows and the text their target cells held in `raw` (the
    target as read, before markers were masked). Raises when fewer than MIN_ROWS remain."""
    if len(frame) == 0:
        raise DataError(f"'{source}' has its header but 0 rows: there is nothing to learn "
                        "from. Check that the file is the full export (not only its header), "
                        "then rerun from the data stage.")
    missing = frame[target].isna()
    kept = len(frame) - int(missing.sum())
    if kept < MIN_ROWS:
        raise DataError(_too_few_message(frame, raw, missing, target, source, kept))
    if not missing.any():
        return frame, None, []
    return (frame.loc[~missing].reset_index(drop=True), np.flatnonzero(~missing.to_numpy()),
            [_missing_warning(raw, missing, target)])


def without_marker_warning(findings: list[Finding], target: str) -> list[Finding]:
    """`findings` less the target's text_in_numeric_column warning when every cell it names
    is a marker pandas reads as missing ('NA' from R's write.csv): target_missing names the
    same rows and text, and that warning's "fix them in the file" was wrong for a documented
    marker (review s14 VD4). A typo ('12,3x') keeps it: that advice fits."""
    def markers_only(finding: Finding) -> bool:
        values = [str(v).strip().casefold() for v in finding.evidence["values"]]
        return (finding.evidence.get("num_distinct") == len(values)
                and all(v in NA_MARKERS for v in values))
    return [f for f in findings if not (f.code == "text_in_numeric_column"
                                        and f.evidence["column"] == target and markers_only(f))]


def _markers(raw: pd.Series, missing: pd.Series) -> dict[str, int]:
    """{text of a dropped target cell: count}, an empty or absent cell as 'empty'."""
    cells = raw[missing.to_numpy()]
    text = cells.astype(object).where(cells.notna(), "").astype(str)
    text = text.where(text.str.strip() != "", "empty")
    return {str(v): int(c) for v, c in text.value_counts().head(NUM_SHOWN).items()}


def _shown(markers: dict[str, int]) -> str:
    return ", ".join(f"{v} x{c}" if v == "empty" else f"{v!r} x{c}" for v, c in markers.items())


def _missing_warning(raw: pd.Series, missing: pd.Series, target: str) -> Finding:
    num = int(missing.sum())
    rows = np.flatnonzero(missing.to_numpy())
    markers = _markers(raw, missing)
    read = ", missing-value markers" if set(markers) - {"empty"} else ""
    shown_rows = ", ".join(map(str, rows[:NUM_SHOWN])) + (", ..." if num > NUM_SHOWN else "")
    return warning(
        "data", "target_missing",
        f"dropped {num} of {len(missing)} rows ({num / len(missing):.1%}) whose target "
        f"'{target}' is missing ({_shown(markers)}{read}), at rows {shown_rows} (counted from 0 "
        "after the header): the model neither trains nor is scored on them.",
        "If those rows have a known target, fill it in the file and rerun from the data "
        "stage; if a marker above is a real class, rename it in the file (a word such as "
        "'not applicable'); if they are unlabelled rows, nothing to do (predict on them "
        "later with `trainwise predict RUN_DIR FILE`).",
        column=target, num_rows=num, rows=rows[:NUM_SHOWN].tolist(), values=markers)


def _too_few_message(frame: pd.DataFrame, raw: pd.Series, missing: pd.Series, target: str,
                     source: str, kept: int) -> str:
    if kept == 0:
        seen = _shown(_markers(raw, missing))
        return (f"target column '{target}' of '{source}' is empty in every row ({len(frame)} "
                f"rows: {seen}): there is no label to learn. Is this the right column? Name "
                "the one holding the labels in data.target; a file of rows to predict on "
                "goes to `trainwise predict RUN_DIR FILE`.")
    without = f" ({int(missing.sum())} more without one)" if missing.any() else ""
    return (f"'{source}' has {kept} row{'s' if kept > 1 else ''} with a target "
            f"'{target}'{without}: at least {MIN_ROWS} are needed, one "
            "each for training, validation and test, and far more to learn anything. Add "
            "labelled rows to the file, then rerun from the data stage.")


def refuse_unique_target(num_classes: int, num_rows: int, target: str) -> None:
    """Stop a classification whose classes are nearly one per row: a date, an id or free
    text named as the target, which no model can learn (each class is seen once)."""
    if num_rows < MIN_UNIQUE_ROWS or num_classes <= UNIQUE_SHARE * num_rows:
        return
    raise DataError(
        f"target column '{target}' has {num_classes} different values in {num_rows} rows "
        f"(more than {UNIQUE_SHARE:.0%} of the rows are a class of their own): it looks like an "
        "identifier, a date or free text, not a label a model can learn. Name the column "
        "holding the labels in data.target; if the target is a quantity, set "
        "data.task = \"regression\" (--set 'data.task=\"regression\"').")
