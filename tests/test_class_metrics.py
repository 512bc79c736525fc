"""Classification metrics beyond accuracy, checked against scikit-learn, and the majority
baseline that a model on imbalanced data must beat."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics
from torch import nn

from trainwise.config import valid_keys
from trainwise.findings import Severity
from trainwise.train.class_metrics import (
    balanced_accuracy,
    class_results,
    confusion_matrix,
    per_class,
    top_confusions,
)
from trainwise.train.evaluate import evaluate


def _labels(seed: int, num_classes: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Skewed true labels and noisy predictions; the last class is never predicted, so
    precision there is 0/0 (sklearn: NaN with zero_division=np.nan)."""
    rng = np.random.default_rng(seed)
    share = np.linspace(1, 0.1, num_classes)
    y_true = rng.choice(num_classes, size=n, p=share / share.sum())
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, num_classes, n))
    y_pred[y_pred == num_classes - 1] = 0
    return y_true, y_pred


@pytest.mark.parametrize(("seed", "num_classes"), [(0, 2), (1, 3), (2, 7)])
def test_metrics_match_sklearn(seed: int, num_classes: int) -> None:
    """One more class than the labels hold (no true row, never predicted): its precision,
    recall and F1 are undefined, as are the never-predicted class's precision (audit s9
    I10: None, printed n/a, not 0)."""
    y_true, y_pred = _labels(seed, num_classes)
    labels = list(range(num_classes + 1))
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_true), num_classes + 1)
    np.testing.assert_array_equal(matrix.numpy(),
                                  metrics.confusion_matrix(y_true, y_pred, labels=labels))
    assert balanced_accuracy(matrix) == pytest.approx(
        metrics.balanced_accuracy_score(y_true, y_pred))
    ours = per_class(matrix)
    for name, reference in (("precision", metrics.precision_score),
                            ("recall", metrics.recall_score), ("f1", metrics.f1_score)):
        values = np.array([np.nan if v is None else v for v in ours[name]])
        np.testing.assert_allclose(values, reference(y_true, y_pred, labels=labels,
                                                     average=None, zero_division=np.nan))
    assert ours["precision"][num_classes - 1] is None and ours["recall"][num_classes] is None
    assert ours["support"] == np.bincount(y_true, minlength=num_classes + 1).tolist()


def test_balanced_accuracy_leaves_out_a_class_absent_from_the_targets() -> None:
    y_true, y_pred = np.array([0, 0, 0, 1, 1]), np.array([0, 0, 2, 1, 2])
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_true), 3)
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        expected = metrics.balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(matrix) == pytest.approx(expected)  # (2/3 + 1/2) / 2


def test_ignored_targets_are_left_out_of_the_matrix() -> None:
    """A user's loader may mark rows with ignore_index -100 (CrossEntropyLoss' default)."""
    y_true, y_pred = np.array([0, 1, -100, 1, 0]), np.array([0, 1, 1, 0, 0])
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_true), 2)
    kept = y_true >= 0
    assert matrix.tolist() == metrics.confusion_matrix(y_true[kept], y_pred[kept]).tolist()


def test_evaluate_reports_balanced_accuracy_and_the_matrix() -> None:
    y_true, y_pred = _labels(3, 4)
    logits = torch.nn.functional.one_hot(torch.tensor(y_pred), 4).float() * 5
    targets = torch.tensor(y_true)
    loader = [(logits[:120], targets[:120]), (logits[120:], targets[120:])]  # two batches
    row = evaluate(nn.Identity(), loader, nn.CrossEntropyLoss(), "classification", "test",
                   confusion=True)
    assert row["test_balanced_accuracy"] == pytest.approx(
        metrics.balanced_accuracy_score(y_true, y_pred))
    assert row["test_confusion"] == metrics.confusion_matrix(y_true, y_pred).tolist()
    val = evaluate(nn.Identity(), loader, nn.CrossEntropyLoss(), "classification")
    assert "val_balanced_accuracy" in val and "val_confusion" not in val  # per epoch: small
    reference = metrics.confusion_matrix(y_true, y_pred)  # per epoch its margins, C x 3
    assert val["val_class_counts"] == row["test_class_counts"] == {
        "rows": reference.sum(axis=1).tolist(), "right": np.diag(reference).tolist(),
        "predicted": reference.sum(axis=0).tolist()}


