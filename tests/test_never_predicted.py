"""Reverify s9 I7: a class with test rows that the model never answers is a warning at the
evaluate stage, even when accuracy beats the majority baseline."""

import numpy as np

from trainwise.train.class_metrics import class_results


def _six_class_confusion() -> list[list[int]]:
    """The audit's six.csv shape: 94% accuracy, classes 4 and 5 (3 and 2 rows) never predicted."""
    matrix = np.diag([120, 80, 60, 40, 0, 0])
    matrix[4, 0], matrix[5, 1] = 3, 2  # their rows go to the big classes
    matrix[0, 1] = matrix[1, 0] = 10  # some ordinary confusion elsewhere
    return matrix.tolist()


def test_a_class_never_answered_on_test_is_named_with_its_rows() -> None:
    train = np.repeat(np.arange(6), [300, 200, 150, 100, 8, 6])
    extra, findings = class_results(_six_class_confusion(), train, list("012345"))
    [found] = findings
    assert found.code == "never_predicted" and found.stage == "evaluate"
    assert found.evidence == {"classes": ["4", "5"], "test_rows": [3, 2]}  # hand count
    assert "'4' (3 rows), '5' (2 rows)" in found.message and "325 test rows" in found.message
    assert 'class_weights = "balanced"' in found.fix
    assert extra["test_per_class"]["recall"][4] == 0.0  # what the warning says, per class


def test_every_class_answered_or_a_lone_row_gives_no_warning() -> None:
    train = np.repeat(np.arange(3), [50, 50, 50])
    _, findings = class_results([[20, 1, 0], [2, 18, 0], [0, 1, 0]], train, list("abc"))
    assert findings == []  # class c: one test row, never predicted -- one miss, no pattern
    _, findings = class_results([[20, 1, 0], [2, 18, 0], [0, 1, 3]], train, list("abc"))
    assert findings == []
