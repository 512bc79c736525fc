"""Threshold-free classification metrics: how well the predicted probabilities rank the rows.

Accuracy, balanced accuracy and the confusion matrix all read the argmax, one decision
threshold (0.5 for two classes). A model on 2% positives may rank them almost perfectly
(ROC-AUC 0.98) and still never give one of them a probability above 0.5: every argmax metric
then says "always the majority class", as if it had learned nothing. ROC-AUC and average
precision (the area under the precision-recall curve) judge the scores themselves.

scikit-learn computes them (roc_auc_score, average_precision_score, precision_recall_curve);
this module only decides when they are defined and which class is the positive one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve, roc_auc_score

from trainwise.train.class_names import class_name

# sklearn's one-vs-rest AUC sorts the rows once per class: ~40 ms for 10,000 rows of 10
# classes, ~0.6 s for 100 classes, ~30 s for 1,000. Above this many classes it would slow every
# epoch's validation noticeably, and the macro AUC of hundreds of classes says little anyway.
MAX_RANKED_CLASSES = 20
# The least ROC-AUC read as "the scores carry signal", whatever the rows: 0.5-0.6 is "no
# discrimination" (Hosmer & Lemeshow), too little to act on even when it is not luck.
MIN_SIGNAL_AUC = 0.6
# F1 values this close are one plateau (float rounding of equal counts, not a real gain)
F1_TIE = 1e-12
NUM_NAMED = 5  # classes without rows named in the headline's n/a clause; the rest counted


def chance_auc_high(rows: Sequence[int] | None) -> float | None:
    """The least ROC-AUC that random scores rarely reach on a split with these per-class
    row counts: 0.5 + 2 SD of the AUC under no signal (Hanley & McNeil 1982, the Mann-Whitney
    statistic: SD = sqrt((n1 + n2 + 1) / (12 n1 n2))), and at least MIN_SIGNAL_AUC. n1 is the
    rarest present class, n2 the rest: that class's one-vs-rest AUC is the noisiest, so for a
    macro mean over more classes the bound errs on the side of "no signal". 5 positives
    among 200 negatives: 0.76 (random scores pass 0.6 in 23% of draws); 20 among 980: 0.63;
    no counts known: MIN_SIGNAL_AUC. None where the bound reaches 1 (an AUC cannot pass it):
    1 row of the rarest class (~1.078 whatever the rest: audit s16 S8), or 2 rows among
    under 7; see too_few_to_rank."""
    present = [int(r) for r in rows or () if r > 0]
    if len(present) < 2:
        return MIN_SIGNAL_AUC
    n1 = min(present)
    n2 = sum(present) - n1
    high = 0.5 + 2 * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return None if high >= 1 else max(MIN_SIGNAL_AUC, high)


def ranks_above_chance(auc: float, rows: Sequence[int] | None) -> bool:
    """Whether a ROC-AUC on a split with these per-class row counts says the scores tell
    the classes apart (see chance_auc_high). The one test of "signal in the scores": the
    train stage's collapse rule and the evaluate stage's verdict both ask it. False where
    the rows cannot tell (chance_auc_high None): no AUC is evidence there."""
    bound = chance_auc_high(rows)
    return bound is not None and auc >= bound


# 3 rows of each class among 7+ rows bring the bound under 1 (0.5 + 2 SD: 0.97 for 3 vs 4)
ROWS_TO_RANK = 3


def too_few_to_rank(rows: Sequence[int], names: Sequence[str] | None, split: str) -> str:
    """Why chance_auc_high is None on these per-class counts, for a message: "with 1 test
    row of class 'x' (of 800 rows), random scores can reach a ROC-AUC near 1: too few rows of
    class 'x' to judge the ranking"."""
    n1, rarest = min((int(r), i) for i, r in enumerate(rows) if r > 0)
    named = f"'{class_name(names, rarest)}'"
    return (f"with {n1} {split} row{'s' if n1 > 1 else ''} of class {named} (of "
            f"{sum(int(r) for r in rows)} rows), random scores can reach a ROC-AUC near 1: "
            f"too few rows of class {named} to judge the ranking")