def test_always_the_majority_class_is_flagged_against_the_training_majority() -> None:
    """4% positives: answering "no" to everything scores 96% accuracy and must be flagged;
    the baseline class comes from the training split, not the test split."""
    y_test = np.array([0] * 96 + [1] * 4)
    always_no = confusion_matrix(torch.zeros(100), torch.tensor(y_test), 2).tolist()
    y_train = np.array([0] * 950 + [1] * 50)
    extra, found = class_results(always_no, y_train, ["no", "yes"])
    assert extra["test_baseline_class"] == "no"
    assert extra["test_baseline_accuracy"] == pytest.approx(0.96)
    assert extra["test_per_class"]["recall"] == [1.0, 0.0]
    assert [f.code for f in found] == ["below_majority_baseline"]
    assert found[0].severity is Severity.WARNING
    assert "96.00% is no higher than 96.00%" in found[0].message
    assert "balanced accuracy is 50.0%" in found[0].message
    assert 'train.class_weights = "balanced"' in found[0].fix and "data stage" in found[0].fix
    assert "train.class_weights" in valid_keys()  # the fix names a setting that exists

    # a training split whose majority is "yes": always "yes" gets 4% on this test split
    # (beaten by the model's 96%, so no baseline verdict); 'yes' is still never answered
    _, found = class_results(always_no, 1 - y_train, ["no", "yes"])
    assert [f.code for f in found] == ["never_predicted"]
    # 'yes' has 950 training rows against 'no''s 50: not rare, so no call for class weights
    assert found[0].evidence == {"classes": ["yes"], "test_rows": [4], "rare_in_training": []}
    assert 'class_weights = "balanced"' not in found[0].fix


def _found_after(num_found: int) -> list[str]:
    """Codes for a model that finds `num_found` of 8 positives among 200 rows (96% "no"),
    with no false alarms: each one found is half a point above always answering "no"."""
    y_test = np.array([0] * 192 + [1] * 8)
    y_pred = np.zeros(200, dtype=np.int64)
    y_pred[192:192 + num_found] = 1
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_test), 2).tolist()
    _, found = class_results(matrix, np.array([0] * 950 + [1] * 50), ["no", "yes"])
    return [f.code for f in found]


def test_only_a_model_clearly_above_the_baseline_passes() -> None:
    assert _found_after(1) == ["below_majority_baseline"]  # half a point: not clearly above
    # one point clears the margin, but 97.0% on 200 rows (95% CI 93.6-98.6%) is not clearly
    # above 96% either (audit s11 M3); all 8 found, 100% (CI 98.1-100%), is
    assert _found_after(2) == ["near_majority_baseline"]
    assert _found_after(8) == []


def test_a_class_weighted_run_is_held_to_balanced_accuracy_not_the_baseline() -> None:
    """Weights trade majority hits for rare-class recall: accuracy below always "no" is
    expected there, and the fix must not ask for the weights the run already uses."""
    y_test = np.array([0] * 96 + [1] * 4)
    y_train = np.array([0] * 950 + [1] * 50)
    y_pred = np.where(np.arange(100) % 4 == 0, 1, y_test)  # 3 of 4 "yes" found, 24 false alarms
    y_pred[-1] = 0
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_test), 2).tolist()
    assert metrics.accuracy_score(y_test, y_pred) < 0.96  # below always "no"
    assert class_results(matrix, y_train, ["no", "yes"], class_weighted=True)[1] == []
    # a weighted model that answers at random is flagged, without re-suggesting the weights
    y_coin = np.arange(100) % 2
    matrix = confusion_matrix(torch.tensor(y_coin), torch.tensor(y_test), 2).tolist()
    _, found = class_results(matrix, y_train, ["no", "yes"], class_weighted=True)
    assert [f.code for f in found] == ["balanced_accuracy_at_chance"]
    assert f"{metrics.balanced_accuracy_score(y_test, y_coin):.1%} is not clearly above 50.0%" \
        in found[0].message
    assert "class_weights" not in found[0].fix and "data stage" in found[0].fix


