"""The test split per class: a precision / recall / F1 table and the confusion matrix.

Tables, not figures: the counts are what a reader looks up ("how many 'yes' did it call
'no'?"), they stay exact and searchable, and they cost no rendering time. A matrix above
MAX_MATRIX_CLASSES classes is unreadable as a grid; the most frequent confusions are listed
instead.
"""

from __future__ import annotations

from typing import Any

from trainwise.train.class_counts import class_counts
from trainwise.train.class_metrics import MAX_MATRIX_CLASSES, top_confusions
from trainwise.train.class_names import class_name
from trainwise.train.intervals import percent, wilson

Row = dict[str, Any]
# Below this many rows one row moves a class's recall by over 10 points: the reliability
# diagram greys such bins for the same reason
FEW_ROWS = 10


def class_tables(test: Row, class_names: list[str],
                 val_counts: list[int] | None = None) -> dict[str, Any]:
    """The template's per-class rows (with 95% Wilson intervals when the matrix is there), a
    note on classes with fewer than FEW_ROWS test or validation rows (`val_counts`, the
    split's rows per class), and either the full matrix or the top confusions."""
    per_class, confusion = test.get("test_per_class"), test.get("test_confusion")
    tables: dict[str, Any] = {"class_rows": [], "confusion": None, "top_confusions": [],
                              "few_rows_note": ""}
    matrix = confusion if isinstance(confusion, list) and confusion else None
    if isinstance(per_class, dict):
        tables["class_rows"] = _class_rows(per_class, class_names, matrix)
        tables["few_rows_note"] = few_rows_note(per_class.get("support") or [], val_counts,
                                                class_names)
    if matrix is None:
        return tables
    if len(confusion) <= MAX_MATRIX_CLASSES:
        tables["confusion"] = _matrix(confusion, class_names)
    else:
        tables["top_confusions"] = [
            {"true": class_name(class_names, t), "predicted": class_name(class_names, p),
             "count": n, "share": n / max(sum(confusion[t]), 1)}
            for t, p, n in top_confusions(confusion)]
    return tables


def few_rows_note(test_counts: list[int], val_counts: list[int] | None,
                  class_names: list[str]) -> str:
    """Which classes have fewer than FEW_ROWS test rows, which fewer validation rows, and what
    each does: the test rows widen this table's intervals, the validation rows shake the
    per-epoch val_balanced_accuracy; '' when none has."""
    points = 100 // FEW_ROWS
    few_test = [f"'{class_name(class_names, i)}' ({n})" for i, n in enumerate(test_counts)
                if n < FEW_ROWS]
    few_val = [f"'{class_name(class_names, i)}' ({n})" for i, n in enumerate(val_counts or [])
               if n < FEW_ROWS]
    said = []
    if few_test:
        said.append(f"Fewer than {FEW_ROWS} test rows: {', '.join(few_test)}. One row moves "
                    f"such a class's recall in this table by more than {points} points, and "
                    "test balanced accuracy by that over the number of classes: read their "
                    "intervals, not the point values.")
    if few_val:
        said.append(f"Fewer than {FEW_ROWS} validation rows: {', '.join(few_val)}. One row "
                    f"there moves val_balanced_accuracy per epoch by more than {points} points "
                    "over the number of classes, so that curve is noisy.")
    if not said:
        return ""
    return " ".join(said) + " Collect more rows of these classes before trusting them."


def _class_rows(per_class: dict[str, list[Any]], class_names: list[str],
                confusion: list[list[int]] | None = None) -> list[Row]:
    keys = ("precision", "recall", "f1", "support")
    columns = [per_class.get(key) or [] for key in keys]
    rows = [{"name": class_name(class_names, i), **dict(zip(keys, values, strict=True))}
            for i, values in enumerate(zip(*columns, strict=True))]
    for row in rows:  # None: undefined (0 / 0), which 0.0 % would pass off as a failure
        row["precision_text"] = _percent(row["precision"], "n/a (never predicted)")
        row["recall_text"] = _percent(row["recall"], "n/a (no test rows)")
        row["f1_text"] = "n/a" if row["f1"] is None else f"{row['f1']:.3f}"
    if confusion is not None and len(confusion) == len(rows):
        counts = class_counts(confusion)  # hits over predicted (precision), over true (recall)
        for row, hits, predicted, true in zip(rows, counts["right"], counts["predicted"],
                                              counts["rows"], strict=True):
            row["precision_ci"] = _interval(hits, predicted)
            row["recall_ci"] = _interval(hits, true)
    return rows


def _interval(hits: int, rows: int) -> str:
    """'3.3 – 34.3 %', or '' where the proportion is undefined."""
    limits = wilson(hits, rows)
    return "" if limits is None else f"{percent(limits[0])} – {percent(limits[1])} %"


def _percent(value: float | None, undefined: str) -> str:
    return undefined if value is None else f"{100 * value:.1f} %"


def _matrix(confusion: list[list[int]], class_names: list[str]) -> dict[str, Any]:
    """Rows = true class, columns = predicted; each cell shaded by its share of the row
    (that class's recall on the diagonal), so a class the model never finds stands out."""
    names = [class_name(class_names, i) for i in range(len(confusion))]
    rows = []
    for i, counts in enumerate(confusion):
        total = max(sum(counts), 1)
        cells = [{"count": n, "share": round(n / total, 3), "correct": i == j}
                 for j, n in enumerate(counts)]
        rows.append({"name": names[i], "cells": cells, "total": sum(counts)})
    return {"names": names, "rows": rows}
