"""The test accuracy's 95% interval when the test rows come in groups (audit s13 F10): a
cluster bootstrap over the groups, checked against a bootstrap written out group by group
here, and where the evaluate line, the verdict, the report and the baseline verdict read it.
One row per group, or no groups, keeps Wilson's interval over rows."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from trainwise.data.task import Key, TaskData
from trainwise.recipe_verdict import _beside_accuracy
from trainwise.reporting.context import RunData, _headline
from trainwise.reporting.scores import score_table
from trainwise.stages import Arrays
from trainwise.stages_evaluate import _accuracy_group_interval, _test_groups, _test_message
from trainwise.train.class_metrics import class_results
from trainwise.train.group_interval import group_accuracy_interval
from trainwise.train.intervals import GROUP_INTERVAL, accuracy_interval, split_accuracy_interval

SEED = 7


def patients(num_patients: int = 118, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(right, groups): 1-9 visits per patient, each patient right or wrong on all its visits
    but 10% (a per-patient label: the visits are near copies of one answer)."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(1, 10, num_patients)
    names = np.array([f"p{i:03d}" for i in range(num_patients)])
    groups = np.repeat(names, visits)
    right = np.repeat(rng.random(num_patients) < 0.75, visits)
    flip = rng.random(len(right)) < 0.1
    order = rng.permutation(len(right))  # the test rows are not sorted by patient
    return (right ^ flip)[order], groups[order]


def bootstrap_by_hand(right: np.ndarray, groups: np.ndarray, seed: int,
                      resamples: int = 2000) -> tuple[float, float]:
    """Draw the patients (sorted names) with replacement, one resample at a time, and score
    the rows of the patients drawn; the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    rows_of = {name: right[groups == name] for name in names}
    scores = []
    for _ in range(resamples):
        drawn = names[rng.integers(0, len(names), len(names))]
        scores.append(np.concatenate([rows_of[name] for name in drawn]).mean())
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def test_the_cluster_bootstrap_matches_one_written_group_by_group() -> None:
    right, groups = patients()
    bounds = group_accuracy_interval(right, groups, seed=SEED)
    assert bounds is not None
    np.testing.assert_allclose(bounds, bootstrap_by_hand(right, groups, SEED), atol=1e-12)
    wilson = accuracy_interval(int(right.sum()), len(right))
    assert wilson is not None  # visits of one patient agree: the rows' interval is too narrow
    assert bounds[1] - bounds[0] > 1.5 * (wilson.high - wilson.low)


def test_one_row_per_group_or_few_groups_keep_wilsons_interval() -> None:
    right, _ = patients()
    one_each = np.array([f"r{i}" for i in range(len(right))])
    assert group_accuracy_interval(right, one_each) is None  # the rows are the groups
    nine = np.arange(len(right)) % 9  # under 10 groups: the "too narrow" caveat instead
    assert group_accuracy_interval(right, nine) is None
    ctx = _context(right.astype(np.int64), one_each)
    row = _accuracy_group_interval(ctx, *_outputs(right))
    assert row == {}
    confusion = [[int(right.sum()), 0], [int((~right).sum()), 0]]
    interval = split_accuracy_interval({"test_confusion": confusion, **row})
    wilson = accuracy_interval(int(right.sum()), len(right))
    assert interval == wilson and "resampling" not in interval.text()


