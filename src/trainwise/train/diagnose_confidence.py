"""Diagnosis rules on the validation confidence: over- and under-confidence, confusion near
chance. Each reads the confidence histogram and accuracy an epoch row carries."""

from __future__ import annotations

import math

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    best_epoch,
    final_run_start,
    finite_value,
    hist_mass,
    hist_of,
    longer_training,
    lr_advice,
    make,
    mean_confidence,
    num,
    num_classes,
    plan_of,
    rows_of,
)
from trainwise.train.not_learned import chance_loss, learned_below

OVERCONFIDENCE_GAP = 0.10  # mean confidence above accuracy by 10 points
UNDERCONFIDENCE_GAP = 0.25  # accuracy above mean confidence by 25 points. Label smoothing 0.1
# gives ~0.05-0.1; a softmax before CrossEntropyLoss caps the top probability at e/(e+C-1)
# (0.23 for 10 classes, 0.48 for 4) whatever the accuracy.
UNDERCONFIDENCE_EPOCHS = 3  # ...in each of the last 3 epochs, over which the confidence rose
UNDERCONFIDENCE_RISE = 0.05  # less than 5 points: early in training a model is often right before
# it is sure, but its confidence climbs fast (healthy digits MLP, epochs 1-3: accuracy 0.82,
# 0.89, 0.91; confidence 0.27, 0.58, 0.76), while squashed outputs stay at their cap
CAP_MARGIN = 0.01  # a mean confidence this far above squash_cap is not float round-off (the
# zoo's double-softmax images: mean 0.2310 under a cap of 0.2315)
CONFUSION_SHARE = 0.15  # accuracy and confidence within 15% of the way from chance to 1
GAP_STANDARD_ERRORS = 2.0  # a confidence-accuracy gap counts only when it is also this many
# standard errors of the accuracy (binomial over the validation rows): on a 2-row validation
# set accuracy moves in steps of 0.5, and two seeds of one tiny table read "over-confident"
# and "under-confident" (user audit, 29 rows)
MIN_CONFUSION_ROWS = 20  # "near chance" is not judged on fewer validation rows


def _confidence_rows(history: list[Row]) -> list[tuple[Row, float, float]]:
    """(row, mean confidence, accuracy) for every epoch row that carries both."""
    out = []
    for row in rows_of(history, "epoch"):
        accuracy, confidence = finite_value(row, "val_accuracy"), mean_confidence(row)
        if accuracy is not None and confidence is not None:
            out.append((row, confidence, accuracy))
    return out


def _gap_needed(threshold: float, row: Row, accuracy: float) -> float:
    """The gap a rule's threshold asks for, raised to the noise in the accuracy."""
    return max(threshold, gap_noise(row, accuracy))


def gap_noise(row: Row, accuracy: float) -> float:
    """GAP_STANDARD_ERRORS standard errors of the accuracy on the rows the histogram counts
    (0 when none are known): a confidence-accuracy gap this small is noise. The report's
    confidence figure reads its verdict off the same number."""
    rows = _validation_rows(row)
    if rows is None:
        return 0.0
    error = math.sqrt(max(accuracy * (1 - accuracy), 1.0 / rows) / rows)  # 0/1: one row's worth
    return GAP_STANDARD_ERRORS * error


def _validation_rows(row: Row) -> int | None:
    hist = hist_of(row)
    return int(hist.sum()) if hist is not None else None


def rule_overconfidence(history: list[Row]) -> list[Finding]:
    points = _confidence_rows(history)
    flags = [conf - acc > _gap_needed(OVERCONFIDENCE_GAP, row, acc) for row, conf, acc in points]
    if not flags or not flags[-1]:
        return []
    onset_row = points[final_run_start(flags)][0]
    row, conf, acc = points[-1]
    hist = hist_of(row)
    high = hist_mass(hist, 0.9, 1.01) if hist is not None else None
    message = (f"Over-confident: on the validation set the mean confidence is {conf:.2f} but "
               f"the accuracy is {acc:.2f} (gap {conf - acc:.2f})"
               + (f"; {high:.0%} of predictions are at 0.9 or above." if high is not None
                  else "."))
    fix = _overconfidence_fix(history)
    return [make(Severity.WARNING, "overconfidence", message, fix, onset_row.get("step"),
                 mean_confidence=num(conf), accuracy=num(acc), gap=num(conf - acc),
                 ece=num(finite_value(row, "val_ece")), high_confidence_mass=num(high),
                 onset_epoch=onset_row.get("epoch"), threshold_gap=OVERCONFIDENCE_GAP,
                 # judged from where training ended: withheld after Ctrl-C (END_RULES)
                 not_learned=fix.startswith(NOT_LEARNED_LEAD))]


