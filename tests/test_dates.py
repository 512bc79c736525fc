"""Dates in tables: date text in common formats is read as dates (the day/month order said when
ambiguous), encoded alike from CSV and parquet, and never taken for a group key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.dates import parse_date_columns, read_dates
from trainwise.data.keys import plan_keys
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data

DAYS = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.arange(0, 300, 3), "D")  # 100 dates


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%b %d, %Y",
                                 "%Y-%m-%d %H:%M:%S"])
def test_common_formats_read_as_the_dates_written(fmt):
    """Days run past the 12th, so each format has one reading: it must give the dates back."""
    reading = read_dates(pd.Series(DAYS.strftime(fmt), dtype=object))
    assert reading is not None and reading.other_reading == ""
    np.testing.assert_array_equal(reading.values.to_numpy("datetime64[ns]"),
                                  DAYS.to_numpy("datetime64[ns]"))


@pytest.mark.parametrize("values", [
    ["00123", "04567"] * 50,  # zip codes stored as text
    ["1.2.3", "2.0.1"] * 50,  # versions
    ["red", "blue"] * 50,
    ["2023", "2024"] * 50])  # years alone: a number, not a date
def test_text_that_is_not_a_full_date_is_left_alone(values):
    assert read_dates(pd.Series(values, dtype=object)) is None


def test_ambiguous_day_month_order_is_read_month_first_and_said():
    early = pd.Series(["01/05/2024", "02/03/2024", "12/11/2024"] * 20, dtype=object)
    frame, [warn] = parse_date_columns(pd.DataFrame({"seen": early}))
    assert frame["seen"][0] == pd.Timestamp("2024-01-05")  # January 5: pandas' default
    assert warn.code == "ambiguous_dates" and "MM/DD/YYYY" in warn.message
    assert "DD/MM/YYYY" in warn.message and "2024-01-05" in warn.message
    assert "data.dayfirst=true" in warn.fix
    frame, [warn] = parse_date_columns(pd.DataFrame({"seen": early}), dayfirst=True)
    assert frame["seen"][0] == pd.Timestamp("2024-05-01") and "data.dayfirst=false" in warn.fix


def test_a_day_above_12_settles_the_order_without_a_warning():
    dates = pd.Series(["01/05/2024", "25/05/2024"] * 30, dtype=object)
    frame, findings = parse_date_columns(pd.DataFrame({"seen": dates}))
    assert findings == [] and frame["seen"][0] == pd.Timestamp("2024-05-01")


@pytest.mark.parametrize("dayfirst", [False, True])
@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S+01:00", "%Y/%m/%d"])
def test_year_first_dates_are_year_month_day_and_not_ambiguous(fmt, dayfirst):
    """Month starts (2001-01-01, 2001-02-01, ...) have no day above 12, but year-first dates
    are never year-day-month (ISO 8601): no warning, and data.dayfirst does not flip them."""
    months = pd.date_range("2001-01-01", periods=36, freq="MS")
    text = pd.Series(months.strftime(fmt), dtype=object)
    frame, findings = parse_date_columns(pd.DataFrame({"date": text}), dayfirst=dayfirst)
    assert findings == []
    np.testing.assert_array_equal(frame["date"].to_numpy("datetime64[ns]"),
                                  (months - pd.Timedelta(hours=1 if "+01" in fmt else 0))
                                  .to_numpy("datetime64[ns]"))


def test_unreadable_cells_are_missing_with_a_warning_naming_them():
    dates = pd.Series(list(DAYS.strftime("%Y-%m-%d")) + ["soon"], dtype=object)
    frame, [warn] = parse_date_columns(pd.DataFrame({"seen": dates}))
    assert frame["seen"].isna().sum() == 1 and warn.code == "unreadable_dates"
    assert "'soon' x1" in warn.message and "data.na_values" in warn.fix


def table(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"dose": rng.normal(size=n), "seen": DAYS[:n],
                         "label": rng.integers(0, 2, n)})


def test_csv_and_parquet_dates_are_the_same_features(tmp_path):
    """A parquet datetime was days since 1970 and the same dates from a CSV a text code."""
    frame = table()
    frame.to_parquet(tmp_path / "t.parquet")
    frame.assign(seen=frame["seen"].dt.strftime("%m/%d/%Y")).to_csv(tmp_path / "t.csv",
                                                                   index=False)
    kwargs = {"target": "label", "time_column": "none"}
    from_csv = load_data(str(tmp_path / "t.csv"), **kwargs)
    from_parquet = load_data(str(tmp_path / "t.parquet"), **kwargs)
    # 297 days: no month feature (a later part would hold months training never saw)
    assert from_csv.feature_names == ["dose", "seen", "seen_day_of_week"]
    np.testing.assert_array_equal(from_csv.x, from_parquet.x)
    seen = frame["seen"]
    expected = np.column_stack([(seen - seen.min()).dt.days, seen.dt.day_of_week])
    np.testing.assert_array_equal(from_csv.x[:, 1:], expected.astype(np.float32))
    [said] = [f for f in from_csv.findings if f.code == "date_feature"]
    assert "days since 2023-01-01, weekday (0 = Monday)" in said.message
    assert "split.time_column" in said.fix
    years = frame.assign(seen=pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(100) * 11,
                                                                          "D"))  # 3 years
    over_years = table_data(years, "label", time_column="none")
    assert over_years.feature_names == ["dose", "seen", "seen_month", "seen_day_of_week"]
    np.testing.assert_array_equal(over_years.x[:, 2], years["seen"].dt.month.to_numpy(np.float32))


def test_two_date_columns_one_time_key_one_feature_and_never_a_group_key():
    """The audit's twodates.csv: an ISO order date and a US-format last login."""
    frame = table().assign(order_date=DAYS.strftime("%Y-%m-%d").repeat(2)[:100],  # repeats
                           last_login=(DAYS + pd.Timedelta(days=40)).strftime("%m/%d/%Y"))
    frame = frame.drop(columns="seen")
    data = table_data(frame, "label")
    assert [(k.column, k.role) for k in data.keys] == [("order_date", "time")]
    assert data.feature_names == ["dose", "last_login_days_before_order_date",
                                  "last_login_day_of_week"]
    # days before the row's own order date, not since a fixed origin that later (validation,
    # test) rows would lie beyond: by hand, order dates repeat each day twice
    order = pd.to_datetime(frame["order_date"])
    login = pd.to_datetime(frame["last_login"], format="%m/%d/%Y")
    np.testing.assert_allclose(data.x[:, 1], ((order - login).dt.days).to_numpy(np.float32))
    unkeyed = table_data(frame, "label", time_column="none")
    assert unkeyed.keys == [] and "order_date" in unkeyed.feature_names
    assert plan_keys(frame, "label", time_column="none").keys == []  # the text, unparsed


