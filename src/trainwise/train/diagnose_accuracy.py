"""Validation accuracy against chance, in standard errors: what the loss rules cross-check
before they call a run memorisation, and the rule for a model that is systematically wrong.

A validation loss alone misleads twice (user audit s15): with CrossEntropyLoss(reduction=
"sum") a model at 93% accuracy (chance 25%) had a best validation loss of 113, "at chance
(ln 4 = 1.39)" to the memorisation rule (B14); validation labels encoded in another class
order gave 2.8% accuracy, 10 standard errors BELOW chance on 400 rows, which memorisation
cannot produce (it lands at chance), and was called "memorises the training set" (B15).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from trainwise.findings import Finding, Severity
from trainwise.train.class_counts import class_counts_of
from trainwise.train.diagnose_common import (
    Row,
    final_run_start,
    finite_value,
    hist_of,
    make,
    num,
    num_classes,
    rows_of,
)

FAR = 3.09  # standard errors: a one-sided binomial p of 1e-3 (normal approximation). The
# audit's class-order slip sat 10 below chance on 400 rows, its covariate shifts 4.7 and 6.7
# away from epoch 1 / chance; a model at chance crosses 3.09 once in 1000 epochs.
MIN_ROWS = 20  # fewer validation rows: accuracy moves in steps too coarse to judge (as
# MIN_CONFUSION_ROWS in diagnose_confidence)


class VersusChance(NamedTuple):
    """One epoch's validation accuracy, the chance level it is held against, and the rows."""

    accuracy: float
    chance: float
    rows: int

    @property
    def z(self) -> float:
        """Standard errors above chance (negative: below), binomial over the rows."""
        error = math.sqrt(max(self.chance * (1 - self.chance), 1.0 / self.rows) / self.rows)
        return (self.accuracy - self.chance) / error


def validation_rows(row: Row) -> int | None:
    """Rows validated at this epoch: the class counts' total, else the confidence histogram's."""
    counts = class_counts_of(row)
    if counts is not None:
        return sum(counts[0])
    hist = hist_of(row)
    return int(hist.sum()) if hist is not None else None


def chance_accuracy(row: Row, classes: int | None) -> float | None:
    """The accuracy of answers independent of the labels: with the class counts, the sum over
    classes of (share of rows) x (share of answers), as Cohen's kappa expects (a model that
    answers the 10% class always scores 10%, not 1/C); else 1/C; None without either."""
    counts = class_counts_of(row)
    if counts is not None and sum(counts[0]) > 0:
        rows, _, predicted = counts
        total = sum(rows)
        return sum(r * p for r, p in zip(rows, predicted, strict=True)) / total ** 2
    return 1.0 / classes if classes and classes >= 2 else None


def versus_chance(row: Row, classes: int | None) -> VersusChance | None:
    """The epoch's accuracy against chance; None without an accuracy, a chance level, or
    MIN_ROWS validation rows."""
    accuracy, rows = finite_value(row, "val_accuracy"), validation_rows(row)
    chance = chance_accuracy(row, classes)
    if accuracy is None or chance is None or rows is None or rows < MIN_ROWS:
        return None
    return VersusChance(accuracy, chance, rows)


def above_chance(row: Row, classes: int | None) -> bool:
    """The epoch's validation accuracy is FAR standard errors above chance: the model learned
    something that carries over, whatever the loss says."""
    seen = versus_chance(row, classes)
    return seen is not None and seen.z > FAR


def _below(row: Row, classes: int | None) -> VersusChance | None:
    seen = versus_chance(row, classes)
    return seen if seen is not None and seen.z < -FAR else None


