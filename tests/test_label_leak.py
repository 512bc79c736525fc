"""Target leaks: a column that gives the target away alone is a warning naming it; honest data
(the built-in sets, churn.csv, a trending series with lags) gives none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import NearestNeighbors

from trainwise.config_sections import SplitConfig
from trainwise.data.audit import audit
from trainwise.data.label_leak import GROUP_KEY, LEAK_SCORE, _neighbour_scores, find_leaks
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data

CHURN = Path(__file__).resolve().parents[1] / "examples" / "churn.csv"


def leaks_in(findings) -> list:
    return [f for f in findings if f.code == "target_leak"]


def patients(num_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dose, age = rng.normal(size=num_rows), rng.normal(50, 10, num_rows)
    label = np.where(dose + 0.05 * (age - 50) + rng.normal(size=num_rows) > 0.5, "ill",
                     np.where(dose > -0.5, "mild", "well"))
    return pd.DataFrame({"dose": dose, "age": age, "label": label})


def series(num_rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A monthly series with a trend, like macro.csv: its lags predict it with R^2 ~0.97."""
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(0.05, 0.3, num_rows)) + np.sin(np.arange(num_rows) / 2)
    frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=num_rows, freq="MS")
                          .strftime("%Y-%m-%d"), "y": y})
    for k in (1, 2, 12):
        frame[f"lag{k}"] = frame["y"].shift(k).bfill()
    return frame


def test_a_text_copy_of_a_three_class_label_is_named():
    """One-hot, no single level column tells 3 classes apart; the column as read does."""
    frame = patients()
    frame["outcome_flag"] = frame["label"].map({"ill": "A", "mild": "B", "well": "C"})
    [leak] = leaks_in(table_data(frame, "label").findings)
    assert leak.evidence["columns"] == ["outcome_flag"]
    assert leak.evidence["scores"]["outcome_flag"] == 1.0
    assert "'outcome_flag' alone predicts 'label'" in leak.message and "drop" in leak.fix
    assert leaks_in(table_data(patients(), "label").findings) == []


def test_a_copy_of_the_target_plus_noise_is_named_by_its_r2():
    frame = series().drop(columns=["date"])
    rng = np.random.default_rng(1)
    frame["measured_y"] = 3 * frame["y"] + 0.01 * 3 * frame["y"].std() * rng.normal(
        size=len(frame))
    [leak] = leaks_in(table_data(frame, "y", task="regression").findings)
    assert leak.evidence["columns"] == ["measured_y"]  # the lags (R^2 ~0.97) are not
    assert leak.evidence["scores"]["measured_y"] > 0.999 and "R^2" in leak.message


def test_a_future_value_is_named_even_in_shuffled_rows_and_lags_are_not():
    frame = series()
    frame["y_next"] = frame["y"].shift(-1).ffill()
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    data = table_data(shuffled, "y", task="regression")
    assert [k.column for k in data.keys] == ["date"]
    [leak] = leaks_in(data.findings)
    assert leak.evidence["columns"] == ["y_next"] and leak.evidence["shifts"] == {"y_next": 1}
    assert "1 row later in time" in leak.message


def store_sales(num_stores: int = 6, num_days: int = 120, seed: int = 0) -> pd.DataFrame:
    """Integer unit sales per store and day (~30 distinct values over 720 rows: every target
    tied), target_next = the store's sales the next day, as in audit s13's sales_trend.csv."""
    rng = np.random.default_rng(seed)
    frames = []
    for store in range(num_stores):
        sales = rng.poisson(20 + 5 * np.sin(np.arange(num_days + 1) / 3)).astype(float)
        frames.append(pd.DataFrame({
            "store_id": f"S{store}", "promo": rng.integers(0, 2, num_days),
            "date": pd.date_range("2022-01-01", periods=num_days).strftime("%Y-%m-%d"),
            "sales": sales[:-1], "target_next": sales[1:]}))
    return pd.concat(frames, ignore_index=True)


def test_a_future_value_of_a_tied_integer_target_is_named_and_today_s_value_is_not():
    """Audit s13 F6: a target with ties (here 4% distinct) was never checked for a shift."""
    frame = store_sales()
    assert frame["target_next"].nunique() < 0.1 * len(frame)
    # the next day's target of the same store; its last day has none (kept as its own)
    frame["fut"] = frame.groupby("store_id")["target_next"].shift(-1).fillna(
        frame["target_next"])
    data = table_data(frame, "target_next", task="regression",
                      group_column="store_id")
    [leak] = leaks_in(data.findings)
    assert leak.evidence["columns"] == ["fut"] and leak.evidence["shifts"] == {"fut": 1}
    assert leaks_in(table_data(frame.drop(columns=["fut"]), "target_next",
                               task="regression", group_column="store_id").findings) == []


