"""Key inference: subject ids and timestamps found by name and value; features left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.keys import name_tokens, plan_keys
from trainwise.data.tables import table_data
from trainwise.findings import TrainwiseError


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


def test_a_saved_pandas_index_is_a_row_id(tmp_path):
    """df.to_csv() writes the index as 'Unnamed: 0'; on a file sorted by label it is the label."""
    rows = frame().sort_values("label")  # the index is now shuffled, unique per row
    rows.to_csv(tmp_path / "t.csv")
    saved = pd.read_csv(tmp_path / "t.csv")
    assert saved.columns[0] == "Unnamed: 0"
    plan = plan_keys(saved, "label")
    assert plan.row_ids == ["Unnamed: 0"] and "pandas index" in plan.reasons["Unnamed: 0"]
    reset = rows.reset_index(drop=True).reset_index()  # 'index' = 0..n-1
    assert plan_keys(reset, "label").row_ids == ["index"]


@pytest.mark.parametrize("start", [0, 1])
def test_the_row_number_is_a_row_id_whatever_its_name(start):
    plan = plan_keys(frame().assign(n=np.arange(start, 400 + start)), "label")
    assert plan.row_ids == ["n"] and "row number" in plan.reasons["n"]


def test_integers_named_as_numbers_are_row_ids_when_unique():
    rng = np.random.default_rng(1)
    data = frame().assign(account_number=rng.permutation(400) + 100_000,  # as in regress.csv
                          order_no=rng.permutation(400),
                          num_rooms=rng.integers(1, 9, 400),  # repeats: a feature
                          # counts unique in a small file: a number word first names a count
                          num_words=rng.choice(100_000, 400, replace=False),
                          number_of_visits=rng.choice(5_000, 400, replace=False))
    assert plan_keys(data, "label").row_ids == ["account_number", "order_no"]


def test_increasing_unique_integers_are_flagged_but_kept():
    """Years or epoch seconds also increase down a file: warned about, not dropped."""
    rng = np.random.default_rng(2)
    data = frame().assign(year=np.arange(1800, 2200),  # consecutive but not the row number
                          seen=np.cumsum(rng.integers(1, 50, 400)),
                          shuffled=rng.permutation(400) * 7)  # unique, not ordered: a feature
    plan = plan_keys(data, "label")
    assert plan.row_ids == [] and plan.ordered_ids == ["year", "seen"]


def test_an_id_repeated_only_by_copied_rows_is_a_row_id():
    data = frame()
    data["record_id"] = [f"r{i:03d}" for i in range(400)]
    copies = pd.concat([data, data.iloc[:10]], ignore_index=True)  # 10 duplicated records
    assert plan_keys(copies, "label").row_ids == ["record_id"]
    reused = copies.copy()
    reused.loc[400:, "score"] = 99.0  # same ids on different rows: not copies, not a row id
    assert plan_keys(reused, "label").row_ids == []


def test_a_categorical_with_enough_rows_per_level_is_a_feature_not_a_key():
    """The audit's city.csv: 40 cities, 37 rows each, set the label; the old rule took city for
    a group key and dropped it from the features."""
    data = frame(1500).assign(city=[f"city_{i % 40:02d}" for i in range(1500)])
    assert plan_keys(data, "label").keys == []
    rare = frame(1500).assign(city=[f"city_{i % 200:03d}" for i in range(1500)])  # 7.5 rows
    [key] = plan_keys(rare, "label").keys
    assert key.column == "city" and "too few to learn" in key.reason


def test_repeated_date_text_is_never_a_group_key():
    days = pd.date_range("2024-01-01", periods=100, freq="D").strftime("%m/%d/%Y")
    data = frame().assign(order_date=np.repeat(days, 4))  # 100 values x 4 rows, like a scan id
    assert plan_keys(data, "label", time_column="none").keys == []
    [key] = plan_keys(data, "label").keys
    assert (key.column, key.role) == ("order_date", "time")  # US dates are times too


@pytest.mark.parametrize(("column", "values", "suggested"), [
    ("year", np.arange(1800, 2200), True),  # calendar years: a yearly series
    ("year", np.arange(1800, 2200) // 4, False),  # 450..549: not calendar years
    ("Period", (np.arange(400) // 4).astype(float), True),  # floats: suggested, not taken
    ("month", np.arange(400) % 12 + 1, False),  # 1..12: a season, a feature
    ("year", np.arange(400) % 5 + 1, False),  # 'year 1..5' of a study: not calendar years
    ("years_experience", np.arange(400) % 40, False),  # a count of years, not a time
    ("yr", np.full(400, 2020.5), False)])
def test_period_columns_are_suggested_as_time_keys_never_taken(column, values, suggested):
    """A yearly series got a random split without a word about split.time_column (audit s8
    T7); a 'year' is also a row's property (built in 1990), so it is named, not used."""
    rng = np.random.default_rng(0)
    data = frame().assign(**{column: rng.permutation(values)})
    plan = plan_keys(data, "label")
    assert plan.keys == [] and (column in plan.periods) is suggested
    assert plan.series_periods == ([column] if suggested and column != "Period" else [])


