"""A two-class run's precision-recall curve on its test rows, with the argmax's operating point
and the threshold picked on validation marked (audit s14 C16): the threshold was four numbers
in a table, and a fraud analyst choosing a review budget needs the curve they sit on.

Drawn from test_predictions.csv (train/class_predictions.py), the rows and probabilities the
test metrics scored, so the marked points are those decisions exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

from trainwise.reporting.figures import PALETTE, TEST_COLOR, legend, new_axes, styled
from trainwise.spreadsheet import unquoted
from trainwise.train.regression_predictions import require_columns


def two_class_predictions(path: Path, record: dict[str, Any] | None,
                          rarer: str | None) -> dict[str, Any] | None:
    """The curve's inputs from a two-class run's test_predictions.csv: `actual` (class
    names), `probability` of the positive class, `positive` (a kept threshold's class, so the
    marked cut lies on the curve drawn; else `rarer`, the test split's rarer class the test
    AP is for), the argmax's `predicted` and, with a kept threshold, `at_threshold` and
    `threshold`; `table_note` when the two classes differ. None without the file, two
    probability columns or both classes in test."""
    if not path.exists():
        return None
    frame = _read(path)
    columns = [c for c in frame.columns if c.startswith("probability_")]
    names = [c.removeprefix("probability_") for c in columns]
    frame = frame[frame["actual"] != ""]  # a target the loss ignored has no class
    # a record with no kept threshold still names validation's class: not this curve's
    # (review s15 VE3)
    kept_record = record is not None and record.get("threshold") is not None
    positive = (record.get("positive_class") if kept_record else None) or rarer
    if len(columns) != 2 or positive not in names or frame["actual"].nunique() != 2:
        return None
    kept = kept_record and "predicted_at_threshold" in frame
    return {"actual": frame["actual"].to_numpy(), "positive": positive,
            "probability": frame[f"probability_{positive}"].to_numpy(np.float64),
            "predicted": frame["predicted"].to_numpy(),
            "at_threshold": frame["predicted_at_threshold"].to_numpy() if kept else None,
            "threshold": float(record["threshold"]) if kept and record else None,
            "table_note": _table_note(frame, positive, rarer, names)}


def _read(path: Path) -> pd.DataFrame:
    """test_predictions.csv with its class names as written before the spreadsheet quote
    (spreadsheet.py: a class '=x' is written \'=x, audit s16 S12), so they match meta.json's."""
    names = ("actual", "predicted", "predicted_at_threshold")
    frame = pd.read_csv(path, dtype=dict.fromkeys(names, str), keep_default_na=False)
    require_columns(frame, path, ["actual", "predicted"])
    for column in (name for name in names if name in frame):
        frame[column] = frame[column].map(unquoted)
    return frame


def _table_note(frame: pd.DataFrame, positive: str, rarer: str | None,
                names: list[str]) -> str | None:
    """When validation's rarer class (the threshold's) is not test's (the scores table's AP:
    a drifted time split, classes near 50/50), the legend says so: the curve's AP and chance
    differ from the table's (review s15 VE3: 0.963 for 'yes' drawn, 0.926 for 'no' scored)."""
    if rarer is None or rarer == positive or rarer not in names:
        return None
    ap = average_precision_score(frame["actual"] == rarer,
                                 frame[f"probability_{rarer}"].to_numpy(np.float64))
    return (f"drawn for '{positive}', the threshold's class; the scores table's average "
            f"precision {ap:.3f} is for '{rarer}', the test split's rarer class")


@styled
def precision_recall_figure(actual: np.ndarray, probability: np.ndarray, positive: str,
                            predicted: np.ndarray, at_threshold: np.ndarray | None = None,
                            threshold: float | None = None,
                            table_note: str | None = None) -> Figure:
    """Precision against recall of class `positive` over every cut of its probability, the
    chance line (its share of the rows: what a random ranking scores), and the decisions the
    run reports: the argmax's and, when kept, the validation-picked threshold's; `table_note`
    as a last legend line."""
    truth = actual == positive
    precision, recall, _ = precision_recall_curve(truth, probability)
    ap = average_precision_score(truth, probability)
    fig, ax = new_axes(f"Precision-recall of '{positive}' on the test split")
    ax.step(recall, precision, where="post", color=TEST_COLOR,
            label=f"test (average precision {ap:.3f})")
    ax.axhline(truth.mean(), color="#999999", linestyle=":", linewidth=1,
               label=f"chance ({truth.mean():.1%} of the rows)")
    points = [("argmax", predicted, PALETTE[0], "o")]
    if at_threshold is not None and threshold is not None:
        points.append((f"threshold {threshold:.3g}, picked on validation", at_threshold,
                       PALETTE[3], "D"))
    for label, decided, color, marker in points:
        said = decided == positive
        hit = int((said & truth).sum())
        point_precision = hit / said.sum() if said.any() else float("nan")
        point_recall = hit / truth.sum()
        ax.plot([point_recall], [0 if np.isnan(point_precision) else point_precision],
                marker=marker, color=color, linestyle="none", markersize=7, zorder=3,
                label=f"{label}: recall {point_recall:.1%}, precision "
                      + ("n/a (never predicted)" if np.isnan(point_precision)
                         else f"{point_precision:.1%}"))
    if table_note:
        ax.plot([], [], linestyle="none", label=table_note)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"recall (share of the '{positive}' rows found)")
    ax.set_ylabel("precision")
    legend(ax, loc="lower left")
    return fig
