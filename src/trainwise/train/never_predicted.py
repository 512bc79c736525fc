"""Classes the model never answers on the test split, though the split holds their rows.

High accuracy and a balanced accuracy well above chance can still hide a class with recall 0:
the audit's six-class table scored 94% accuracy while classes '4' and '5' (3 and 2 test rows)
were never predicted. Their validation rows were too few for the training diagnosis
(missed_classes wants 5), but "never predicted on any of the test rows" is a fact about the
model, not an estimate, so the evaluate stage says it, once the baseline verdicts are silent.

The advice follows the training counts: class weights only help a class that is rare in
training; on balanced classes (a user audit's 12 classes of 8 rows, s11 M6) they change
nothing, and following that advice cost 17 points of accuracy.
"""

from __future__ import annotations

import torch

from trainwise.data.audit import IMBALANCE_RATIO
from trainwise.findings import Finding, Severity
from trainwise.train.class_names import class_name
from trainwise.train.diagnose_common import class_weights_advice

MIN_TEST_ROWS = 2  # one unpredicted row is one miss; two or more never answered is a pattern
NOISE_ROWS = 3  # ...but on up to 3 rows a class found half the time is missed by chance
# (0.5^3 = 12%; 0.5^2 = 25%): a fact to report, not a verdict on the model
MORE_ROWS = ("collect more rows of these classes, or merge them with a related class "
             "(data stage)")


def never_predicted_finding(matrix: torch.Tensor, class_names: list[str],
                            class_weighted: bool, train_counts: list[int] | None = None
                            ) -> Finding | None:
    """Warning naming the classes with >= MIN_TEST_ROWS test rows that no test row is
    predicted as (`matrix`: the test confusion matrix, rows true, columns predicted).
    `train_counts` (rows per class in training) says which of them are rare there."""
    rows, predicted = matrix.sum(dim=1), matrix.sum(dim=0)
    missed = [i for i in range(len(matrix)) if rows[i] >= MIN_TEST_ROWS and predicted[i] == 0]
    if not missed:
        return None
    named = ", ".join(f"'{class_name(class_names, i)}' ({int(rows[i])} rows)" for i in missed)
    message = (f"The model never answers class{'es' if len(missed) > 1 else ''} {named} on "
               f"the {int(matrix.sum())} test rows: recall 0, which the overall accuracy "
               "hides.")
    rare = rare_classes(missed, train_counts)
    noise = all(rows[i] <= NOISE_ROWS for i in missed)
    if noise:
        message += (f" On {NOISE_ROWS} or fewer test rows a class the model finds half the "
                    "time is missed by chance, so this is within noise.")
    evidence = {"classes": [class_name(class_names, i) for i in missed],
                "test_rows": [int(rows[i]) for i in missed],
                "rare_in_training": [class_name(class_names, i) for i in rare]}
    severity = Severity.INFO if noise and not rare else Severity.WARNING
    return Finding("evaluate", severity, "never_predicted", message, evidence,
                   _fix(bool(rare), class_weighted, noise))


def rare_classes(missed: list[int], train_counts: list[int] | None) -> list[int]:
    """The missed classes below IMBALANCE_RATIO of the largest training class (all of them
    when the counts are unknown: the advice then stays as it was). The train stage's
    missed_classes reads the same test (s15 B10)."""
    if not train_counts:
        return list(missed)
    largest = max(train_counts)
    return [i for i in missed
            if i < len(train_counts) and train_counts[i] < IMBALANCE_RATIO * largest]


def _fix(rare: bool, class_weighted: bool, noise: bool) -> str:
    test_more = ("Judge these classes on more test rows: collect more rows, or raise "
                 "split.test_fraction (split stage)")
    if class_weighted:
        return f'train.class_weights is already "balanced": {MORE_ROWS}.'
    if rare:
        return f"{class_weights_advice(first=True)}; or {MORE_ROWS}."
    if noise:
        return ("These classes are not rare in training, so class weights would not change "
                f"this. {test_more}.")
    return ("These classes are not rare in training, so class weights would change little: "
            "read the train stage's findings (a model trained too briefly answers few "
            f"classes), then check that the features tell these classes apart, or {MORE_ROWS}.")