def more_rows_to_rank(split: str) -> str:
    """The fix for too_few_to_rank: what brings chance_auc_high under 1."""
    # split.*, not data.*: the keys live in SplitConfig (review s16 VS5: data.test_fraction
    # was a config error when pasted); test_fraction cuts a test part only from a source
    # without its own
    fraction = "split.val_fraction" if split == "validation" else \
        "split.test_fraction (when the data has no test part of its own)"
    return (f"To judge the ranking, give the {split} split at least {ROWS_TO_RANK} rows of "
            f"every class: raise {fraction}, or collect more rows of the rare classes "
            "(data stage).")


# Per epoch the multiclass AUC is left out above this many rows x classes: 10,000 rows of 20
# classes take ~80 ms, 100,000 of 20 ~0.7 s, 70-90% of the epoch's metric time. The report
# and the evaluate verdict read the test split's; the train stage's collapse rule reads the
# best epoch's and, without one, judges by the loss (diagnose_collapse._loss_note). Two
# classes stay: one sort's worth, and the best epoch's F1 threshold is read from the row.
EPOCH_RANKED_CELLS = 200_000


def ranking_metrics(probs: torch.Tensor, targets: torch.Tensor, prefix: str,
                    pick_threshold: bool = False, every_epoch: bool = False
                    ) -> dict[str, Any]:
    """`{prefix}_roc_auc` for a classification split (None where undefined) and, for two
    classes, `{prefix}_average_precision` of the positive class, `{prefix}_ap_chance` (its
    share of the rows: what AP a random ranking scores) and `{prefix}_positive_class`.

    The positive class is the rarer one in the split (ties: class 1): its AP is the number
    that moves; the majority class's AP sits near its own share whatever the model does.
    Multiclass: the macro one-vs-rest ROC-AUC. Undefined (None) when some class has no row
    in the split (its AUC has no positives to rank), when a probability is not finite, or
    above MAX_RANKED_CLASSES classes; but a split scored once (not `every_epoch`: the test
    row) over 2 classes averages over the classes it holds, with no class cap.
    `pick_threshold` (validation only: a threshold picked on the test split would flatter the
    test score) adds `{prefix}_f1_threshold`.
    `every_epoch` (the validation split, evaluated each epoch): over 2 classes, no keys at all
    (not computed, rather than undefined) when rows x classes exceed EPOCH_RANKED_CELLS.
    """
    num_classes = int(probs.shape[1])
    if every_epoch and num_classes > 2 and len(probs) * num_classes > EPOCH_RANKED_CELLS:
        return {}
    y = targets.long().reshape(-1).cpu().numpy()
    keep = (y >= 0) & (y < num_classes)  # an ignore_index (-100) is left out, as by the loss
    y = y[keep]
    row: dict[str, Any] = {f"{prefix}_roc_auc": None}
    counts = np.bincount(y, minlength=num_classes)
    if num_classes == 2:
        positive = 1 if counts[1] <= counts[0] else 0
        row.update({f"{prefix}_average_precision": None, f"{prefix}_positive_class": positive,
                    f"{prefix}_ap_chance": float(counts[positive] / max(len(y), 1))})
    if num_classes > 2 and not every_epoch:  # the test row, scored once: no class cap
        return {**row, **_present_classes_auc(probs, y, keep, counts, prefix)}
    if num_classes < 2 or num_classes > MAX_RANKED_CLASSES or (counts == 0).any():
        return row  # before the float64 copy of the probabilities: 100 classes, 100k rows
    p = probs.double().cpu().numpy()[keep]
    if not np.isfinite(p).all():
        return row
    if num_classes > 2:
        row[f"{prefix}_roc_auc"] = macro_ovr_auc(p, y, num_classes)
        return row
    is_positive, score = y == positive, p[:, positive]
    row[f"{prefix}_roc_auc"] = float(roc_auc_score(is_positive, score))
    # one precision-recall curve (a sort of the rows) for both: average_precision_score is
    # this very sum over it (sklearn's _binary_uninterpolated_average_precision), and the
    # validation split pays for it every epoch (~35 ms a curve at 100,000 rows)
    curve = precision_recall_curve(is_positive, score)
    row[f"{prefix}_average_precision"] = float(-np.sum(np.diff(curve[1]) * curve[0][:-1]))
    if pick_threshold:
        # with the positive rows it rests on: 9 of them make a shaky threshold (audit s13 F11)
        row[f"{prefix}_f1_threshold"] = {**best_f1_threshold(*curve, scores=score),
                                         "positives": int(counts[positive])}
    return row