def _outputs(right: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that answer class 0 on every row, and targets 0 where `right`."""
    outputs = torch.tensor([[1.0, 0.0]]).repeat(len(right), 1)
    return outputs, torch.as_tensor((~right).astype(np.int64))


def _context(y: np.ndarray, groups: np.ndarray) -> SimpleNamespace:
    data = TaskData("patients", "table", "classification", np.zeros((len(y), 2), np.float32),
                    y, class_names=["no", "yes"], groups=groups,
                    keys=[Key("patient_id", "group", declared=False)])
    test = Arrays(np.zeros((len(y), 2)), y, rows=np.arange(len(y)))
    return SimpleNamespace(data=data, splits={"test": test}, target_log=False, meta={},
                           config=SimpleNamespace(run=SimpleNamespace(seed=SEED)))


def _grouped_row(right: np.ndarray, groups: np.ndarray) -> dict:
    ctx = _context((~right).astype(np.int64), groups)
    num_right, num_wrong = int(right.sum()), int((~right).sum())
    row = {"test_accuracy": num_right / len(right),
           "test_confusion": [[num_right, 0], [num_wrong, 0]],
           "test_baseline_class": "no", "test_baseline_accuracy": num_right / len(right),
           "test_balanced_accuracy": 0.5,
           "test_per_class": {"recall": [1.0, 0.0], "support": [num_right, num_wrong]}}
    row["test_groups"] = _test_groups(ctx)  # the stage counts them once, before the interval
    row.update(_accuracy_group_interval(ctx, *_outputs(right)))
    return ctx, row


def test_the_evaluate_line_verdict_and_report_give_the_groups_interval() -> None:
    right, groups = patients()
    ctx, row = _grouped_row(right, groups)
    low, high = bootstrap_by_hand(right, groups, SEED)
    np.testing.assert_allclose(row[GROUP_INTERVAL], [low, high], atol=1e-12)
    assert row["test_groups"] == 118 and row["test_group_column"] == "patient_id"
    said = f"{100 * low:.1f}-{100 * high:.1f}%"
    assert (f"95% interval {said} (resampling the 118 patient_id groups)"
            in _test_message(ctx, row))
    assert (f"95% CI {said}, {len(right)} rows, resampling the 118 patient_id groups"
            in _beside_accuracy(row))
    cell = dict(score_table(row))["test accuracy, 95% interval"]
    assert cell.startswith(f"{100 * low:.1f} – {100 * high:.1f} % (bootstrap resampling the "
                           "118 patient_id groups, 2,000 resamples")
    headline = dict(_headline(RunData(path=Path("."), meta={}, test=row)))
    label = f"95% interval, {len(right):,} test rows (resampling the 118 patient_id groups)"
    assert headline[label] == f"{100 * low:.1f}–{100 * high:.1f} %"


def test_near_majority_baseline_reads_the_groups_interval() -> None:
    # the audit's numbers: 457 of 605 visits right (75.5%); always 'no' scores 424 (70.1%).
    # Wilson over the visits, 72.0-78.8%, clears 70.1%; resampling the 118 patients,
    # 68.3-82.6%, reaches it
    confusion = [[400, 24], [124, 57]]
    train = np.array([0] * 70 + [1] * 30)
    wilson = accuracy_interval(457, 605)
    assert wilson is not None and wilson.low > 424 / 605
    rows_only, found = class_results(confusion, train, ["no", "yes"], scores={
        "test_confusion": confusion})
    assert [f.code for f in found] == []
    grouped = {"test_confusion": confusion, GROUP_INTERVAL: [0.683, 0.826], "test_groups": 118}
    _, found = class_results(confusion, train, ["no", "yes"], scores=grouped)
    assert [f.code for f in found] == ["near_majority_baseline"]
    assert "resampling the 118 groups" in found[0].message
    assert found[0].evidence["accuracy_low"] == 0.683


def test_every_row_right_is_no_zero_width_interval():
    """Review s13 final F1: every resample of 590 right rows draws 100%, so the bootstrap said
    "100-100%", narrower than Wilson over the rows; Wilson over the 118 groups stands in."""
    from trainwise.train.group_interval import group_accuracy_interval
    from trainwise.train.intervals import accuracy_interval, split_accuracy_interval

    groups = np.repeat(np.arange(118), 5)
    bounds = group_accuracy_interval(np.ones(590, bool), groups, seed=0)
    assert bounds == (1.0, 1.0)  # the degenerate bootstrap itself
    row = {"test_confusion": [[590, 0], [0, 0]], "test_accuracy_group_interval": list(bounds),
           "test_groups": 118, "test_group_column": "patient_id"}
    said = split_accuracy_interval(row)
    by_groups = accuracy_interval(118, 118)
    assert (said.low, said.high) == pytest.approx((by_groups.low, 1.0))
    assert said.low < accuracy_interval(590, 590).low  # wider than Wilson over the rows
