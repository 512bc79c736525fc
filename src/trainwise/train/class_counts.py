"""Per-class counts of the validation split, kept in each epoch row (`val_class_counts`).

The epoch rows carried balanced accuracy alone, which tells that classes are missed but not
which (audit s9 I2, I7: recall 0 on the 2% positives, or on two of six classes, and nothing
named them). The (C, C) confusion matrix would name them, but per epoch it grows with C^2
(1000 classes: a million numbers an epoch); three (C,) lists hold what the diagnosis reads:
each class's rows, how many of them the model got right, and how often it answered the class.
"""

from __future__ import annotations

from typing import Any

COUNTS_KEY = "class_counts"  # "val_class_counts" in an epoch row


def with_class_counts(row: dict[str, Any], prefix: str = "val") -> dict[str, Any]:
    """`row` (a copy) with its `{prefix}_confusion` matrix (rows true, columns predicted)
    replaced by `{prefix}_class_counts`: {"rows": [...], "right": [...], "predicted": [...]};
    a row without a matrix (regression) comes back unchanged."""
    matrix = row.get(f"{prefix}_confusion")
    if not isinstance(matrix, list):
        return dict(row)
    kept = {key: value for key, value in row.items() if key != f"{prefix}_confusion"}
    kept[f"{prefix}_{COUNTS_KEY}"] = {
        "rows": [int(sum(line)) for line in matrix],
        "right": [int(line[i]) for i, line in enumerate(matrix)],
        "predicted": [int(sum(column)) for column in zip(*matrix, strict=True)],
    }
    return kept


def class_counts_of(row: dict[str, Any], prefix: str = "val"
                    ) -> tuple[list[int], list[int], list[int]] | None:
    """(rows, right, predicted) per class from an epoch row; None when the row has none (a
    history written before they were recorded, or a Monitor given only val_loss)."""
    counts = row.get(f"{prefix}_{COUNTS_KEY}")
    if not isinstance(counts, dict):
        return None
    try:
        lists = [[int(v) for v in counts[key]] for key in ("rows", "right", "predicted")]
    except (KeyError, TypeError, ValueError):
        return None  # hand-edited or foreign: absent rather than a failed diagnosis
    if not lists[0] or len({len(values) for values in lists}) != 1:
        return None
    return lists[0], lists[1], lists[2]