def rule_systematically_wrong(history: list[Row]) -> list[Finding]:
    """The last epoch's validation accuracy FAR standard errors below chance: the model is
    right on training rows and wrong on validation ones in a pattern, as when validation
    labels use another class order. Memorising lands at chance, not below it."""
    rows = [row for row in rows_of(history, "epoch") if finite_value(row, "val_accuracy")
            is not None]
    classes = num_classes(history)
    seen = _below(rows[-1], classes) if rows else None
    if seen is None:
        return []
    onset = final_run_start([_below(row, classes) is not None for row in rows])
    message = (f"Validation accuracy {seen.accuracy:.1%} is far below chance "
               f"({seen.chance:.1%}: {-seen.z:.1f} standard errors on {seen.rows} rows, "
               f"p < 1e-3) since epoch {rows[onset].get('epoch', onset + 1)}: the model is "
               "systematically wrong on validation rows, which memorising (at chance) cannot "
               f"do.{_per_class(rows[-1])}")
    fix = ("Validation labels likely mean something else than training labels: most often the "
           "validation part was label-encoded on its own (another class order, e.g. a "
           "LabelEncoder or category codes fitted per file). Encode all labels with one "
           "mapping before splitting (data stage), check a few validation rows by hand "
           "against training rows of the same class (split stage), then train again.")
    return [make(Severity.WARNING, "systematically_wrong", message, fix,
                 rows[onset].get("step"), val_accuracy=num(seen.accuracy),
                 chance_accuracy=num(seen.chance), validation_rows=seen.rows,
                 standard_errors_below=num(-seen.z), threshold_standard_errors=FAR,
                 onset_epoch=rows[onset].get("epoch"))]


def _per_class(row: Row) -> str:
    """' Right per class: 0/100, 3/100, ...' from the class counts (up to 10 classes): all
    near 0 is a relabelling of every class; a few is a mapping slip in those."""
    counts = class_counts_of(row)
    if counts is None or len(counts[0]) > 10:
        return ""
    rows, right, _ = counts
    return " Right per class: " + ", ".join(f"{r}/{n}" for r, n in zip(right, rows,
                                                                    strict=True)) + "."


FELL_SHARE = 0.25  # "fell": lost a quarter of epoch 1's lead over chance (and FAR standard
# errors). Audit s15 B9's covariate shift fell 0.47 -> 0.31 over chance 0.25: 73% of it;
# a model that overfits after converging in epoch 1 keeps most of its accuracy (0.90 -> 0.88
# is 3% of its lead).


def differs_words(rows: list[Row], classes: int | None, best_val_loss: float) -> str:
    """Why validation differs from training, read off the accuracy of a run whose validation
    loss never beat epoch 1 ("" when it does not say so): the accuracy fell from epoch 1's, or
    it sits far above chance while the loss never came below ln C. Memorising (random labels)
    stays at chance; a rule that the validation inputs break does neither (audit s15 B9:
    validation features shifted 1.5 std, 0.47 -> 0.31; a feature recorded differently in
    validation, 0.32 -> 0.41 at losses 1.9 -> 12 against ln 4 = 1.39)."""
    first, last = versus_chance(rows[0], classes), versus_chance(rows[-1], classes)
    if first is None or last is None:
        return ""
    lead = first.accuracy - first.chance
    spread = math.hypot(*(math.sqrt(s.accuracy * (1 - s.accuracy) / s.rows)
                          for s in (first, last)))
    if lead > 0 and first.accuracy - last.accuracy >= max(FELL_SHARE * lead, FAR * spread):
        return (f"the validation accuracy fell from {first.accuracy:.1%} at the first epoch to "
                f"{last.accuracy:.1%} (chance {last.chance:.1%})")
    if last.z > FAR and classes and best_val_loss >= math.log(classes):
        return (f"the validation accuracy is {last.accuracy:.1%}, far above chance "
                f"({last.chance:.1%}), while the validation loss never came below chance "
                f"(ln {classes} = {math.log(classes):.3g}): confidently wrong answers")
    return ""


DIFFERS_FIX = ("Validation differs from training: the model learned a rule that the "
               "validation rows break, which memorising (accuracy at chance) would not show. "
               "Check that validation is drawn and preprocessed like training (split stage: "
               "same source and period, same scaling and feature encoding, fitted on the "
               "training part and applied to both), then that validation labels and features "
               "mean what they mean in training (data stage).")