@pytest.mark.parametrize(("column", "values", "taken"), [
    ("day", np.arange(400) // 2 + 1, True),  # days 1..200, two series: audit s13 F2
    ("month_index", np.arange(1, 401), True),  # months counted past one year
    ("Period", np.arange(400) // 4, True),  # repeats: a panel
    ("t", np.arange(400) % 100, False),  # 't' names temperatures as often: review s13 VD1
    ("step", np.arange(400), True),
    ("week", np.arange(400) % 50 + 1, False),  # week 1..50 of a year: a season
    ("day", np.arange(400) % 31 + 1, False),  # a day of the month: a season
    ("day", (np.arange(400) // 2 + 1).astype(float) + 0.5, False),  # not integers
    ("day_index", np.arange(400), True), ("week_no", np.arange(400) // 2, True),
    ("days_since_visit", np.arange(400) % 90 + 1, False),  # a duration: a feature
    ("num_days", np.arange(400) % 90 + 1, False)])
def test_integer_step_counts_are_taken_as_time_keys(column, values, taken):
    """Audit s13 F2: an integer `day` of 1..728 per store got a silent random split of a lagged
    series; integers named day/week/month/period/step (past one calendar cycle) count time
    steps and are taken as the time key, as dates are (when their values look like an index)."""
    rng = np.random.default_rng(0)
    data = frame().assign(**{column: rng.permutation(values)})
    plan = plan_keys(data, "label")
    assert [(k.column, k.role) for k in plan.keys] == ([(column, "time")] if taken else [])
    assert plan_keys(data, "label", time_column="none").keys == []
    dated = data.assign(seen=pd.date_range("2020-01-01", periods=400, freq="D"))
    assert [k.column for k in plan_keys(dated, "label").keys] == ["seen"]  # dates first


RANDOM = np.random.default_rng(1)


@pytest.mark.parametrize(("column", "values"), [
    ("steps", RANDOM.integers(500, 20000, 400)),  # a daily step count
    ("days", RANDOM.integers(1, 60, 400)),  # length of stay
    ("months", RANDOM.integers(1, 72, 400)),  # tenure
    ("t", RANDOM.integers(-10, 40, 400)),  # a temperature
    ("step", RANDOM.integers(500, 20000, 400)),  # counts: 2% of 500..20000 hold a row
    ("day", RANDOM.integers(1, 366, 400)),  # day of year: 67% of 1..365 hold a row
    ("day", RANDOM.integers(32, 90, 400))])  # every value held, 6.9 rows each, variance ~7
def test_count_columns_named_for_steps_are_not_time_keys(column, values):
    """Review s13 VD1: plural and one-letter step words, and step-named counts whose values do
    not look like an index (gaps, rows spread as random draws spread them), became the time
    key: a table split by its `steps` count put the 120 most active people in test."""
    plan = plan_keys(frame().assign(**{column: values}), "label")
    assert plan.keys == []
    # a singular step word is still named as a possible time, as periods are
    assert (column in plan.periods) is (column in ("step", "day"))


def test_a_taken_day_index_splits_by_time_and_says_how_to_undo_it():
    from trainwise.data.plan import SplitSettings, key_findings, plan_split
    from trainwise.data.tables import table_data

    data = table_data(frame().assign(day=np.arange(400) // 2 + 1), "label")
    [found] = [f for f in key_findings(data) if f.code == "inferred_time_key"]
    assert "'day'" in found.message and "split.time_column=none" in found.fix
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    assert result.strategy == "time"
    days = np.arange(400) // 2 + 1
    assert days[result.train].max() <= days[result.val].min()


def test_a_period_column_is_a_warning_for_a_series_and_a_note_for_a_panel():
    from trainwise.data.tables import table_data

    rng = np.random.default_rng(0)
    series = frame(24).assign(year=rng.permutation(np.arange(2001, 2025)))
    [hint] = [f for f in table_data(series, "label").findings if f.code == "possible_time_key"]
    assert hint.severity.value == "warning" and "2001..2024" in hint.message
    assert "split at random" in hint.message
    assert "split.time_column=\"year\"" in hint.fix
    panel = frame(120).assign(year=np.tile(np.arange(2001, 2025), 5))
    [hint] = [f for f in table_data(panel, "label").findings if f.code == "possible_time_key"]
    assert hint.severity.value == "info"


def test_no_period_suggestion_beside_a_time_key_or_with_time_column_none():
    dated = frame().assign(year=np.arange(1800, 2200),
                           seen=pd.date_range("2020-01-01", periods=400, freq="D"))
    assert plan_keys(dated, "label").periods == {}
    assert plan_keys(frame().assign(year=np.arange(1800, 2200)), "label",
                     time_column="none").periods == {}


def test_an_increasing_year_column_says_it_may_be_a_time():
    from trainwise.data.tables import table_data

    data = table_data(frame().assign(year=np.arange(1800, 2200)), "label")
    [ordered] = [f for f in data.findings if f.code == "ordered_id_column"]
    assert "like a time (its name says 'year'" in ordered.message
    assert ordered.fix.startswith("If it is a time, declare it: --set 'split.time_column")
    assert not [f for f in data.findings if f.code == "possible_time_key"]  # said once


def test_a_record_number_in_a_label_sorted_file_is_one_warning_that_says_delete_it():
    # the review's case: 'serial' = 1000, 1002, ... in a file sorted by label was both an
    # ordered_id_column ("delete the column") and a target_leak whose fix ("truly known when
    # predicting? nothing to do") kept it, as a record number is known then
    from trainwise.data.tables import table_data

    table = frame().sort_values("label", kind="stable").reset_index(drop=True)
    table = table.assign(serial=1000 + 2 * np.arange(len(table)), copy=table["label"] * 3)
    data = table_data(table, "label")
    [ordered] = [f for f in data.findings if f.code == "ordered_id_column"]
    [leak] = [f for f in data.findings if f.code == "target_leak"]
    assert ordered.evidence["column"] == "serial"
    assert "It alone predicts 'label' with balanced accuracy 0.99" in ordered.message
    assert "delete the column from the file" in ordered.fix
    assert leak.evidence["columns"] == ["copy"]  # the leak check still runs on the rest


@pytest.mark.parametrize("cell", [lambda i: np.array([i % 3, 1]), lambda i: [i % 3, 1],
                                  lambda i: {"k": i % 3}])
def test_a_column_of_lists_is_refused_before_key_inference(cell):
    """Audit s14 Z20: a parquet list column (tags, embeddings) crashed _group_reason with
    "unhashable type: 'numpy.ndarray'". table_data refuses it by name first (as_csv_table,
    review s14 VD7), so key inference never sees one (keys' own guard was a copy)."""
    with_tags = frame().assign(tags=[cell(i) for i in range(400)])
    with pytest.raises(TrainwiseError, match="column 'tags' of the table holds"):
        table_data(with_tags, "label")
