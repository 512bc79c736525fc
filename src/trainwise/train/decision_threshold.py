"""The decision threshold a two-class run picked on validation, as data the run folder keeps.

The argmax answers the rare class only when its probability passes 0.5; on 5% positives a
model that ranks them well may never get there (user audit s12 S2: every one of 100,000 rows
answered '0'). The run picks the F1-best threshold on the validation split each epoch
(ranking.best_f1_threshold); this module turns the best epoch's into meta.json's
"decision_threshold", scores the test rows once at it (legitimate: it was picked on
validation only, never on test) and applies it to new rows (trainwise.predict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainwise.train.class_names import class_name

META_KEY = "decision_threshold"
# the test row's keys for the scores at the threshold, beside the argmax's test_* numbers
AT_THRESHOLD_KEYS = ("test_threshold", "test_threshold_precision", "test_threshold_recall",
                     "test_threshold_f1", "test_threshold_balanced_accuracy")


def threshold_record(picked: dict[str, Any] | None, names: list[str]) -> dict[str, Any] | None:
    """meta.json's "decision_threshold" from ranking_verdict.validation_threshold's dict:
    predict class `positive_class` when its probability is >= `threshold`, else the other."""
    if picked is None or len(names) != 2:
        return None
    return {"positive_class": class_name(names, picked["class"]),
            "positive_index": int(picked["class"]), "threshold": float(picked["threshold"]),
            "picked_on": "validation", "metric": "F1",
            "validation": {k: float(picked[k]) for k in ("f1", "precision", "recall")}}


def apply_threshold(probs: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """(N,) class indices: the positive class where P(positive) >= threshold, else the other
    (two classes: index 1 - positive)."""
    positive = int(record["positive_index"])
    hit = np.asarray(probs)[:, positive] >= record["threshold"]
    return np.where(hit, positive, 1 - positive)


def scores_at_threshold(probs: np.ndarray, targets: np.ndarray,
                        record: dict[str, Any]) -> dict[str, float]:
    """Precision, recall and F1 of the positive class and the balanced accuracy on the rows
    when the threshold decides; 0 precision when no row passes it (sklearn's zero_division)."""
    y = np.asarray(targets).reshape(-1).astype(np.int64)
    keep = (y >= 0) & (y < 2)  # an ignore_index (-100) is left out, as by the loss
    y, predicted = y[keep], apply_threshold(np.asarray(probs)[keep], record)
    positive = int(record["positive_index"])
    true_pos = int(((predicted == positive) & (y == positive)).sum())
    said, actual = int((predicted == positive).sum()), int((y == positive).sum())
    negatives = int((y != positive).sum())
    precision = true_pos / said if said else 0.0
    recall = true_pos / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_neg = int(((predicted != positive) & (y != positive)).sum())
    specificity = true_neg / negatives if negatives else 0.0
    return dict(zip(AT_THRESHOLD_KEYS, (record["threshold"], precision, recall, f1,
                                        (recall + specificity) / 2), strict=True))


def threshold_text(row: dict[str, Any], record: dict[str, Any] | None) -> str:
    """'at the threshold picked on validation, P('1') >= 0.268: precision 38%, recall 45%,
    F1 0.42, balanced accuracy 70.6%', or '' when the run has none."""
    if record is None or "test_threshold_f1" not in row:
        return ""
    return (f"at the decision threshold picked on validation, P('{record['positive_class']}') "
            f">= {record['threshold']:.3g}: precision {row['test_threshold_precision']:.0%}, "
            f"recall {row['test_threshold_recall']:.0%}, F1 {row['test_threshold_f1']:.2f}, "
            f"balanced accuracy {row['test_threshold_balanced_accuracy']:.1%} "
            "(trainwise predict --threshold best applies it)")


def run_threshold(folder: Path, names: list[str]) -> dict[str, Any] | None:
    """A finished run's threshold: meta.json's, else (a run from before meta.json kept it) the
    best epoch's validation pick in history.jsonl, the one the evaluate stage read."""
    from trainwise.rundir import read_history, read_meta
    from trainwise.train.ranking_verdict import validation_threshold

    record = read_meta(folder).get(META_KEY)
    if isinstance(record, dict):
        return record
    return threshold_record(validation_threshold(read_history(folder)), names)