def _present_classes_auc(probs: torch.Tensor, y: np.ndarray, keep: np.ndarray,
                         counts: np.ndarray, prefix: str) -> dict[str, Any]:
    """A split scored once (the test row), over 2 classes: present_classes_auc as
    `{prefix}_roc_auc`, and `{prefix}_auc_classes_left_out`, how many classes had no row
    (absent when none). No cap on the classes: one pass at ~5 ms for 1,200 rows of 60
    classes, where the per-epoch cap left 40-60-class runs without any threshold-free score
    (audit s14 C8)."""
    auc, left_out = present_classes_auc(probs.double().cpu().numpy()[keep], y, len(counts))
    row: dict[str, Any] = {f"{prefix}_roc_auc": auc}
    if left_out:  # only then: a 0 showed as a row of every multiclass report
        row[f"{prefix}_auc_classes_left_out"] = left_out
    return row


def present_classes_auc(probs: np.ndarray, y: np.ndarray,
                        num_classes: int) -> tuple[float | None, int]:
    """The macro one-vs-rest ROC-AUC of (N, C) `probs` over the classes that have rows in
    `y` (N labels in [0, C); each class's AUC ranks its rows against the rest, and one
    without rows has none), with how many classes had none; None under 2 present classes
    or with a probability not finite. Two present columns of a two-class softmax give the
    binary AUC (both columns rank the rows alike). The test row and the label check's
    held-out rows both read it (review s14 VE6)."""
    present = np.flatnonzero(np.bincount(y, minlength=num_classes) > 0)
    left_out = int(num_classes - len(present))
    p = np.asarray(probs, dtype=np.float64)[:, present]
    if len(present) < 2 or not np.isfinite(p).all():
        return None, left_out
    remap = np.zeros(num_classes, dtype=np.int64)
    remap[present] = np.arange(len(present))  # class index -> its column among the present
    return macro_ovr_auc(p, remap[y], len(present)), left_out


def macro_ovr_auc(probs: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """sklearn's roc_auc_score(y, probs, multi_class="ovr", average="macro"), as the
    Mann-Whitney U of each class's column (ties count half, as the ROC trapezoid does), from
    one rankdata over all columns. sklearn's version took ~25 ms per epoch on 1,000 rows x 10
    classes, mostly input checks, which put the monitored loop over its 1.10x overhead target
    (bench/overhead.py: 1.14x); this takes ~1 ms. Every class must have a row (checked by the
    caller)."""
    ranks = rankdata(probs, axis=0)  # average ranks within each column
    positives = np.bincount(y, minlength=num_classes).astype(np.float64)
    rank_sums = np.bincount(y, weights=ranks[np.arange(len(y)), y], minlength=num_classes)
    negatives = len(y) - positives
    per_class = (rank_sums - positives * (positives + 1) / 2) / (positives * negatives)
    return float(per_class.mean())


def best_f1_threshold(precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray,
                      scores: np.ndarray | None = None) -> dict[str, float]:
    """The score threshold (predict positive at score >= it) with the highest F1 on a
    precision-recall curve (sklearn's precision_recall_curve), with its F1, precision and
    recall. Every threshold between the highest score below the best curve point and that
    point scores the same F1; the middle of that plateau is kept, not its edge (audit s13
    P8: 0.9905, the lowest positive's own probability, on a plateau from 0.0014 up, lost 6 of
    42 test positives and 6 points of balanced accuracy). `scores` (the split's) give the
    plateau's floor where the curve starts above the lowest score (older scikit-learn)."""
    # the curve's last point (recall 0, precision 1) has no threshold
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(precision), where=(precision + recall) > 0)
    tied = f1 >= f1.max() - F1_TIE
    first = int(np.argmax(tied))  # the lowest tied threshold, and the tied run above it
    last = first + int(np.argmin(np.append(tied[first:], False))) - 1
    below = [] if scores is None else np.asarray(scores)[np.asarray(scores) < thresholds[first]]
    floor = float(thresholds[first - 1]) if first else float(np.max(below, initial=0.0))
    middle = (floor + float(thresholds[last])) / 2
    at = int(np.searchsorted(thresholds, middle))  # its curve point: the same rows predicted
    return {"threshold": middle, "f1": float(f1[at]), "precision": float(precision[at]),
            "recall": float(recall[at])}


