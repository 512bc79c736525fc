"""What each cross-validation fold is scored against: its class counts and majority share (a
classification), its naive baselines (a regression), its time span (time folds); and the
metric and the wording those decide (pure: arrays and rows in, numbers and text out).

Audit s13 F4: on a 1-2% failure label every time window's accuracy equalled the window's
majority share (99.5% .. 95.3%, the model never answered a failure), yet the backtest quoted a
mean accuracy of 98.1% and called the fall a learning curve; it was the failure rate rising.
Audit s13 F12: an RMSE per window means little without the window's dates and its naive
forecast (a seasonal window is hard for every model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from trainwise.data.audit import IMBALANCE_RATIO
from trainwise.data.timesplit import format_time
from trainwise.train.regression_metrics import previous_values

# The score each fold reports: what a reader compares across folds, in the task's own units;
# balanced accuracy instead when the folds' classes are imbalanced (chosen_metric)
METRIC = {"classification": ("val_accuracy", "validation accuracy"),
          "regression": ("val_rmse", "validation RMSE")}
BALANCED = ("val_balanced_accuracy", "validation balanced accuracy")
# The threshold-free scores a fold keeps beside it when its best epoch has them (a two-class
# fold's average precision is what an imbalanced run is judged by, audit s14 C10)
RANKING_KEYS = ("val_roc_auc", "val_average_precision", "val_ap_chance")
# A fold's AP this many times a random ranking's expected AP (random_ap) ranks the rare class
# with signal; at most NEAR_CHANCE times, about as a random ranking does. Not times the class's
# share (review s15 VE7): with 1 to 10 positives in 800 rows a random ranking's AP averages
# 7x to 1.6x the share, and cleared 2x the share on 41% of 2-positive folds; against its
# expectation it clears 2x on 6% of folds (1,000 draws each of 1, 2, 4 and 10 positives), so
# three folds together 0.02%, and stays within 1.2x on 83-88%
ABOVE_CHANCE, NEAR_CHANCE = 2.0, 1.2
# Spearman's rho of scores against training rows from which the spread is called a learning
# curve: with 5 windows rho >= 0.7 means at most one pair out of order (rho 0.3, the audit's
# RMSEs 12.22, 11.58, 12.13, 11.82, 12.06, is no trend)
CURVE_RHO = 0.7


def fold_facts(y: np.ndarray, train: np.ndarray, val: np.ndarray, task: str,
               times: np.ndarray | None = None, series: np.ndarray | None = None,
               per_series: bool = False) -> dict[str, Any]:
    """meta.json's extra keys of one fold: class counts and majority share (classification),
    the training-mean and previous-value RMSE (regression; `per_series`: a split by time of
    each series, where the row before a val row is known at forecast time), the val span."""
    y = np.asarray(y).reshape(-1)
    facts: dict[str, Any] = {}
    if times is not None and len(val):
        facts["val_first"], facts["val_last"] = (format_time(np.min(times[val])),
                                                 format_time(np.max(times[val])))
    if task == "classification":
        counts = np.bincount(y[val].astype(np.int64), minlength=int(y.max()) + 1)
        facts["class_counts"] = counts.tolist()
        facts["majority_share"] = float(counts.max() / max(len(val), 1))
        return facts
    actual = y[val].astype(np.float64)
    facts["mean_rmse"] = float(np.sqrt(np.mean((actual - y[train].mean()) ** 2)))
    previous = previous_values(times, y, val, series) if per_series and times is not None \
        else None
    if previous is not None:
        facts["previous_rmse"] = float(np.sqrt(np.mean((actual - previous) ** 2)))
    return facts


def chosen_metric(rows: list[dict[str, Any]], task: str,
                  default: tuple[str, str]) -> tuple[str, str]:
    """Balanced accuracy when the folds' classes are imbalanced (smallest/largest below the
    data audit's IMBALANCE_RATIO, as the evaluate stage judges a run), else `default`."""
    counts = [row["class_counts"] for row in rows if row.get("class_counts")]
    if task != "classification" or not counts:
        return default
    width = max(len(c) for c in counts)
    total = np.sum([np.pad(c, (0, width - len(c))) for c in counts], axis=0)
    present = total[total > 0]
    if len(present) < 2 or present.min() / present.max() >= IMBALANCE_RATIO:
        return default
    return BALANCED


def right_rows(row: dict[str, Any]) -> int:
    """The fold's correctly answered validation rows, from its accuracy and row count."""
    return round(row["val_accuracy"] * row["val_rows"])


def at_majority(rows: list[dict[str, Any]]) -> bool:
    """True when no scored fold's accuracy beats answering its majority class for every row
    (right rows <= the majority class's rows): the model learned the class shares alone."""
    scored = [row for row in rows if row.get("val_accuracy") is not None
              and row.get("class_counts")]
    return bool(scored) and len(scored) == len(rows) and all(
        right_rows(row) <= max(row["class_counts"])
        for row in scored)