def chance_level(row: Row, classes: int | None) -> float | None:
    """1/C; without C, an upper bound on it: the top softmax probability is never below 1/C,
    so the upper edge of the lowest occupied histogram bin is >= 1/C."""
    if classes:
        return 1.0 / classes
    hist = hist_of(row)
    if hist is None:
        return None
    lowest = int(np.flatnonzero(hist > 0)[0])
    bound = (lowest + 1) / len(hist)
    return bound if bound < 0.95 else None  # all mass near 1: nothing to compare with


def _confused_at(row: Row, conf: float, acc: float, classes: int | None) -> float | None:
    """The chance level when accuracy and confidence both sit near it, else None."""
    chance = chance_level(row, classes)
    rows = _validation_rows(row)
    if chance is None or (rows is not None and rows < MIN_CONFUSION_ROWS):
        return None
    scaled_conf, scaled_acc = (conf - chance) / (1 - chance), (acc - chance) / (1 - chance)
    if scaled_conf >= CONFUSION_SHARE or scaled_acc >= CONFUSION_SHARE:
        return None
    return chance


def rule_confusion(history: list[Row]) -> list[Finding]:
    classes = num_classes(history)
    points = _confidence_rows(history)
    chances = [_confused_at(row, conf, acc, classes) for row, conf, acc in points]
    if not chances or chances[-1] is None:
        return []
    onset_row = points[final_run_start([c is not None for c in chances])][0]
    row, conf, acc = points[-1]
    chance = chances[-1]
    hist = hist_of(row)
    low = hist_mass(hist, 0.0, 0.5) if hist is not None else None
    around_half = hist_mass(hist, 0.4, 0.6) if hist is not None else None
    level = (f"{chance:.2f} for {classes} classes" if classes else
             f"at most {chance:.2f}, bounded from the confidence histogram")
    message = (f"The model is lost on the validation set: accuracy {acc:.2f} and mean "
               f"confidence {conf:.2f} sit near chance ({level}).")
    fix = ("If the training loss fell, validation differs from training: check the split and "
           "that validation gets the same preprocessing (split/data stage); otherwise check "
           "that labels match inputs (data stage) and that the model can overfit one batch "
           "(check stage).")
    return [make(Severity.WARNING, "confusion", message, fix, onset_row.get("step"),
                 accuracy=num(acc), mean_confidence=num(conf), chance=num(chance),
                 num_classes=classes, mass_below_half=num(low), mass_around_half=num(around_half),
                 onset_epoch=onset_row.get("epoch"), threshold_share=CONFUSION_SHARE)]


def squash_cap(classes: int | None) -> float:
    """The highest top probability a model can reach when its outputs are squashed into [0, 1]
    before a softmax (a softmax or sigmoid before CrossEntropyLoss): e / (e + C - 1), reached
    by a one-hot output. Without C, the largest, C = 2 (0.73; a sigmoid before
    BCEWithLogitsLoss has the same)."""
    return math.e / (math.e + max(classes or 2, 2) - 1)


def _above_cap(row: Row, conf: float, classes: int | None) -> float | None:
    """The lowest confidence some validation prediction is known to reach, when it is above
    squash_cap: proof the model returns raw logits. None when the cap is not passed."""
    cap = squash_cap(classes)
    hist = hist_of(row)
    reached = conf  # the mean is never above the largest prediction
    if hist is not None:  # the lower edge of the highest occupied bin
        reached = max(reached, int(np.flatnonzero(hist > 0)[-1]) / len(hist))
    return reached if reached > cap + CAP_MARGIN else None


