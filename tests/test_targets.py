"""Target doubts: a task inferred from whole numbers, and labels differing only in case or
spaces, are warned about (naming data.task), never silently changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.arrays import array_data
from trainwise.data.errors import DataError
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
                                    np.linspace(0, 1, 300), np.arange(300) % 21 + 0.5,
                                    np.arange(190) % 20 + 0.5])
def test_a_clear_task_gives_no_warning(values):
    """21 levels (over 20), or 20 levels on 190 rows (under 10 rows each): no doubt."""
    assert not doubts(load(values))


def test_few_non_whole_values_are_doubted_as_classes():
    """-0.5, 0, 0.5 on 200 rows (ratings in half steps, -0.0 among them) was trained as a
    regression without a word (audit s14 Z6): the doubt names the values and the setting."""
    values = np.array([-0.5, 0.0, -0.0, 0.5] * 50)
    data = load(values)
    [finding] = doubts(data)
    assert data.task == "regression" and finding.evidence["num_values"] == 3
    assert "3 distinct values (-0.5, 0, 0.5) on 200 rows" in finding.message
    assert "--set data.task=classification" in finding.fix
    assert not doubts(load(values, task="regression"))  # declared: no doubt left
    assert len(load(values, task="classification").class_names) == 3
    x = np.random.default_rng(0).normal(size=(200, 2))
    assert doubts(array_data(x, values.astype(np.float32)))  # a .npz gets it too


def test_lookalike_labels_stay_separate_classes_with_a_warning():
    labels = ["no"] * 50 + ["No"] * 4 + ["yes"] * 20 + ["Yes "] * 2 + ["maybe"] * 24
    data = load(labels)
    assert data.class_names == sorted(set(labels))  # as pandas factorizes them: 5 classes
    [finding] = [f for f in data.findings if f.code == "lookalike_labels"]
    assert finding.evidence["groups"] == [["no", "No"], ["yes", "Yes "]]
    assert "'Yes ' x2" in finding.message
    assert not load([s.strip().lower() for s in labels]).findings


def test_arrays_get_the_task_doubt_a_table_gets():
    """A .npz or in-memory y of 16 counts was trained as 16 classes without the warning the
    same column in a CSV gets (audit s10 G8)."""
    values = np.arange(300) % 16
    x = np.random.default_rng(0).normal(size=(300, 2))
    [from_table] = doubts(load(values))
    [from_arrays] = doubts(array_data(x, values))
    assert (from_arrays.severity, from_arrays.evidence) == (from_table.severity,
                                                            from_table.evidence)
    assert "--set data.task=regression" in from_arrays.fix
    assert not doubts(array_data(x, values, task="classification"))  # declared


def test_many_repeated_whole_numbers_filling_a_range_are_noted_as_possible_class_ids():
    """1000 class ids of 20 rows each were regressed in silence: >100 values was no guess."""
    ids = np.arange(20_000) % 1000
    [note] = doubts(load(ids))
    assert note.severity == "info" and note.evidence["num_values"] == 1000
    assert "--set data.task=classification" in note.fix
    gaps = ids * 3  # amounts in steps (whole dollars) leave gaps: no class ids
    assert not doubts(load(gaps))
    assert not doubts(load(np.arange(300) % 150))  # 2 rows per value: amounts as likely


@pytest.mark.parametrize("values", [
    np.random.default_rng(1).normal(size=300),  # continuous: 300 one-row "classes"
    np.arange(300) * 7,  # whole numbers, each once
])
def test_classification_forced_on_a_continuous_target_names_regression(values):
    """442 one-row classes were called balanced, with no warning (audit s10 G10)."""
    x = np.random.default_rng(0).normal(size=(300, 2))
    for data in (load(values, task="classification"),
                 array_data(x, values, task="classification")):
        [finding] = [f for f in data.findings if f.code == "target_looks_continuous"]
        assert finding.severity == "warning" and finding.evidence["num_classes"] == 300
        assert 'data.task = "regression"' in finding.fix
    many_rows = np.arange(300) % 30  # 30 classes of 10 rows: classes, not a continuum
    assert not [f for f in load(many_rows, task="classification").findings
                if f.code == "target_looks_continuous"]


def test_a_one_column_target_is_flattened_with_a_note():
    x, y = np.zeros((6, 2)), np.array([[0], [1], [0], [1], [0], [1]])
    data = array_data(x, y)
    assert data.y.tolist() == [0, 1, 0, 1, 0, 1] and data.class_names == ["0", "1"]
    assert any("(6, 1)" in note and "flattened" in note for note in data.notes)


@pytest.mark.parametrize(("y", "said"), [
    ((np.random.default_rng(0).random((40, 5)) < 0.3).astype(int), "multi-label"),
    (np.random.default_rng(0).normal(size=(40, 3)), "multi-output"),
])
def test_a_target_of_several_columns_is_refused_with_what_to_do(y, said):
    """Multi-label and multi-output targets got 'expected (N,)' and a generic fix (G9)."""
    with pytest.raises(DataError) as caught:
        array_data(np.zeros((40, 2)), y)
    message = str(caught.value)
    assert said in message and "one target per row" in message
    assert "y[:, k]" in message and "trainwise.Monitor" in message


def test_a_one_hot_target_is_told_to_take_the_argmax():
    with pytest.raises(DataError, match=r"one-hot.*y.argmax\(axis=1\)"):
        array_data(np.zeros((4, 2)), np.eye(2)[[0, 1, 1, 0]])


def test_lookalike_labels_and_levels_are_grouped_by_one_rule():
    """The target and feature rules share markers.case_groups: case-folded (so 'Straße' and
    'STRASSE' meet, which lower() would keep apart) and stripped."""
    from trainwise.data.markers import case_groups, text_level_findings
    from trainwise.data.targets import lookalike_label_findings

    values = ["Straße"] * 5 + ["STRASSE"] * 3 + ["yes"] * 4 + [" Yes"] * 2 + ["no"] * 6
    counts = pd.Series(values).value_counts()
    assert sorted(map(sorted, case_groups(counts))) == [[" Yes", "yes"], ["STRASSE", "Straße"]]
    [label] = lookalike_label_findings(pd.Series(values), "y")
    [level] = text_level_findings(pd.DataFrame({"x": values}), [])
    assert label.evidence["groups"] == level.evidence["groups"] == case_groups(counts)
    assert "'Straße' x5 / 'STRASSE' x3" in label.message and "'Straße' x5" in level.message


def test_an_ordered_categorical_target_keeps_its_classes_and_their_order():
    """A pandas Categorical is no text (is_text said so, but dtype.kind 'O' let it through):
    '$5' < '$10' < '$20' categories were read as amounts, a regression target."""
    rng = np.random.default_rng(0)
    levels = ["$5", "$10", "$20", "?"]
    price = pd.Categorical(rng.choice(levels, 120), categories=levels, ordered=True)
    frame = pd.DataFrame({"x": rng.normal(size=120), "price": price})
    data = table_data(frame, "price", na_values=("?",))  # declared markers still masked
    assert data.task == "classification" and data.class_names == ["$5", "$10", "$20"]
    assert len(data.y) == int((frame["price"] != "?").sum())


@pytest.mark.parametrize(("requested", "codes"), [
    ("auto", ["task_inferred"]), ("classification", []), ("regression", [])])
def test_one_target_doubt_rule_for_both_loaders(requested, codes):
    """targets.target_findings is the rule tables and arrays both call (it was written out in
    each): 16 whole counts, stored as floats with a gap, inferred as classes and doubted."""
    from trainwise.data.tables import infer_task
    from trainwise.data.targets import target_findings

    values = pd.Series(np.arange(300) % 16, dtype=np.float64)
    values[3] = np.nan
    task = infer_task(values) if requested == "auto" else requested
    assert infer_task(values) == "classification"  # whole numbers, 16 values: classes
    assert [f.code for f in target_findings(values, requested, task, "y")] == codes
    x = np.random.default_rng(0).normal(size=(299, 2))
    from_arrays = array_data(x, values.dropna().to_numpy(), task=requested)
    assert [f.code for f in from_arrays.findings if f.code in ("task_inferred",
            "target_looks_continuous")] == codes