def ranking_text(row: dict[str, Any], names: list[str] | None = None,
                 prefix: str = "test") -> str:
    """'ROC-AUC 0.984, average precision 0.690 for class '1' vs 0.020 by chance', 'macro
    ROC-AUC 0.951 (one-vs-rest)', or why it is n/a; '' for a row without them (regression,
    a run from before they were recorded). `names` None leaves the class name out."""
    if f"{prefix}_roc_auc" not in row:
        return ""
    auc, ap = row[f"{prefix}_roc_auc"], row.get(f"{prefix}_average_precision")
    if auc is None:
        return f"ROC-AUC n/a ({_why_no_auc(row, names, prefix)})"
    if f"{prefix}_positive_class" not in row:
        return f"macro ROC-AUC {auc:.3f} (one-vs-rest{_left_out(row, names, prefix)})"
    index = row[f"{prefix}_positive_class"]
    of = "" if names is None else f" for class '{class_name(names, index)}'"
    return (f"ROC-AUC {auc:.3f}, average precision {ap:.3f}{of} vs "
            f"{row[f'{prefix}_ap_chance']:.3f} by chance")


def _left_out(row: dict[str, Any], names: list[str] | None, prefix: str) -> str:
    """' over the 24 classes with test rows; 1 class without test rows left out', or '' when
    none was (review s14 VE11: "over the classes with rows here: 1 without any left out"
    said neither what the 1 counts nor where "here" is)."""
    left_out = row.get(f"{prefix}_auc_classes_left_out") or 0
    if not left_out:
        return ""
    rows = f"{prefix} rows"
    present = f"the {len(names) - left_out} classes" if names else "the classes"
    return (f" over {present} with {rows}; {left_out} class{'es' if left_out > 1 else ''} "
            f"without {rows} left out")


def _why_no_auc(row: dict[str, Any], names: list[str] | None, prefix: str) -> str:
    """Which class has no row (from the per-class support, where the row has it), or the
    class count above MAX_RANKED_CLASSES."""
    support = (row.get(f"{prefix}_per_class") or {}).get("support") or []
    absent = [i for i, n in enumerate(support) if n == 0]
    if absent:  # named up to NUM_NAMED: 442 one-row classes made a 7,926-character headline
        quoted = ", ".join(f"'{class_name(names, i)}'" if names else str(i)
                           for i in absent[:NUM_NAMED])
        quoted += f" and {len(absent) - NUM_NAMED} more" if len(absent) > NUM_NAMED else ""
        return (f"class{'es' if len(absent) > 1 else ''} {quoted} "
                f"{'have' if len(absent) > 1 else 'has'} no row in this split: each class's "
                "AUC ranks its rows against the rest")
    if len(support) > MAX_RANKED_CLASSES:
        return f"not computed above {MAX_RANKED_CLASSES} classes: it would slow every epoch"
    return (f"a class has no row in this split, a probability is not finite, or there are "
            f"over {MAX_RANKED_CLASSES} classes")
