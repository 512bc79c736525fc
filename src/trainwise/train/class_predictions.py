"""A classification's test predictions, kept once by the evaluate stage in test_predictions.csv
(the regression's file name): each test row's actual and predicted class and its probabilities,
so the run's accuracy, per-class scores and threshold can be checked, and another operating
point picked (precision at k, a cost), from the folder alone: without it a reviewer had to
reload the data and predict the split's test rows again (audit s14 C9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from trainwise.safe_write import replacing
from trainwise.spreadsheet import safe_frame
from trainwise.train.decision_threshold import apply_threshold
from trainwise.train.label_issues import probabilities
from trainwise.train.regression_predictions import key_cell

# past 20 classes one column per class buries the row (100 ImageNet-like classes, 100
# columns); the top 5 (top-5 accuracy's) say what the model hesitated between
MAX_CLASS_COLUMNS = 20
TOP_CLASSES = 5


def write_class_predictions(path: Path, rows: np.ndarray | None, outputs: torch.Tensor,
                            targets: torch.Tensor, names: list[str],
                            keys: dict[str, np.ndarray] | None = None,
                            record: dict[str, Any] | None = None,
                            probs: np.ndarray | None = None) -> None:
    """test_predictions.csv for a classification: `row` (the row of the data as loaded; empty
    for a source's own test part), the split's key columns (`keys`), `actual` and `predicted`
    (class names; predicted is the argmax, the class the metrics scored), with a kept two-class
    threshold (`record`: meta.json's decision_threshold) `predicted_at_threshold`, then
    `probability_<class>` per class as trainwise.predict names them, or past
    MAX_CLASS_COLUMNS classes `top1_class`, `top1_probability`, ... for the TOP_CLASSES most
    probable. `outputs`: the (N, K) logits the metrics scored, softmaxed as trainwise.predict
    does (float32), so its probabilities match these; `targets`: (N,) class indices (-100,
    ignored by the loss, leaves `actual` empty); `probs`: that softmax when the caller has it
    (the evaluate stage's, computed once)."""
    labels = np.asarray(names, dtype=object)
    probs = (probabilities(outputs) if probs is None else probs).astype(np.float64)
    y = targets.reshape(-1).numpy().astype(np.int64)
    known = (y >= 0) & (y < len(names))
    frame = pd.DataFrame({"row": _row_numbers(rows, len(y))})
    for column, values in (keys or {}).items():
        frame[column] = [key_cell(value) for value in values]
    frame["actual"] = np.where(known, labels[np.where(known, y, 0)], "")
    frame["predicted"] = labels[outputs.argmax(dim=1).numpy()]  # the logits' argmax, as scored
    if record is not None and record.get("threshold") is not None and len(names) == 2:
        frame["predicted_at_threshold"] = labels[apply_threshold(probs, record)]
    for column, values in probability_columns(probs, names).items():
        frame[column] = values
    with replacing(path, "w", newline="", encoding="utf-8") as handle:
        safe_frame(frame).to_csv(handle, index=False)  # class names as text: audit s16 S12


def probability_columns(probs: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """`probability_<class>` per class; past MAX_CLASS_COLUMNS classes, the TOP_CLASSES most
    probable of each row as `top<k>_class` and `top<k>_probability`, most probable first."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(names) <= MAX_CLASS_COLUMNS:
        return {f"probability_{name}": probs[:, k] for k, name in enumerate(names)}
    labels = np.asarray(names, dtype=object)
    # stable on the negated probabilities: a tie keeps the lower class index first, as argmax
    order = np.argsort(-probs, axis=1, kind="stable")[:, :TOP_CLASSES]
    columns: dict[str, np.ndarray] = {}
    for k in range(order.shape[1]):
        columns[f"top{k + 1}_class"] = labels[order[:, k]]
        columns[f"top{k + 1}_probability"] = np.take_along_axis(probs, order[:, k:k + 1],
                                                                axis=1)[:, 0]
    return columns


def _row_numbers(rows: np.ndarray | None, num_rows: int) -> list[Any]:
    """The source row of each test row, as the regression file numbers it; empty cells for a
    source's own test part, whose rows the split did not index."""
    return [""] * num_rows if rows is None else [int(r) for r in np.asarray(rows)]
