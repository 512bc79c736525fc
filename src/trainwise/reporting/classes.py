"""The test split per class: a precision / recall / F1 table and the confusion matrix.

Tables, not figures: the counts are what a reader looks up ("how many 'yes' did it call
'no'?"), they stay exact and searchable, and they cost no rendering time. A matrix above
MAX_MATRIX_CLASSES classes is unreadable as a grid; the most frequent confusions are listed
instead.
"""

from __future__ import annotations

from typing import Any

from trainwise.train.class_metrics import MAX_MATRIX_CLASSES, class_name, top_confusions

Row = dict[str, Any]


def class_tables(test: Row, class_names: list[str]) -> dict[str, Any]:
    """The template's per-class rows, and either the full matrix or the top confusions."""
    per_class, confusion = test.get("test_per_class"), test.get("test_confusion")
    tables: dict[str, Any] = {"class_rows": [], "confusion": None, "top_confusions": []}
    if isinstance(per_class, dict):
        tables["class_rows"] = _class_rows(per_class, class_names)
    if not isinstance(confusion, list) or not confusion:
        return tables
    if len(confusion) <= MAX_MATRIX_CLASSES:
        tables["confusion"] = _matrix(confusion, class_names)
    else:
        tables["top_confusions"] = [
            {"true": class_name(class_names, t), "predicted": class_name(class_names, p),
             "count": n, "share": n / max(sum(confusion[t]), 1)}
            for t, p, n in top_confusions(confusion)]
    return tables


def _class_rows(per_class: dict[str, list[Any]], class_names: list[str]) -> list[Row]:
    keys = ("precision", "recall", "f1", "support")
    columns = [per_class.get(key) or [] for key in keys]
    rows = [{"name": class_name(class_names, i), **dict(zip(keys, values, strict=True))}
            for i, values in enumerate(zip(*columns, strict=True))]
    for row in rows:  # None: undefined (0 / 0), which 0.0 % would pass off as a failure
        row["precision_text"] = _percent(row["precision"], "n/a (never predicted)")
        row["recall_text"] = _percent(row["recall"], "n/a (no test rows)")
        row["f1_text"] = "n/a" if row["f1"] is None else f"{row['f1']:.3f}"
    return rows


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
