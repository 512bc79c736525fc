"""Classification metrics beyond accuracy: confusion matrix, balanced accuracy, per-class
precision / recall / F1, and the majority-class baseline that accuracy must beat.

Everything is derived from one (C, C) confusion matrix, counted with a single bincount over
the N labels (the validation split once per epoch, the test split once per run). The test
split's matrix is what the report shows; each epoch row keeps only its margins (class_counts.py),
which per_class reads too. Written here rather than with one
torchmetrics object per metric because the numbers are a few divisions of that one matrix;
the definitions follow scikit-learn's (tests/test_class_metrics.py checks them against it),
including balanced accuracy leaving out a class absent from the targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainwise.data.audit import IMBALANCE_RATIO
from trainwise.findings import Finding, warning
from trainwise.train.class_counts import class_counts
from trainwise.train.class_names import class_name
from trainwise.train.data_first import data_first_fix
from trainwise.train.diagnose_common import class_weights_advice
from trainwise.train.intervals import (
    AccuracyInterval,
    accuracy_interval,
    at_chance,
    split_accuracy_interval,
)
from trainwise.train.never_predicted import never_predicted_finding
from trainwise.train.ranking_verdict import judged_by_ranking

# The model must beat "always the most frequent class" by this much (in accuracy) to count as
# having learned something: one point, and at least one more right answer on a small split.
# (Whether it beats chance, 1 / k, is intervals.at_chance's call.)
BASELINE_MARGIN = 0.01
MAX_MATRIX_CLASSES = 20  # larger matrices are unreadable as a table: the report lists the
NUM_TOP_CONFUSIONS = 10  # most frequent confusions instead


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class (sklearn's layout).
    Targets outside 0..C-1 (an ignore_index such as -100 in a user's own loader) are left
    out, as the loss leaves them out; bincount would fail on a negative index."""
    targets, predictions = targets.long().reshape(-1), predictions.long().reshape(-1)
    keep = (targets >= 0) & (targets < num_classes)
    index = targets[keep] * num_classes + predictions[keep]
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def balanced_accuracy(confusion: torch.Tensor) -> float:
    """Mean recall over the classes present in the targets (as sklearn, which leaves out a
    class with no true rows rather than counting its recall as 0 or 1)."""
    support = confusion.sum(dim=1)
    present = support > 0
    if not present.any():
        return float("nan")
    recall = confusion.diagonal()[present].double() / support[present].double()
    return float(recall.mean())


def per_class(confusion: torch.Tensor) -> dict[str, list[Any]]:
    """Per class: precision, recall, F1 and the number of true rows (support).

    None where undefined, as sklearn's zero_division=np.nan: precision of a class never
    predicted (0 / 0), recall of a class with no true rows. Printed as 0% they read as a model
    failure, when there is nothing to judge (a class absent from the split). F1 is
    2 TP / (2 TP + FP + FN), sklearn's since 1.3: 0 for a class with rows never predicted,
    None only for a class neither present nor predicted."""
    counts = class_counts(confusion)
    correct, support, predicted = counts["right"], counts["rows"], counts["predicted"]

    def ratio(top: list[int], bottom: list[int]) -> list[float | None]:
        return [t / b if b > 0 else None for t, b in zip(top, bottom, strict=True)]

    return {"precision": ratio(correct, predicted), "recall": ratio(correct, support),
            "f1": ratio([2 * c for c in correct], [s + p for s, p in zip(support, predicted,
                                                                         strict=True)]),
            "support": support}


def macro_f1(per_class_metrics: dict[str, list[Any]]) -> float | None:
    """The mean F1 over the classes where it is defined (sklearn's f1_score(average="macro",
    zero_division=np.nan) over every label: a class neither in the split nor predicted is
    left out, one with rows never predicted counts 0). The long-tail headline: every class
    weighs the same, as in balanced accuracy, but a class answered wrongly costs too."""
    values = [f for f in per_class_metrics["f1"] if f is not None]
    return float(np.mean(values)) if values else None


def top_confusions(confusion: list[list[int]], limit: int = NUM_TOP_CONFUSIONS
                   ) -> list[tuple[int, int, int]]:
    """The most frequent off-diagonal cells as (true class, predicted class, count)."""
    cells = [(count, true, pred) for true, row in enumerate(confusion)
             for pred, count in enumerate(row) if true != pred and count > 0]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [(true, pred, count) for count, true, pred in cells[:limit]]