def rule_underconfidence(history: list[Row]) -> list[Finding]:
    """Right far more often than it is confident: outputs squashed before the loss, or (when
    predictions pass what squashed outputs can reach) a model trained too little."""
    points = _confidence_rows(history)
    flags = [acc - conf > _gap_needed(UNDERCONFIDENCE_GAP, row, acc) for row, conf, acc in points]
    if len(flags) < UNDERCONFIDENCE_EPOCHS or not all(flags[-UNDERCONFIDENCE_EPOCHS:]):
        return []
    if points[-1][1] - points[-UNDERCONFIDENCE_EPOCHS][1] >= UNDERCONFIDENCE_RISE:
        return []  # still catching up with its accuracy
    onset_row = points[final_run_start(flags)][0]
    row, conf, acc = points[-1]
    hist = hist_of(row)
    top = (int(np.flatnonzero(hist > 0)[-1]) + 1) / len(hist) if hist is not None else None
    classes = num_classes(history)
    reached = _above_cap(row, conf, classes)
    message = (f"Under-confident: on the validation set the accuracy is {acc:.2f} but the mean "
               f"confidence only {conf:.2f} (gap {acc - conf:.2f})"
               + (f"; no prediction is above {top:.2f}." if top is not None else "."))
    return [make(Severity.WARNING, "underconfidence", message,
                 _underconfidence_fix(history, reached, classes), onset_row.get("step"),
                 mean_confidence=num(conf), accuracy=num(acc), gap=num(acc - conf),
                 highest_confidence_bin_edge=num(top), onset_epoch=onset_row.get("epoch"),
                 squash_cap=num(squash_cap(classes)), outputs_squashed=reached is None,
                 threshold_gap=UNDERCONFIDENCE_GAP)]


def _underconfidence_fix(history: list[Row], reached: float | None, classes: int | None) -> str:
    if reached is None:
        return ("The outputs are squashed before the loss: remove a softmax or sigmoid at the "
                "end of the model (CrossEntropyLoss applies log-softmax itself; model stage); "
                "else lower label smoothing or mixup (train stage). If the model already "
                "returns raw logits (the check stage verifies it), it is under-trained: train "
                "longer or raise the learning rate (train and tune stages).")
    of = f"with {classes} classes" if classes else "for any number of classes"
    raise_lr = lr_advice(history, "raise", "rerun the range test and take a larger value")
    return (f"The outputs are raw logits: predictions reach {reached:.2f}, above the "
            f"{squash_cap(classes):.2f} a softmax or sigmoid before the loss allows {of}, so "
            f"the model is under-trained. {raise_lr}; or train for more steps "
            f"({longer_training(history)}). Lower dropout, label smoothing or mixup if it uses "
            "them (model and train stages).")


NOT_LEARNED_LEAD = "The best validation loss"


def _overconfidence_fix(history: list[Row]) -> str:
    """Levers the run has, by their keys: trainwise run has no label smoothing or temperature
    key, and already tests the best epoch's weights (audit s13 P9). A validation loss that
    never got below the chance loss ln C is a run that did not learn: there the confidence
    is a symptom of the lr, not a calibration matter."""
    best, classes = best_epoch(history), num_classes(history)
    # the one bar for "did not learn" (not_learned.py; review s13 final F4)
    if best is not None and classes and not learned_below(best["val_loss"],
                                                          chance_loss(classes)):
        return (f"{NOT_LEARNED_LEAD} {best['val_loss']:.4g} never came clearly below the "
                f"chance loss ln {classes} = {math.log(classes):.3g}: the model did not learn, "
                "and its confidence is a symptom. "
                + lr_advice(history, "lower", "rerun it, or set a smaller train.lr") + ".")
    plan = plan_of(history)
    if plan.weight_decay is None:  # a loop of the user's own
        return ("Keep the best epoch's weights (early stopping), add label smoothing (0.1) or "
                "weight decay, or calibrate with temperature scaling on the validation split "
                "(train stage).")
    return (f"Early stopping already tests the best epoch's weights. Raise train.weight_decay "
            f"(now {plan.weight_decay:g}) to temper the confidence; where calibrated "
            "probabilities matter, fit a temperature on the validation split after training "
            "(trainwise has no setting for it: divide load_model's logits by it) or train "
            "with label smoothing in your own loop.")

