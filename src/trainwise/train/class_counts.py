"""Per-class counts of the validation split, kept in each epoch row (`val_class_counts`).

The epoch rows carried balanced accuracy alone, which tells that classes are missed but not
which (audit s9 I2, I7: recall 0 on the 2% positives, or on two of six classes, and nothing
named them). The (C, C) confusion matrix would name them, but per epoch it grows with C^2
(1000 classes: a million numbers an epoch); three (C,) lists hold what the diagnosis reads:
each class's rows, how many of them the model got right, and how often it answered the class.
"""

from __future__ import annotations

from typing import Any

import torch

COUNTS_KEY = "class_counts"  # "val_class_counts" in an epoch row


def class_counts(confusion: torch.Tensor | list[list[int]]) -> dict[str, list[int]]:
    """The (C, C) confusion matrix's margins (rows true, columns predicted), as evaluate()
    stores them in `{prefix}_class_counts`: {"rows": each class's rows, "right": its diagonal
    cell, "predicted": how often the model answered it}. Three tensor reductions: the one place
    they are derived (per_class, the report's intervals and the diagnosis read them)."""
    matrix = torch.as_tensor(confusion, dtype=torch.int64)
    return {"rows": matrix.sum(dim=1).tolist(), "right": matrix.diagonal().tolist(),
            "predicted": matrix.sum(dim=0).tolist()}


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