def baseline_finding(num_correct: int, baseline_correct: int, num_rows: int,
                     baseline_name: str, balanced: float, num_classes: int = 0,
                     class_ratio: float = 0.0, lr: float | None = None,
                     counts: tuple[list[int], list[int]] | None = None,
                     grouped: AccuracyInterval | None = None,
                     data_first: str = "") -> Finding | None:
    """A warning when the model's test accuracy is not clearly above always answering the
    majority class: within BASELINE_MARGIN, or not even one more right answer.

    `num_classes` (classes among the test rows) says why. Balanced accuracy at chance
    (1 / k, intervals.at_chance, from `counts`: the per-class rows and right answers), or on
    balanced classes accuracy at chance (the majority class then scores about 1 / k
    itself), mean the model learned nothing: a training problem (the train stage's
    findings, `lr`, the peak learning rate training used). Only a model that tells the classes
    apart yet trails the baseline ignores the rare classes. `class_ratio` (the training
    split's smallest / largest class) decides whether class weights are worth naming.
    `grouped`: the accuracy's interval resampling the rows' groups, which near_baseline reads
    instead of Wilson's over rows (intervals.split_accuracy_interval). `data_first`: why the
    data stage comes before training when the model learned nothing (data_first.py).
    """
    margin = max(1, int(np.ceil(BASELINE_MARGIN * num_rows)))
    if num_correct - baseline_correct >= margin:
        return near_baseline(num_correct, baseline_correct, num_rows, baseline_name, grouped)
    accuracy, baseline = num_correct / num_rows, baseline_correct / num_rows
    relation = "no higher than" if num_correct <= baseline_correct else \
        f"less than {100 * margin / num_rows:.1f} percentage points above"
    said = (f"Test accuracy {accuracy:.2%} is {relation} {baseline:.2%}, the score of always "
            f"answering '{baseline_name}' (the training split's most frequent class) on the "
            f"same rows; balanced accuracy is {balanced:.1%}")
    evidence = dict(test_accuracy=round(accuracy, 6), baseline_accuracy=round(baseline, 6),
                    baseline_class=baseline_name, balanced_accuracy=round(balanced, 6),
                    num_correct=num_correct, baseline_correct=baseline_correct,
                    class_ratio=round(class_ratio, 4))
    chance = 1 / num_classes if num_classes else 0.0
    rows, right = counts if counts is not None else (None, None)
    balanced_at_chance = bool(num_classes) and at_chance(balanced, num_classes, rows, right)
    if balanced_at_chance or (num_classes and at_chance(accuracy, num_classes, [num_rows],
                                                        [num_correct])):
        why = (f", no better than chance ({chance:.1%})" if balanced_at_chance
               else f", and accuracy is no better than chance ({chance:.1%}) either: the "
               f"classes are balanced (smallest/largest {class_ratio:.2f} in training)")
        return _learned_nothing(said + why, class_ratio, lr, {**evidence, "chance": chance},
                                data_first)
    return warning(
        "evaluate", "below_majority_baseline",
        f"{said}. The accuracy says little here: the model may ignore the rarer classes.",
        "Judge the model by balanced accuracy and per-class recall (report, Test result). "
        f"Revisit the data stage's class balance: {class_weights_advice()}, collect more rows "
        "of the rare classes, or check that the features carry signal for them.", **evidence)


def near_baseline(num_correct: int, baseline_correct: int, num_rows: int,
                  baseline_name: str, grouped: AccuracyInterval | None = None
                  ) -> Finding | None:
    """A warning when the accuracy beats the majority baseline but its 95% interval reaches
    it (a user audit's 12 right against 10 on 20 rows, CI 38.7-78.1% against 50%, s11 M3):
    on these rows the model is not clearly above that baseline, as the README promises to
    say. None when the interval clears the baseline. `grouped`: the interval resampling the
    rows' groups (rows of one patient are not independent: audit s13 F10), used instead."""
    interval = grouped or accuracy_interval(num_correct, num_rows)
    baseline = baseline_correct / num_rows
    if interval is None or interval.low > baseline:
        return None
    return warning(
        "evaluate", "near_majority_baseline",
        f"Test accuracy {num_correct / num_rows:.1%} ({interval.text()}) is not clearly above "
        f"{baseline:.1%}, the score of always answering '{baseline_name}' (the training "
        f"split's most frequent class): {num_correct} right against {baseline_correct} is "
        f"within the noise of these {'groups' if grouped else 'rows'}.",
        "Do not read this score as a model that works. Read the train stage's findings "
        "(memorising, still improving), compare a simpler model (model stage), and score on "
        "more rows: collect more, or raise split.test_fraction (split stage).",
        test_accuracy=round(num_correct / num_rows, 6), baseline_accuracy=round(baseline, 6),
        baseline_class=baseline_name, num_correct=num_correct,
        baseline_correct=baseline_correct, accuracy_low=round(interval.low, 6))