def learning_rho(rows: list[dict[str, Any]], key: str) -> float | None:
    """Spearman's rho of the fold scores (higher = better; RMSE negated) against their
    training rows; None when it is undefined (flat scores, fewer than 3 folds)."""
    scored = [row for row in rows if row.get(key) is not None and np.isfinite(row[key])]
    if len(scored) < 3:
        return None
    sign = -1.0 if key == "val_rmse" else 1.0
    scores = [sign * row[key] for row in scored]
    if np.ptp(scores) == 0:
        return None
    rho = float(spearmanr([row["train_rows"] for row in scored], scores)[0])
    return rho if np.isfinite(rho) else None


def shown(value: float | None, key: str) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if "accuracy" in key else f"{value:.4g}"


def window_text(row: dict[str, Any], key: str) -> str:
    """'2022-04-09 to 2022-07-15: 12.2 (previous value 17.1, training mean 27.6; trained on
    1165)': one window's score beside what it is judged against."""
    span = f"{row['val_first']} to {row['val_last']}: " if "val_first" in row else ""
    beside = []
    if key != "val_accuracy" and row.get("val_accuracy") is not None:
        beside.append(f"accuracy {shown(row['val_accuracy'], 'val_accuracy')}")
    if row.get("class_counts"):
        beside.append(f"majority share {row['majority_share']:.1%}, class counts "
                      + "/".join(str(n) for n in row["class_counts"]))
    if "previous_rmse" in row:
        beside.append(f"previous value {row['previous_rmse']:.4g}")
    if "mean_rmse" in row:
        beside.append(f"training mean {row['mean_rmse']:.4g}")
    beside_text = "; ".join(beside) + "; " if beside else ""
    return f"{span}{shown(row.get(key), key)} ({beside_text}trained on {row['train_rows']})"


def ap_said(ap: float, chance: float) -> str:
    """'0.302 (chance 0.0049)': one fold's AP beside its class's share, in one format for the
    fold line and the verdict; 3 significant digits, not 2 decimals, which wrote a 4-in-811
    share as "chance 0.00" (review s15 VE8)."""
    return f"{ap:.3g} (chance {chance:.2g})"


def ranking_words(row: dict[str, Any]) -> str:
    """', average precision 0.412 (chance 0.03)' for a fold row or best epoch that has it."""
    ap, chance = row.get("val_average_precision"), row.get("val_ap_chance")
    if ap is None or chance is None:
        return ""
    return f", average precision {ap_said(ap, chance)}"


def random_ap(positives: int, rows: int) -> float:
    """The expected average precision of a random ranking of `rows` with `positives` of the
    class. A positive at rank r (uniform on 1..N) has above it on average (r - 1)(P - 1) /
    (N - 1) others, so E[AP] = (H_N + (P - 1) / (N - 1) (N - H_N)) / N, H_N = sum 1 / r: the
    share P / N for many positives, H_N / N (7x the share for 1 in 800) for one."""
    if rows <= 1 or positives <= 0:
        return positives / max(rows, 1)
    harmonic = float(np.sum(1.0 / np.arange(1, rows + 1)))
    return (harmonic + (positives - 1) / (rows - 1) * (rows - harmonic)) / rows


def _random_ap_of(row: dict[str, Any]) -> float:
    """random_ap of a fold row: its rows from val_rows (or class_counts), its positives the
    chance (the positive class's share) times them; the share itself without a row count."""
    rows = row.get("val_rows") or sum(row.get("class_counts") or [])
    chance = row["val_ap_chance"]
    return random_ap(round(chance * rows), int(rows)) if rows else chance


def ap_verdict(rows: list[dict[str, Any]], unit: str) -> str:
    """' Average precision per fold: 0.41 (chance 0.03), ...: the model ranks the rare class
    well above a random ranking, so the inputs carry signal ...' when every fold has one."""
    pairs = [(row.get("val_average_precision"), row.get("val_ap_chance")) for row in rows]
    if not pairs or any(ap is None or not chance for ap, chance in pairs):
        return ""
    words = f" Average precision per {unit}: " + ", ".join(ap_said(*pair) for pair in pairs)
    randoms = [_random_ap_of(row) for row in rows]
    expected = (" (a random ranking of these rows scores " + ", ".join(
        f"{value:.2g}" for value in randoms) + " on average)")
    aps = [ap for ap, _ in pairs]
    if all(ap >= ABOVE_CHANCE * value for ap, value in zip(aps, randoms, strict=True)):
        return (words + ": the model ranks the rare class well above what a random ranking "
                f"scores{expected}, so the inputs carry signal the argmax does not use.")
    if all(ap <= NEAR_CHANCE * value for ap, value in zip(aps, randoms, strict=True)):
        return words + f": about what a random ranking scores{expected}."
    return words + f"{expected}."
