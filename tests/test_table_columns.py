"""What became of each column of a table: empty, listed (data.drop_columns) and copied columns
are left out with a finding, and every column of the file appears once in the column table
that meta.json and the report's Data section show."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import trainwise
from trainwise.config import Config
from trainwise.data.errors import DataError
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data
from trainwise.reporting.html import build_report


def _houses(num_rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    beds = rng.integers(1, 6, num_rows).astype(float)
    beds[:7] = np.nan
    return pd.DataFrame({
        "house_id": [f"H{i:05d}" for i in range(num_rows)],
        "bedrooms": beds,
        "kind": rng.choice(["flat", "house", "villa"], num_rows),
        "country": "US",
        "listed": pd.date_range("2020-01-01", periods=num_rows, freq="7D").strftime("%Y-%m-%d"),
        "bedrooms copy": beds,
        "price": rng.normal(3e5, 5e4, num_rows),
        "Unnamed: 8": np.nan})


def test_an_empty_trailing_excel_column_is_left_out_not_an_error():
    findings, _ = trainwise.audit(table_data(_houses(), "price"))
    assert not [f for f in findings if f.severity.value == "error"]  # was missing_values
    [dropped] = [f for f in findings if f.code == "empty_column_dropped"]
    assert dropped.severity.value == "info" and dropped.evidence["columns"] == ["Unnamed: 8"]


def test_an_empty_named_column_is_a_warning():
    frame = _houses().rename(columns={"Unnamed: 8": "hoa_fee"})
    data = table_data(frame, "price")
    [dropped] = [f for f in data.findings if f.code == "empty_column_dropped"]
    assert dropped.severity.value == "warning" and "hoa_fee" in dropped.message
    assert not any(name.startswith("hoa_fee") for name in data.feature_names)


def test_listed_columns_are_left_out_through_the_config(tmp_path):
    path = tmp_path / "houses.csv"
    _houses().to_csv(path, index=False)
    config = Config.model_validate({"data": {"source": str(path), "target": "price",
                                             "drop_columns": ["kind", "bedrooms"]}})
    data = load_data(config.data.source, "price", drop_columns=tuple(config.data.drop_columns))
    assert not any(n.startswith("kind") or n == "bedrooms" for n in data.feature_names)
    treated = {row["column"]: row["treatment"] for row in data.columns}
    assert treated["kind"] == treated["bedrooms"] == "dropped: listed in data.drop_columns"


def test_a_misspelt_listed_column_names_the_closest_one():
    with pytest.raises(DataError, match="'Bedroom'.*closest is 'bedrooms'"):
        table_data(_houses(), "price", drop_columns=("Bedroom",))
    with pytest.raises(DataError, match="the target"):
        table_data(_houses(), "price", drop_columns=("price",))


def test_every_column_appears_once_with_its_treatment():
    data = table_data(_houses(), "price", time_column="none")  # 'listed' a feature, not a key
    table = {row["column"]: row for row in data.columns}
    assert list(table) == list(_houses().columns)  # the file's order, each column once
    assert table["house_id"]["treatment"].startswith("dropped:")
    assert "identifier" in table["house_id"]["treatment"]
    assert table["bedrooms"]["read_as"] == "number"
    assert "7 missing cells filled with the training mean" in table["bedrooms"]["treatment"]
    assert table["kind"]["treatment"] == "one-hot: 3 levels"
    assert table["country"]["treatment"] == "dropped: constant (every row is 'US')"
    assert table["bedrooms copy"]["treatment"] == \
        "dropped: a copy of 'bedrooms', equal in every row"
    assert table["listed"]["read_as"] == "date"
    assert table["listed"]["treatment"].startswith("date, as days since 2020-01-01")
    assert table["price"]["treatment"] == "the target (regression)"
    classes = table_data(_houses().assign(price=["cheap", "dear"] * 60), "price")
    assert {r["column"]: r for r in classes.columns}["price"]["treatment"] == \
        "the target (classification, 2 classes)"
    assert table["Unnamed: 8"] == {"column": "Unnamed: 8", "read_as": "empty",
                                   "treatment": "dropped: empty, no value"}
    # the features match the table: one-hot kind, no constant, no copy
    assert sorted(n for n in data.feature_names if n.startswith("kind")) == [
        "kind_flat", "kind_house", "kind_villa"]
    assert not any(n.startswith(("country", "bedrooms copy")) for n in data.feature_names)
    codes = {f.code: f for f in data.findings}
    assert codes["constant_columns"].evidence["columns"] == ["country"]
    assert codes["duplicate_column"].evidence["copies"] == {"bedrooms copy": "bedrooms"}


def test_many_levels_and_a_missing_level_are_counted_as_encoded():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"city": [f"c{i}" for i in rng.integers(0, 100, 600)],
                          "garage": pd.array(rng.random(600) < 0.5, dtype="boolean"),
                          "y": rng.normal(size=600)})
    frame.loc[:9, "garage"] = pd.NA
    data = table_data(frame, "y", group_column="none")
    table = {row["column"]: row for row in data.columns}
    levels = frame["city"].nunique()
    assert table["city"]["treatment"] == (f"one-hot: its 63 most frequent of {levels} levels, "
                                          "the other levels share one '(other)' column")
    assert sum(n.startswith("city_") for n in data.feature_names) == 64
    assert table["garage"]["read_as"] == "bool"
    assert table["garage"]["treatment"] == "one-hot: 2 levels, plus a level for its 10 " \
                                           "missing cells"
    assert sum(n.startswith("garage_") for n in data.feature_names) == 3


def test_the_run_records_the_column_table_and_the_report_shows_it(tmp_path):
    result = trainwise.run(data=_houses(), until="data", report=False, overrides=[
        "data.target=\"price\"", "data.drop_columns=[\"kind\"]", "run.threads=1",
        f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    meta = json.loads((result.path / "meta.json").read_text())
    assert [row["column"] for row in meta["data"]["columns"]] == list(_houses().columns)
    assert not any(name.startswith("kind") for name in meta["data"]["feature_names"])
    html = build_report(result.path).read_text(encoding="utf-8")
    assert "dropped: constant (every row is &#39;US&#39;)" in html
    assert "bedrooms copy" in html


def test_unhashable_cells_are_not_compared_but_do_not_stop_the_check():
    from trainwise.data.column_drops import drop_copies

    frame = pd.DataFrame({"tags": [[1], [2]] * 3, "tags2": [[1], [2]] * 3,
                          "a": np.arange(6), "b": np.arange(6)})
    _, copies, _ = drop_copies(frame, [])
    assert copies == {"b": "a"}


def test_a_copy_missing_in_other_rows_is_warned_about_and_kept():
    frame = _houses()
    frame.loc[:30, "bedrooms copy"] = frame.loc[:30, "bedrooms"].fillna(2.0)  # fills gaps
    frame["flag_a"] = np.where(np.arange(120) % 3 == 0, np.nan, 0.0)  # sparse flags agreeing
    frame["flag_b"] = np.where(np.arange(120) % 3 == 1, np.nan, 0.0)  # on their zeros only
    data = table_data(frame, "price", time_column="none")
    [near] = [f for f in data.findings if f.code == "near_duplicate_column"]
    assert near.evidence["copies"] == {"bedrooms copy": "bedrooms"}
    assert "bedrooms copy" in data.feature_names and "bedrooms" in data.feature_names
    treated = {r["column"]: r["treatment"] for r in data.columns}
    assert treated["bedrooms copy"].endswith("equals 'bedrooms' wherever both have a value")
