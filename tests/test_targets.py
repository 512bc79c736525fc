"""Target doubts: a task inferred from whole numbers, and labels differing only in case or
spaces, are warned about (naming data.task), never silently changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.tables import table_data


def load(target: np.ndarray | list, task: str = "auto"):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=len(target)), "y": target})
    return table_data(frame, "y", task=task)


def doubts(data) -> list:
    return [f for f in data.findings if f.code == "task_inferred"]


@pytest.mark.parametrize(("values", "task", "other"), [
    (np.arange(300) % 15, "classification", "regression"),  # days_left 0..14, as intreg.csv
    ((np.arange(300) % 15).astype(float), "classification", "regression"),  # 0.0 .. 14.0
    (np.arange(300) % 30, "regression", "classification"),  # 30 codes: regression, doubtful
])
def test_a_doubtful_task_is_named_with_the_setting(values, task, other):
    data = load(values)
    [finding] = doubts(data)
    assert data.task == task and finding.evidence["task"] == task
    assert finding.evidence["num_values"] == len(np.unique(values))
    assert f"--set data.task={other}" in finding.fix
    assert not doubts(load(values, task=task))  # declared: no doubt left


@pytest.mark.parametrize("values", [np.arange(300) % 10, np.arange(300) % 150,
                                    np.linspace(0, 1, 300)])
def test_a_clear_task_gives_no_warning(values):
    assert not doubts(load(values))


def test_lookalike_labels_stay_separate_classes_with_a_warning():
    labels = ["no"] * 50 + ["No"] * 4 + ["yes"] * 20 + ["Yes "] * 2 + ["maybe"] * 24
    data = load(labels)
    assert data.class_names == sorted(set(labels))  # as pandas factorizes them: 5 classes
    [finding] = [f for f in data.findings if f.code == "lookalike_labels"]
    assert finding.evidence["groups"] == [["no", "No"], ["yes", "Yes "]]
    assert "'Yes ' x2" in finding.message
    assert not load([s.strip().lower() for s in labels]).findings