def test_top_confusions_are_the_largest_off_diagonal_cells() -> None:
    matrix = [[5, 1, 7], [0, 4, 2], [3, 0, 9]]
    assert top_confusions(matrix, limit=2) == [(0, 2, 7), (2, 0, 3)]


# The audit's `trainwise run --set train.lr=1e-6` on MNIST-1D: test confusion matrix (1000
# rows) and the training split's class counts (smallest/largest 0.96).
NO_LEARNING_CONFUSION = [
    [0, 0, 0, 0, 0, 0, 0, 1, 6, 95], [0, 2, 0, 0, 0, 1, 0, 24, 65, 12],
    [0, 7, 0, 0, 0, 0, 1, 4, 60, 17], [0, 7, 0, 0, 0, 0, 6, 2, 54, 37],
    [0, 12, 0, 0, 0, 0, 1, 23, 67, 3], [0, 1, 0, 0, 0, 0, 1, 6, 80, 10],
    [0, 3, 0, 0, 0, 0, 0, 4, 89, 3], [0, 4, 0, 0, 0, 0, 1, 4, 36, 51],
    [0, 2, 0, 0, 0, 1, 1, 9, 79, 6], [0, 10, 0, 0, 0, 0, 0, 20, 65, 7]]
BALANCED_TRAIN_COUNTS = [358, 356, 370, 354, 355, 362, 361, 364, 362, 358]


def test_a_model_at_chance_on_balanced_classes_learned_nothing_it_needs_no_class_weights():
    """A run that learned nothing (lr 1e-6) on balanced data: the fault is in training, so
    the finding sends the user to the train stage and the lr, not to class weights."""
    y_train = np.repeat(np.arange(10), BALANCED_TRAIN_COUNTS)
    names = [str(k) for k in range(10)]
    extra, found = class_results(NO_LEARNING_CONFUSION, y_train, names, lr=1e-6)
    assert extra["test_baseline_class"] == "2"
    [finding] = found
    assert finding.code == "below_majority_baseline"
    assert "learned nothing" in finding.message and "rarer classes" not in finding.message
    assert "no better than chance (10.0%)" in finding.message
    assert "the score of always answering '2'" in finding.message  # not "what ... scores"
    assert "class_weights" not in finding.fix
    assert "train stage" in finding.fix and "peak 1e-06" in finding.fix
    assert "class weights will not help" in finding.fix
    assert 'train.lr = "auto"' in finding.fix
    assert finding.evidence["class_ratio"] == pytest.approx(354 / 370, abs=1e-4)


def test_on_balanced_classes_accuracy_at_chance_means_nothing_learned():
    """Balanced accuracy a point and more above chance, yet accuracy within a point of the
    majority class, which on balanced training classes scores about 1 / k: accuracy is at
    chance, so the model learned nothing, and there are no rarer classes to ignore."""
    y_train = np.repeat(np.arange(10), BALANCED_TRAIN_COUNTS)  # majority: '2'
    support = [89] * 10
    support[2] = 199  # the test split holds more of '2' (always '2' scores 19.9%)
    right = [11] * 10  # recall 12.4% ...
    right[2] = 10  # ... and 5% for '2': accuracy 10.9%, balanced accuracy 11.6%
    matrix = [[right[t] if p == t else 0 for p in range(10)] for t in range(10)]
    for t in range(10):
        matrix[t][(t + 1) % 10] = support[t] - right[t]
    _, [finding] = class_results(matrix, y_train, [str(k) for k in range(10)])
    assert finding.evidence["balanced_accuracy"] >= 0.11  # not within a point of 10%...
    assert finding.evidence["test_accuracy"] < 0.11  # ...but the accuracy is
    assert "classes are balanced (smallest/largest 0.96 in training)" in finding.message
    assert "learned nothing" in finding.message and "class_weights" not in finding.fix


