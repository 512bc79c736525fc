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
    assert found.evidence == {"classes": ["4", "5"], "test_rows": [3, 2],  # hand count
                              "rare_in_training": ["4", "5"]}  # 8 and 6 of 300: < 0.2
    assert "'4' (3 rows), '5' (2 rows)" in found.message and "325 test rows" in found.message
    assert 'class_weights = "balanced"' in found.fix
    assert extra["test_per_class"]["recall"][4] == 0.0  # what the warning says, per class


def test_every_class_answered_or_a_lone_row_gives_no_warning() -> None:
    train = np.repeat(np.arange(3), [50, 50, 50])
    _, findings = class_results([[20, 1, 0], [2, 18, 0], [0, 1, 0]], train, list("abc"))
    assert findings == []  # class c: one test row, never predicted -- one miss, no pattern
    _, findings = class_results([[20, 1, 0], [2, 18, 0], [0, 1, 3]], train, list("abc"))
    assert findings == []


def test_balanced_classes_missed_on_two_rows_each_are_noise_not_a_call_for_weights() -> None:
    # the audit's tiny12 (s11 M6): 12 classes of 4-7 training rows, two of them never
    # answered on their 2 test rows each; it advised class weights, which cost 17 points
    train = np.repeat(np.arange(4), [6, 7, 5, 6])
    matrix = [[2, 0, 0, 0], [1, 0, 1, 0], [0, 0, 2, 0], [1, 0, 1, 0]]
    _, findings = class_results(matrix, train, list("abcd"))
    # 4 right of 8 (95% CI 21.5-78.5%) against 'b''s 2: near_majority_baseline comes first
    assert [f.code for f in findings] == ["near_majority_baseline", "never_predicted"]
    found = findings[1]
    assert found.severity.value == "info"
    assert found.evidence["classes"] == ["b", "d"] and found.evidence["rare_in_training"] == []
    assert "class_weights" not in found.fix.replace("class weights would not", "")
    assert "within noise" in found.message and "split.test_fraction" in found.fix


def test_balanced_classes_missed_on_many_rows_point_to_training_not_weights() -> None:
    train = np.repeat(np.arange(3), [50, 45, 40])
    _, [found] = class_results([[20, 0, 0], [0, 18, 0], [9, 6, 0]], train, list("abc"))
    assert found.severity.value == "warning" and 'class_weights = "balanced"' not in found.fix
    assert "train stage's findings" in found.fix


def test_the_price_of_the_weights_is_claimed_only_below_the_majority_baseline() -> None:
    # weighted loss, balanced accuracy at chance (recalls 0, 0, 1/3, 1/3, 0, 0: 11.1% < 1/6);
    # accuracy 2/16 = 12.5% is ABOVE the training majority 'b''s 1/16: the audit's message
    # said "its accuracy below the majority-class baseline" all the same (s11 M6)
    train = np.repeat(np.arange(6), [2, 8, 8, 8, 8, 8])
    matrix = np.zeros((6, 6), dtype=int)
    for true, pred in [(0, 2), (0, 3), (0, 4), (1, 5), (2, 2), (2, 0), (2, 5), (3, 3), (3, 0),
                       (3, 4), (4, 0), (4, 2), (4, 5), (5, 0), (5, 2), (5, 3)]:
        matrix[true, pred] += 1
    _, [found] = class_results(matrix.tolist(), train, list("abcdef"), class_weighted=True)
    assert found.code == "balanced_accuracy_at_chance"
    assert "below the majority-class baseline" not in found.message
    matrix[1, 0] += 5  # 'b' now has 6 test rows, none right: the baseline 6/21 beats 2/21
    _, [found] = class_results(matrix.tolist(), train, list("abcdef"), class_weighted=True)
    assert "below the majority-class baseline is the price of the weights" in found.message