def _learned_nothing(said: str, class_ratio: float, lr: float | None,
                     evidence: dict[str, Any], data_first: str = "") -> Finding:
    """The baseline warning when the model does no better than chance: the fix leads with
    training, or with the data stage when `data_first` (data_first.data_evidence's text)
    says the run's own evidence points there (audit s15 M7); class weights come only after
    it, on imbalanced classes."""
    used = "" if lr is None else f"peak {lr:.3g}; "
    balanced = class_ratio >= IMBALANCE_RATIO
    fix = data_first_fix(data_first, used) if data_first else (
        "Read the train stage's findings first (for instance a learning rate too low or "
        "too high, a plateau, vanishing gradients)"
        + ("; the classes are balanced, so class weights will not help. " if balanced
           else ". ")
        + f"Check the learning rate training used ({used}train.lr = \"auto\" measures one "
        "with the range test) and the epochs (train.max_epochs); if training looks healthy, "
        "check that the labels follow the inputs and the features carry signal (data stage).")
    if not balanced:  # always answering the majority is also what an imbalanced loss
        # rewards: the weights are the next thing to try
        fix += (f" The classes are imbalanced (smallest/largest {class_ratio:.2f}): once "
                f"training is sound, {class_weights_advice()}, or collect more rows of the rare "
                "classes (data stage).")
    return warning("evaluate", "below_majority_baseline", f"{said}: the model learned "
                   "nothing (it tells the classes apart no better than a constant answer).",
                   fix, **{**evidence, "chance": round(evidence["chance"], 6)})


def chance_finding(balanced: float, num_classes: int,
                   counts: tuple[list[int], list[int]] | None = None,
                   below_baseline: bool = True) -> Finding | None:
    """A warning when balanced accuracy is not clearly above 1 / k (intervals.at_chance, from
    `counts`: the per-class rows and right answers): always answering any one class, or
    guessing at random, scores that. `below_baseline`: the accuracy is below the
    majority-class baseline, which the weights explain (said only when it is)."""
    chance = 1 / max(num_classes, 1)
    if not at_chance(balanced, num_classes, *(counts or (None, None))):
        return None
    price = (" (its accuracy below the majority-class baseline is the price of the weights, "
             "not the problem)" if below_baseline else "")
    return warning(
        "evaluate", "balanced_accuracy_at_chance",
        f"Balanced accuracy {balanced:.1%} is not clearly above {chance:.1%}, what any "
        f"constant answer scores over {num_classes} classes: even with the class-weighted "
        f"loss the model barely tells the classes apart{price}.",
        "Revisit the data stage: the features may carry little signal for the rare classes "
        "(add informative features, collect more rare-class rows). If the training curves "
        "show underfitting, give the model more capacity (model.width) or epochs "
        "(train.max_epochs).",
        balanced_accuracy=round(balanced, 6), chance=round(chance, 6))