def test_a_lag_of_the_target_with_no_time_column_says_the_rows_are_a_series():
    """Audit s13 F2: with the date as a day number, no time key is found and the split is
    random; 'sales' (today's value of tomorrow's target) proves the rows are a series."""
    frame = store_sales()
    # a name the time-key inference does not take ('day' itself now is: audit s13 F2's other
    # half), so the rows reach the split with no time key
    frame["doy"] = pd.to_datetime(frame.pop("date")).dt.dayofyear
    frame = frame.rename(columns={"store_id": "store"})  # an '_id' name is a group key
    data = table_data(frame, "target_next", task="regression")
    assert data.times is None and leaks_in(data.findings) == []
    [said] = [f for f in data.findings if f.code == "series_without_time"]
    assert said.evidence["lags"] == {"sales": -1}
    assert said.evidence["time_candidates"] == ["doy"]
    assert said.evidence["key_candidates"] == ["store"]
    assert "split.time_column" in said.fix and "split.group_column" in said.fix
    timed = table_data(frame, "target_next", task="regression", time_column="doy")
    assert [f for f in timed.findings if f.code == "series_without_time"] == []


def test_sliding_windows_in_an_npz_are_told_to_save_times_not_a_time_column(tmp_path):
    """Review s13 VD6: an .npz of 20-value windows (x) and the next value (y) was told to set
    split.time_column, which arrays ignore; the fix asks for a `times` array, and following
    it silences the warning."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=520)).astype(np.float32)
    x, y = np.stack([walk[i:i + 20] for i in range(500)]), walk[20:]
    np.savez(tmp_path / "windows.npz", x=x, y=y)
    found, _ = audit(load_data(tmp_path / "windows.npz", task="regression"))
    [said] = [f for f in found if f.code == "series_without_time"]
    assert said.evidence["lags"]["x19"] == -1 and len(said.evidence["lags"]) == 20
    assert "17 more columns alike" in said.message  # 3 named, the count of the rest
    assert "split.time_column" not in said.fix and "`times` array" in said.fix
    assert said.evidence["time_candidates"] == [] == said.evidence["key_candidates"]
    np.savez(tmp_path / "timed.npz", x=x, y=y, times=np.arange(500))  # as the fix says
    found, _ = audit(load_data(tmp_path / "timed.npz", task="regression"))
    assert not [f for f in found if f.code == "series_without_time"]


def test_the_neighbour_score_matches_sklearn_leave_one_out_nearest_neighbour():
    """Without ties the vectorised 1-D nearest neighbour is sklearn's, each row left out
    (its own nearest neighbour is itself, so the second is the one left out of it)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = x[:, 0] ** 2 + 0.3 * rng.normal(size=80)
    labels = (x[:, 1] + 0.5 * rng.normal(size=80) > 0).astype(np.int64)
    for j in range(3):
        column = x[:, j:j + 1]
        near = NearestNeighbors(n_neighbors=2).fit(column).kneighbors(column)[1][:, 1]
        expected = 1 - ((y[near] - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert _neighbour_scores(x, y, "regression")[j] == pytest.approx(expected)
        assert _neighbour_scores(x, labels, "classification")[j] == pytest.approx(
            balanced_accuracy_score(labels, labels[near]))


def test_an_id_column_and_a_constant_column_are_not_leaks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    columns = {"row_code": rng.permutation(500).astype(float), "constant": np.ones(500)}
    assert find_leaks(columns, y, "classification") == []


@pytest.mark.parametrize("source", ["digits", "breast_cancer", "wine"])  # mnist1d: 13 s to
def test_built_in_sets_have_no_leak(source):  # make; its best step scores 0.13 (checked by hand)
    findings, _ = audit(load_data(source))
    assert leaks_in(findings) == []


def test_honest_tables_have_no_leak():
    assert leaks_in(load_data(str(CHURN), "churned").findings) == []
    assert leaks_in(table_data(series(), "y", task="regression").findings) == []


def test_array_inputs_are_checked_by_the_audit():
    data = load_data("breast_cancer")
    data.x = np.column_stack([data.x, data.y * 2.0 + 1.0]).astype(np.float32)
    data.feature_names = [*data.feature_names, "diagnosis_code"]
    [leak] = leaks_in(audit(data)[0])
    assert leak.evidence["columns"] == ["diagnosis_code"]


def test_a_label_recorded_after_the_fact_with_3_percent_noise_is_a_possible_leak():
    """Audit s13 P4: 'followup_outcome', the label with 3% of rows flipped, scored 0.944
    (breast_cancer's best honest column 0.876) and passed the absolute 0.99 bar."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    flip = np.random.default_rng(0).random(len(frame)) < 0.03
    frame["followup_outcome"] = np.where(flip, 1 - frame["label"], frame["label"])
    [leak] = leaks_in(table_data(frame, "label").findings)
    assert leak.evidence["columns"] == leak.evidence["possible"] == ["followup_outcome"]
    honest = frame.drop(columns=["label", "followup_outcome"])
    scores = _neighbour_scores(honest.to_numpy(np.float64), frame["label"].to_numpy(),
                               "classification")  # sklearn's, as the test above checks
    assert 0.9 <= leak.evidence["scores"]["followup_outcome"] < 0.99
    assert f"(next best {scores.max():.3f})" in leak.message
    assert "known at prediction time" in leak.message
    # iris: two honest petal sizes score 0.920 and 0.907 alone, neither stands out
    from sklearn.datasets import load_iris

    assert leaks_in(table_data(load_iris(as_frame=True).frame, "target",
                               task="classification").findings) == []


def test_a_leak_of_a_skewed_target_with_outliers_is_named():
    """Audit s14 R1: billed = 2*cost + noise scored R^2 0.83 in cost's units, where 3 outlier
    rows (x60) and their far neighbours rule the squared errors, and was never flagged; on
    the target's ranks it scores ~1 and the honest columns stay low."""
    rng = np.random.default_rng(0)
    age, bmi = rng.integers(18, 65, 800), rng.normal(30, 5, 800)
    cost = np.exp(7 + 0.03 * age + 0.02 * bmi + rng.normal(0, 0.6, 800))
    cost[[10, 200, 500]] *= 60  # three huge claims
    frame = pd.DataFrame({"age": age, "bmi": bmi, "billed": 2 * cost + rng.normal(0, 50, 800),
                          "cost": cost})
    raw = _neighbour_scores(frame[["billed"]].to_numpy(float), cost, "regression")[0]
    assert raw < LEAK_SCORE["regression"]  # what the check read before
    [leak] = leaks_in(table_data(frame, "cost", task="regression").findings)
    assert leak.evidence["columns"] == ["billed"] and leak.evidence["scores"]["billed"] > 0.999
    assert leaks_in(table_data(frame.drop(columns="billed"), "cost",
                               task="regression").findings) == []


def honest_table(num_rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """5 Gaussian features, a noisy 3-class label (audit s15 M3's cls.csv)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_rows, 5))
    score = x @ np.array([1.0, 0.7, -0.5, 0.3, 0.0]) + rng.normal(size=num_rows)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["label"] = np.digitize(score, [-0.7, 0.7])
    return frame


def copies(frame: pd.DataFrame, times: int = 3) -> pd.DataFrame:
    return pd.concat([frame] * times).sample(frac=1, random_state=0).reset_index(drop=True)


def test_rows_written_three_times_do_not_make_honest_columns_leaks():
    """Audit s15 B7/M3: each copy was its own nearest neighbour, every column scored 1.000."""
    assert leaks_in(table_data(copies(honest_table()), "label").findings) == []
    assert leaks_in(table_data(copies(patients()), "label").findings) == []


def test_a_real_leak_is_still_named_in_a_table_whose_rows_repeat():
    frame = patients()
    frame["outcome_flag"] = frame["label"].map({"ill": "A", "mild": "B", "well": "C"})
    [leak] = leaks_in(table_data(copies(frame), "label").findings)
    assert leak.evidence["columns"] == ["outcome_flag"]


def test_copies_under_new_ids_are_said_to_repeat_not_to_leak():
    """Copies differing in one id column are not exact duplicates: 5 of 6 columns score
    ~1.0, and the warning must blame repeated rows, not ask to delete the features."""
    frame = copies(honest_table())
    frame.insert(0, "visit_id", np.random.default_rng(1).permutation(len(frame)) * 7.0)
    [leak] = leaks_in(table_data(frame, "label").findings)
    assert leak.evidence["repeated_rows"] is True
    assert sorted(leak.evidence["columns"]) == [f"f{i}" for i in range(5)]
    assert "rows that repeat" in leak.message and "Do not delete" in leak.fix
    # the key it names is one a config accepts (review s15 VE4: it said data.group_column)
    section, key = GROUP_KEY.split(".")
    assert GROUP_KEY in leak.fix and section == "split" and key in SplitConfig.model_fields


def test_a_real_leak_among_copies_under_new_ids_keeps_its_own_warning():
    """Review s15 VE2: the label recoded as A/B/C leaks by itself; it was folded into the
    repeat warning and told "Do not delete these columns"."""
    frame = honest_table()
    frame["outcome_flag"] = frame["label"].map({0: "A", 1: "B", 2: "C"})
    frame = copies(frame)
    frame.insert(0, "visit_id", np.random.default_rng(1).permutation(len(frame)) * 7.0)
    repeat, leak = sorted(leaks_in(table_data(frame, "label").findings),
                          key=lambda f: "repeated_rows" not in f.evidence)
    assert sorted(repeat.evidence["columns"]) == [f"f{i}" for i in range(5)]
    assert leak.evidence["columns"] == ["outcome_flag"] and "repeated_rows" not in leak.evidence


def test_a_table_whose_every_column_separates_the_classes_is_named_column_by_column():
    """Not every "most columns leak" is repeated rows: 4 distinct-valued columns, each a
    noisy copy of the label's side (no row repeats), are 4 leaks, not a repeat warning."""
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    frame = pd.DataFrame({f"m{i}": y * 10.0 + rng.uniform(size=400) for i in range(4)})
    frame["label"] = y
    [leak] = leaks_in(table_data(frame, "label").findings)
    assert "repeated_rows" not in leak.evidence and len(leak.evidence["columns"]) == 4