def test_an_imbalanced_model_at_chance_gets_the_train_stage_first_then_the_weights():
    y_test = np.array([0] * 96 + [1] * 4)
    always_no = confusion_matrix(torch.zeros(100), torch.tensor(y_test), 2).tolist()
    _, [finding] = class_results(always_no, np.array([0] * 950 + [1] * 50), ["no", "yes"])
    assert "learned nothing" in finding.message
    assert finding.fix.index("train stage") < finding.fix.index("class_weights")


def test_the_margin_is_said_in_percentage_points():
    y_test = np.array([0] * 192 + [1] * 8)
    y_pred = np.zeros(200, dtype=np.int64)
    y_pred[192] = 1  # one positive found: half a point above always "no"
    matrix = confusion_matrix(torch.tensor(y_pred), torch.tensor(y_test), 2).tolist()
    _, [finding] = class_results(matrix, np.array([0] * 950 + [1] * 50), ["no", "yes"])
    assert "less than 1.0 percentage points above 96.00%" in finding.message
    assert "may ignore the rarer classes" in finding.message  # 56% balanced: above chance
    assert 'train.class_weights = "balanced"' in finding.fix


def test_an_accuracy_whose_interval_reaches_the_majority_baseline_is_not_clearly_above_it():
    """User audit s11 M3: 12 right of 20 against always '0''s 10 (95% Wilson CI 38.7-78.1%,
    which holds 50%) got no warning; the README promises one."""
    y_train = np.repeat(np.arange(2), 36)
    _, [found] = class_results([[7, 3], [5, 5]], y_train, ["0", "1"])
    assert found.code == "near_majority_baseline" and found.severity is Severity.WARNING
    assert "60.0% (95% CI 38.7-78.1%, 20 rows) is not clearly above 50.0%" in found.message
    assert found.evidence["accuracy_low"] == pytest.approx(0.386582, abs=1e-6)
    assert "split.test_fraction" in found.fix
    # 18 of 20 (CI 69.9-97.2%) clears 50%: no warning
    assert class_results([[9, 1], [1, 9]], y_train, ["0", "1"])[1] == []


def test_the_training_balance_and_majority_come_from_one_count_per_class() -> None:
    from trainwise.train.class_metrics import class_ratio, majority_class
    counts = np.bincount(np.array([0, 2, 2, 2, 0, 3]), minlength=4)  # [2, 0, 3, 1]
    assert majority_class(counts) == 2
    assert class_ratio(counts) == pytest.approx(1 / 3)  # class 1 holds no rows: left out
    assert majority_class(np.array([4, 4, 1])) == 0  # a tie goes to the lowest index


def test_a_test_part_of_one_class_gets_one_finding_not_chance_and_lr_advice() -> None:
    """Audit s14 Z7 (199 rows 'A', 1 row 'B' kept in training): the test warning said
    "balanced accuracy is 100.0%, no better than chance (100.0%): the model learned nothing"
    and sent the user to the lr. One class in test: one finding that says so."""
    from trainwise.train.class_metrics import class_results

    y_train = np.array([0] * 139 + [1])
    extra, findings = class_results([[40, 0], [0, 0]], y_train, ["A", "B"], lr=0.6)
    assert [f.code for f in findings] == ["test_single_class"]
    [finding] = findings
    assert "all 'A' (none of 'B')" in finding.message and "chance" not in finding.message
    assert "lr" not in finding.fix and "split.test_fraction" in finding.fix
    assert extra["test_per_class"]["support"] == [40, 0]
