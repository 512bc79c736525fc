"""Classes the model never answers on the test split, though the split holds their rows.

High accuracy and a balanced accuracy well above chance can still hide a class with recall 0:
the audit's six-class table scored 94% accuracy while classes '4' and '5' (3 and 2 test rows)
were never predicted. Their validation rows were too few for the training diagnosis
(missed_classes wants 5), but "never predicted on any of the test rows" is a fact about the
model, not an estimate, so the evaluate stage says it, once the baseline verdicts are silent.
"""

from __future__ import annotations

import torch

from trainwise.findings import Finding, warning
from trainwise.train.class_names import class_name
from trainwise.train.diagnose_common import class_weights_advice

MIN_TEST_ROWS = 2  # one unpredicted row is one miss; two or more never answered is a pattern


def never_predicted_finding(matrix: torch.Tensor, class_names: list[str],
                            class_weighted: bool) -> Finding | None:
    """Warning naming the classes with >= MIN_TEST_ROWS test rows that no test row is
    predicted as (`matrix`: the test confusion matrix, rows true, columns predicted)."""
    rows, predicted = matrix.sum(dim=1), matrix.sum(dim=0)
    missed = [i for i in range(len(matrix)) if rows[i] >= MIN_TEST_ROWS and predicted[i] == 0]
    if not missed:
        return None
    named = ", ".join(f"'{class_name(class_names, i)}' ({int(rows[i])} rows)" for i in missed)
    total = int(matrix.sum())
    message = (f"The model never answers class{'es' if len(missed) > 1 else ''} {named} on "
               f"the {total} test rows: recall 0, which the overall accuracy hides.")
    more_rows = ("collect more rows of these classes, or merge them with a related class "
                 "(data stage)")
    fix = (f'train.class_weights is already "balanced": {more_rows}.' if class_weighted else
           f"{class_weights_advice(first=True)}; or {more_rows}.")
    return warning("evaluate", "never_predicted", message, fix,
                   classes=[class_name(class_names, i) for i in missed],
                   test_rows=[int(rows[i]) for i in missed])