def test_data_dayfirst_reaches_the_reader(tmp_path):
    from trainwise.config import load_config
    from trainwise.stages import load_configured

    frame = table().assign(seen=["01/05/2024", "02/03/2024"] * 50)
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = load_config(None, [f"data.source=\"{tmp_path / 't.csv'}\"", "data.dayfirst=true",
                                "split.time_column=\"seen\""])
    assert load_configured(config).times[0] == np.datetime64("2024-05-01")


def test_dates_in_two_formats_are_read_cell_by_cell_with_a_warning():
    """An export merged from two sources: 70% '2020-03-04', 30% '04/03/2020' was a 100-level
    category. Each cell is read in its own format; the days past the 12th settle the order."""
    text = pd.Series(DAYS.strftime("%Y-%m-%d"), dtype=object)
    text[1::3] = DAYS[1::3].strftime("%d/%m/%Y")
    frame, [said] = parse_date_columns(pd.DataFrame({"listed": text}))
    np.testing.assert_array_equal(frame["listed"].to_numpy("datetime64[ns]"),
                                  DAYS.to_numpy("datetime64[ns]"))
    assert said.code == "mixed_date_formats"
    assert said.evidence["formats"] == ["%Y-%m-%d", "%d/%m/%Y"]
    assert said.evidence["counts"] == [67, 33] and "YYYY-MM-DD" in said.fix


def test_dates_appended_from_two_sources_are_read_whole_not_judged_on_the_head():
    """All of source A's rows ('2020-03-04'), then source B's ('04/03/2020'): the two-format
    case was decided on the first 200 cells, which held one format, so the column stayed a
    many-level text column. Reference: each block parsed in its own format."""
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(400) * 2, "D")
    text = pd.Series([*days[:300].strftime("%Y-%m-%d"), *days[300:].strftime("%d/%m/%Y")],
                     dtype=object)
    reading = read_dates(text)
    assert (reading.format, reading.second_format) == ("%Y-%m-%d", "%d/%m/%Y")
    assert (reading.num_second, reading.num_unreadable) == (100, 0)
    np.testing.assert_array_equal(reading.values.to_numpy("datetime64[ns]"),
                                  days.to_numpy("datetime64[ns]"))
    text[350:] = "later"  # half the second block no date at all: 87.5% dates, not 95%
    assert read_dates(text) is None


def test_text_that_is_only_partly_dates_stays_text():
    text = pd.Series(DAYS.strftime("%Y-%m-%d"), dtype=object)
    text[::3] = "later"  # a third of the cells no date in any format
    assert read_dates(text) is None
