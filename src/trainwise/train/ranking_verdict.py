"""Whether "no better than chance at the argmax" means the model learned nothing.

The evaluate stage's baseline checks (class_metrics.py) read the confusion matrix, that is the
argmax. On 2% positives a model whose scores rank them very well (ROC-AUC 0.98) may still
never give one a probability above 0.5: the argmax then always answers the majority class,
and "learned nothing" would send the user to the learning rate and the features, when the
fix is a decision threshold. This module settles it with the test split's ROC-AUC.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from trainwise.data.audit import IMBALANCE_RATIO
from trainwise.findings import Finding, warning
from trainwise.train.class_names import class_name
from trainwise.train.decision_threshold import MORE_VALIDATION_ROWS, positives_caution
from trainwise.train.diagnose_common import best_epoch, class_weights_advice, train_longer
from trainwise.train.ranking import (
    chance_auc_high,
    more_rows_to_rank,
    ranking_text,
    too_few_to_rank,
)


def never_predicted(matrix: torch.Tensor) -> list[int]:
    """Classes with test rows that the argmax never answers (an all-zero column)."""
    support, predicted = matrix.sum(dim=1), matrix.sum(dim=0)
    return [i for i in range(len(matrix)) if support[i] > 0 and predicted[i] == 0]


def judged_by_ranking(found: Finding, matrix: torch.Tensor, scores: dict[str, Any],
                      names: list[str], val_threshold: dict[str, Any] | None = None,
                      class_weighted: bool = False,
                      time_budget_minutes: float | None = None,
                      still_improving: bool = False) -> Finding:
    """`found` (an evaluate-stage baseline warning) checked against the test ROC-AUC in
    `scores` (the test row). Only the "no better than chance" verdicts (those with
    evidence["chance"]) are judged: kept, with the AUC that confirms them, when the ranking
    is poor too; replaced by `argmax_misses_classes` when it is good. Unchanged when the
    AUC is undefined (a class with no test row, too many classes). `time_budget_minutes`:
    train.max_minutes when that clock ended training (the fix then says to raise it);
    `still_improving`: the train stage found the validation loss still falling (the fix
    cites that finding only then: audit s13 P1 cited one the run did not have)."""
    auc = scores.get("test_roc_auc")
    if "chance" not in found.evidence or auc is None or not math.isfinite(auc):
        return found
    evidence = {k: scores[k] for k in ("test_roc_auc", "test_average_precision",
                                       "test_ap_chance") if scores.get(k) is not None}
    # the AUC random scores rarely reach on these rows (ranking.py; collapse asks the same)
    rows = matrix.sum(dim=1).tolist()
    bound = chance_auc_high(rows)
    if bound is None:  # 1 test row of a class: the bound was 1.078 (audit s16 S8)
        return _undecidable(found, rows, names, {**evidence, "chance_auc_high": None})
    evidence["chance_auc_high"] = round(bound, 4)
    if auc < evidence["chance_auc_high"]:
        return dataclasses.replace(
            found, message=found.message.rstrip(".") + f"; its scores rank no better either "
            f"({ranking_text(scores, names)}, under the {evidence['chance_auc_high']:.3f} "
            "that random scores rarely reach on these rows).",
            evidence={**found.evidence, **evidence})
    missed = never_predicted(matrix)
    at_argmax = (f"never predicts class {_quoted(missed, names)} at the argmax" if missed
                 else "answers no better than chance at the argmax")
    said = (f"The model ranks the test rows better than chance ({ranking_text(scores, names)}, "
            f"at least the {evidence['chance_auc_high']:.3f} that random scores rarely reach "
            f"on these rows) but {at_argmax}: balanced accuracy "
            f"{found.evidence['balanced_accuracy']:.1%} against "
            f"the {found.evidence['chance']:.1%} of a constant answer. The argmax metrics "
            "read as \"learned nothing\"; the scores show it learned to tell the classes "
            "apart.")
    ratio = found.evidence.get("class_ratio")
    # balanced classes: weights would all be about 1 and change nothing (user audit s11 M12,
    # class_ratio 1.0 told to weigh the classes); the argmax lags a model trained too briefly.
    # Between IMBALANCE_RATIO and BALANCED_RATIO the weights are named as the second lever
    weigh = class_weighted or ratio is None or ratio < IMBALANCE_RATIO
    fix = (_threshold_fix(missed, val_threshold, names, class_weighted, weigh)
           if len(matrix) == 2 else _multiclass_fix(class_weighted) if weigh else "")
    if not weigh:
        fix += _balanced_fix(ratio, len(matrix), time_budget_minutes, still_improving)
    return warning("evaluate", "argmax_misses_classes", said, fix.strip(),
                   **{**found.evidence, **evidence,
                      "never_predicted": [class_name(names, i) for i in missed]})


def _undecidable(found: Finding, rows: list[int], names: list[str],
                 evidence: dict[str, Any]) -> Finding:
    """`found` kept, with why the test ROC-AUC can neither confirm nor overturn it."""
    return dataclasses.replace(
        found, message=found.message.rstrip(".") + f"; the scores' ranking is not judged "
        f"(ROC-AUC {evidence['test_roc_auc']:.3f}: {too_few_to_rank(rows, names, 'test')}).",
        fix=f"{found.fix.rstrip()} {more_rows_to_rank('test')}".strip(),
        evidence={**found.evidence, **evidence})


def _quoted(indices: list[int], names: list[str]) -> str:
    return ", ".join(f"'{class_name(names, i)}'" for i in indices)


# two classes at 0.8 (4:5) weigh 0.90 / 1.12 under "balanced": within 12% of 1, no lever;
# at 0.25 (1:4) they weigh 0.625 / 2.5, a 4x pull toward the rare class (user audit s12 S7)
BALANCED_RATIO = 0.8


def _balanced_fix(ratio: float, num_classes: int, minutes: float | None = None,
                  still_improving: bool = False) -> str:
    """Train longer first (train.max_minutes when that clock ended training: review s12 VT9);
    class weights named by what they would be, and called no lever only where they are all
    near 1. The still_improving finding is cited only where the train stage gave it."""
    longer = train_longer(minutes)
    read = ("The train stage's still_improving warning says the validation loss was still "
            f"falling: {longer}" if still_improving else longer[0].upper() + longer[1:])
    longer = ("a model whose scores rank the classes apart while its argmax answers few of "
              f"them is often trained too briefly. {read} or check the learning rate (tune "
              "stage).")
    if ratio >= BALANCED_RATIO:
        return (f" The classes are balanced in training (smallest/largest {ratio:.2f}), so "
                f"class weights would all be near 1 and change little: {longer}")
    if num_classes == 2:  # shares r / (1 + r) and 1 / (1 + r); weight n / (2 n_c)
        weights = (f"weigh the most frequent class {(1 + ratio) / 2:.3g} and the rarer "
                   f"{(1 + ratio) / (2 * ratio):.3g} in the loss")
    else:
        weights = f"weigh the rarest class {1 / ratio:.3g}x the most frequent in the loss"
    return (f" The classes are mildly imbalanced in training (1:{1 / ratio:.3g}, "
            f"smallest/largest {ratio:.2f}): train.class_weights = \"balanced\" would "
            f"{weights}, a real lever on the argmax but a smaller one than training longer: "
            f"{longer} If the argmax still misses the rarer class, set "
            "train.class_weights = \"balanced\" (train stage) and compare the runs by "
            "ROC-AUC and balanced accuracy.")


def _threshold_fix(missed: list[int], val_threshold: dict[str, Any] | None, names: list[str],
                   class_weighted: bool, weigh: bool = True) -> str:
    """Pick a threshold on validation (the F1-best one, which a two-class run keeps in
    meta.json and predict applies, when it is for the missed class), or weigh the classes;
    not the learning rate or the features."""
    fix = "Pick a decision threshold on the validation split instead of the argmax"
    if val_threshold is not None and "unreliable" in val_threshold and \
            missed == [val_threshold["class"]]:  # decision_threshold.advised_threshold
        fix = _unreliable_threshold_fix(val_threshold, names)
    elif val_threshold is not None and missed == [val_threshold["class"]]:
        name = class_name(names, val_threshold["class"])
        fix += (f": there F1 is highest when P('{name}') >= {val_threshold['threshold']:.3g} "
                f"(F1 {val_threshold['f1']:.2f}, precision {val_threshold['precision']:.0%}, "
                f"recall {val_threshold['recall']:.0%} on validation)")
        if len(names) == 2:  # threshold_record keeps it for two classes only
            fix = (f"Use the decision threshold the run kept instead of the argmax, P('{name}') "
                   f">= {val_threshold['threshold']:.3g}, the F1-best on validation (F1 "
                   f"{val_threshold['f1']:.2f}, precision {val_threshold['precision']:.0%}, "
                   f"recall {val_threshold['recall']:.0%}{_of_rows(val_threshold)}; meta.json "
                   "decision_threshold, its test scores in the test_result finding): "
                   "`trainwise predict RUN_DIR new.csv --threshold best` "
                   "(trainwise.predict(..., threshold=\"best\")) applies it"
                   f"{positives_caution(val_threshold.get('positives'))}")
    fix += ". "
    if not weigh:
        return fix
    if not class_weighted:
        fix += (f"Or {class_weights_advice()}, which moves the probabilities toward the rare "
                "classes; compare the two runs by ROC-AUC and average "
                "precision, not by accuracy.")
    else:
        fix += ("The class weights already move the probabilities toward the rare classes; "
                "judge the model by ROC-AUC and average precision, not by accuracy.")
    return fix


def _unreliable_threshold_fix(val_threshold: dict[str, Any], names: list[str]) -> str:
    """More validation rows first, when the threshold picked there cannot be trusted (too few
    rows of its class, or no better than the argmax on test): a threshold advised first on
    1 validation positive found 0 of 2 test positives (audit s14 C6)."""
    name = class_name(names, val_threshold["class"])
    return (f"Do not rely on a decision threshold yet: the F1-best one on validation, "
            f"P('{name}') >= {val_threshold['threshold']:.3g}, {val_threshold['unreliable']}. "
            f"Give it more rows of '{name}' to be picked on: {MORE_VALIDATION_ROWS}, or "
            "collect more rows of the class (data stage), then rerun")


def _of_rows(val_threshold: dict[str, Any]) -> str:
    """' of 9 rows' after a validation recall: how many rows of the class it counts."""
    positives = val_threshold.get("positives")
    return "" if positives is None else f" of {positives} rows"


def _multiclass_fix(class_weighted: bool) -> str:
    """Over more than two classes there is no one decision threshold to pick: the class
    weights are what moves the argmax toward the rare classes."""
    if class_weighted:
        return ("The class weights already move the probabilities toward the rare classes: "
                "judge the model by ROC-AUC and per-class recall, not by accuracy; for more "
                "recall on the missed classes, collect more of their rows (data stage).")
    return (f"{class_weights_advice(first=True)}, which moves the probabilities toward the "
            "rare classes; compare the two runs by ROC-AUC and "
            "per-class recall, not by accuracy.")


def validation_threshold(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The F1-best threshold of the best epoch's validation row (the weights training kept,
    lowest validation loss), with the class it applies to; None when it was not recorded
    (more than two classes, a run from before it was, a validation split missing a class)."""
    best = best_epoch(history)
    if best is None:
        return None
    picked = best.get("val_f1_threshold")
    if not isinstance(picked, dict) or "val_positive_class" not in best:
        return None
    return {**picked, "class": int(best["val_positive_class"])}
