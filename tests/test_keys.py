"""Key inference: subject ids and timestamps found by name and value; features left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.keys import name_tokens, plan_keys


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),  # 72 repeated ints: a feature, not a key
        "colour": rng.choice(["red", "green", "blue"], n),  # 3 levels: a categorical feature
        "score": rng.normal(size=n),
        "label": rng.integers(0, 2, n),
    })


@pytest.mark.parametrize(("name", "tokens"), [
    ("patientID", ["patient", "id"]), ("Patient_Id", ["patient", "id"]),
    ("subject-id", ["subject", "id"]), ("createdAt", ["created", "at"]), ("x2", ["x2"])])
def test_name_tokens(name, tokens):
    assert name_tokens(name) == tokens


def test_plain_features_are_not_keys():
    plan = plan_keys(frame(), "label")
    assert plan.keys == [] and plan.row_ids == []


@pytest.mark.parametrize("column", ["patient_id", "SubjectID", "user", "pid"])
def test_subject_names_with_repeats_are_inferred(column):
    data = frame().assign(**{column: np.repeat(np.arange(40), 10)})
    [key] = plan_keys(data, "label").keys
    assert (key.column, key.role, key.declared) == (column, "group", False)
    assert "40 values" in key.reason


def test_repeated_high_cardinality_text_is_inferred_by_value():
    data = frame().assign(scan=[f"s{i // 4:03d}" for i in range(400)])  # 100 values x 4 rows
    [key] = plan_keys(data, "label").keys
    assert key.column == "scan" and "distinct text values" in key.reason


def test_unique_ids_are_row_ids_not_keys():
    data = frame().assign(id=np.arange(400), file=[f"img{i}.png" for i in range(400)])
    plan = plan_keys(data, "label")
    assert plan.keys == [] and sorted(plan.row_ids) == ["file", "id"]


@pytest.mark.parametrize(("values", "name"), [
    (pd.date_range("2024-01-01", periods=400, freq="h"), "when"),
    (pd.date_range("2024-01-01", periods=400, freq="D").strftime("%Y-%m-%d"), "day"),
    (np.arange(400, dtype=float) * 60.0, "timestamp")])
def test_timestamps_are_inferred(values, name):
    [key] = plan_keys(frame().assign(**{name: values}), "label").keys
    assert (key.column, key.role) == (name, "time")


def test_declared_keys_win_and_none_turns_inference_off():
    data = frame().assign(patient_id=np.repeat(np.arange(40), 10),
                          site=np.repeat(np.arange(8), 50))
    [key] = plan_keys(data, "label", group_column="site").keys
    assert (key.column, key.declared) == ("site", True)
    assert plan_keys(data, "label", group_column="none").keys == []
    with pytest.raises(DataError, match="group column 'ward' is not in"):
        plan_keys(data, "label", group_column="ward")