def class_results(confusion: list[list[int]], train_targets: np.ndarray,
                  class_names: list[str], class_weighted: bool = False,
                  lr: float | None = None, scores: dict[str, Any] | None = None,
                  val_threshold: dict[str, Any] | None = None,
                  time_budget_minutes: float | None = None, still_improving: bool = False,
                  data_first: str = "") -> tuple[dict[str, Any], list[Finding]]:
    """The test row's extra keys (the majority baseline, per-class metrics) and the
    baseline warning, from the test confusion matrix and the training labels.

    A class-weighted loss trades majority-class hits for rare-class recall, so its accuracy
    may fall below the majority baseline by design: it is held to balanced accuracy instead,
    against the 1 / k that any constant answer scores. `lr`: the peak lr training used, named
    when the model learned nothing. `scores`: the test row's ROC-AUC / average precision
    (ranking.py), which decide whether "no better than chance" at the argmax means the model
    learned nothing; `val_threshold`: the F1-best threshold on validation, named if not;
    `time_budget_minutes`: train.max_minutes when that clock ended training;
    `still_improving`: the train stage said so (the fix cites it only then); `data_first`:
    the run's evidence that a model at chance is the data's fault (data_first.py)."""
    matrix = torch.tensor(confusion, dtype=torch.int64)
    # (k,) training rows per class, counted once for the baseline, the balance and the
    # classes never answered
    train_counts = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=len(matrix))
    majority = majority_class(train_counts)
    num_rows = int(matrix.sum())
    # what "always the training majority" gets right on the test split: that class's rows
    baseline_correct = int(matrix[majority].sum()) if majority < len(matrix) else 0
    balanced = balanced_accuracy(matrix)
    extra = {"test_baseline_accuracy": baseline_correct / max(num_rows, 1),
             "test_baseline_class": class_name(class_names, majority),
             "test_per_class": per_class(matrix)}
    extra["test_macro_f1"] = macro_f1(extra["test_per_class"])
    if not num_rows:
        return extra, []
    counts = (matrix.sum(dim=1).tolist(), matrix.diagonal().tolist())
    present = int((matrix.sum(dim=1) > 0).sum())
    if present < 2:  # one class in test: every score is that class's recall, chance included
        return extra, [single_class_test(matrix, class_names)]
    if class_weighted:
        found = chance_finding(balanced, present, counts,
                               int(matrix.diagonal().sum()) < baseline_correct)
    else:
        found = baseline_finding(int(matrix.diagonal().sum()), baseline_correct, num_rows,
                                 extra["test_baseline_class"], balanced, present,
                                 class_ratio(train_counts), lr, counts,
                                 _grouped(scores), data_first)
    if found is not None and scores is not None:
        found = judged_by_ranking(found, matrix, scores, class_names, val_threshold,
                                  class_weighted, time_budget_minutes, still_improving)
    found_all = [found] if found else []
    # a verdict on the whole split already covers a class never answered; "not clearly above
    # the baseline" is about the score's noise, and a class never answered is still news
    if found is None or found.code == "near_majority_baseline":
        missed = never_predicted_finding(matrix, class_names, class_weighted,
                                         train_counts.tolist())
        found_all += [missed] if missed else []
    return extra, found_all


def single_class_test(matrix: torch.Tensor, class_names: list[str]) -> Finding:
    """The test rows all hold one class: accuracy and balanced accuracy are that class's
    recall, and chance (1 / 1) is 100%, so "balanced accuracy 100%, no better than chance
    (100%)" with lr advice was all a run said (audit s14 Z7). Nothing here judges the model;
    the fix is a test part with the other classes in it, not training."""
    only = int((matrix.sum(dim=1) > 0).nonzero()[0])
    name, num_rows = class_name(class_names, only), int(matrix.sum())
    right = int(matrix[only, only])
    missing = [class_name(class_names, k) for k in range(len(matrix)) if k != only]
    quoted = ", ".join(f"'{m}'" for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return warning(
        "evaluate", "test_single_class",
        f"The {num_rows} test rows are all '{name}' (none of {quoted}): accuracy and balanced "
        f"accuracy ({right / num_rows:.1%}, {right} right) only say how often the model "
        f"answers '{name}', and cannot judge whether it tells the classes apart.",
        "Score on a test part that holds every class: collect more rows of the classes "
        "missing from it (a class with too few rows is kept in training only, as the split "
        "stage says), or raise split.test_fraction (split stage). Meanwhile judge the model by "
        "the validation scores and the train stage's findings.",
        test_class=name, num_test_rows=num_rows, num_right=right)


def _grouped(scores: dict[str, Any] | None) -> AccuracyInterval | None:
    """The test accuracy's interval resampling its groups, when `scores` (the test row)
    carries one (group_interval.py); None for Wilson's."""
    interval = split_accuracy_interval(scores or {})
    return interval if interval is not None and interval.num_groups else None


def class_ratio(counts: np.ndarray) -> float:
    """The training split's smallest / largest class count (`counts`: rows per class), over
    the classes it holds (the data stage's class_balance ratio)."""
    present = counts[counts > 0]
    return float(present.min() / present.max()) if len(present) else 0.0


def majority_class(counts: np.ndarray) -> int:
    """The training split's most frequent class (`counts`: rows per class; ties: the lowest
    index). From the training split only, as a model could know it before seeing the test
    split."""
    return int(np.asarray(counts).argmax())


def lowest_recall(per_class_metrics: dict[str, list[Any]], class_names: list[str]
                  ) -> tuple[str, float] | None:
    """The class the model finds least often (among those with test rows)."""
    recalls = [(r, i) for i, (r, n) in enumerate(zip(per_class_metrics["recall"],
                                                      per_class_metrics["support"], strict=True))
               if n > 0]
    if not recalls:
        return None
    recall, index = min(recalls)
    return class_name(class_names, index), recall
