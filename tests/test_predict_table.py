"""trainwise.predict on a table as the run read it (audit s12 S1, S5, S10, S12): text columns
are one-hot encoded again from the levels saved in preprocess.npz, so the run's own test rows,
given raw, reproduce its test accuracy and ROC-AUC exactly; what the encoding cannot know
(levels the run never saw, gaps where it had none, infinite cells, bad cells) is said.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import trainwise
from trainwise.cli import main
from trainwise.data.errors import DataError
from trainwise.prediction_table import PredictionWarning
from trainwise.preprocessing import FILE_NAME

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32", "split.group_column=\"none\"", "split.time_column=\"none\""]


def _table(num_rows: int = 400) -> pd.DataFrame:
    """A churn-like table: the label hangs on 'plan' (3 levels, some missing) and 'income';
    'city' has 80 levels (past MAX_ONE_HOT = 64: its rare ones share '(other)'); 'age' has
    gaps, 'income' none; 'customer_id' is an identifier the run sets aside."""
    rng = np.random.default_rng(0)
    plan = rng.choice(["basic", "pro", "team"], num_rows).astype(object)
    plan[rng.random(num_rows) < 0.05] = np.nan
    income = rng.normal(50, 15, num_rows).round(2)
    score = (plan == "pro") * 1.5 - (plan == "basic") + (income - 50) / 15
    city = np.array([f"city{k:02d}" for k in rng.integers(0, 80, num_rows)], dtype=object)
    age = rng.normal(40, 10, num_rows).round()
    age[rng.random(num_rows) < 0.1] = np.nan
    return pd.DataFrame({
        "customer_id": [f"C{k:05d}" for k in rng.permutation(num_rows)], "plan": plan,
        "city": city, "age": age, "income": income,
        "label": np.where(score + rng.normal(0, 0.7, num_rows) > 0, "yes", "no")})


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    frame = _table()
    result = trainwise.run(data=frame, report=False, overrides=[
        *QUICK, f"run.out_dir=\"{tmp_path_factory.mktemp('table')}\""])
    assert result.ok, result.verdict
    with np.load(result.path / "split.npz") as saved:
        test = saved["test"]
    return result, frame, test


def _quiet_predict(run_dir, rows):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predicted = trainwise.predict(run_dir, rows)
    return predicted, [str(w.message) for w in caught if w.category is PredictionWarning]


def test_the_raw_test_rows_reproduce_the_runs_test_accuracy_and_roc_auc(table_run):
    result, frame, test = table_run
    rows = frame.iloc[test]
    predicted, _ = _quiet_predict(result.path, rows.drop(columns="label"))
    accuracy = float((predicted["prediction"].to_numpy() == rows["label"].to_numpy()).mean())
    assert accuracy == result.test["test_accuracy"]
    auc = roc_auc_score(rows["label"] == "yes", predicted["probability_yes"])
    assert auc == pytest.approx(result.test["test_roc_auc"], abs=1e-12)
    assert auc > 0.7  # a model that ranks by plan and income: the one-hot columns matter


def test_the_levels_are_saved_as_plain_strings(table_run):
    result, _, _ = table_run
    with np.load(result.path / FILE_NAME, allow_pickle=False) as saved:
        levels = dict(zip(saved["one_hot_features"], saved["one_hot_levels"], strict=True))
        roles = dict(zip(saved["one_hot_features"], saved["one_hot_roles"], strict=True))
        assert list(saved["one_hot_features"]) == [
            n for n in saved["feature_names"] if n.startswith(("plan_", "city_"))]
    assert levels["plan_pro"] == "pro" and roles["plan_nan"] == "missing"
    assert roles["city_(other)"] == "other"


def test_unseen_levels_are_scored_as_other_or_as_no_level_and_said(table_run):
    result, frame, test = table_run
    rows = frame.iloc[test[:10]].drop(columns="label").reset_index(drop=True)
    counts = frame["city"].value_counts()
    rare = counts.index[-1]  # past the 63 kept: the run scored it as '(other)'
    as_rare = rows.assign(city=rare)
    unseen = rows.assign(city="atlantis")
    expected, _ = _quiet_predict(result.path, as_rare)
    predicted, said = _quiet_predict(result.path, unseen)
    pd.testing.assert_frame_equal(predicted, expected)
    assert any("column 'city': 10 rows" in m and "'atlantis'" in m and "'(other)'" in m
               for m in said)
    gold = rows.copy()
    gold.loc[[1, 4, 7], "plan"] = "gold"
    _, said = _quiet_predict(result.path, gold)
    assert any("column 'plan': 3 rows (rows 1, 4, 7) hold levels the run never saw" in m
               and "'gold'" in m for m in said)


def test_the_command_line_scores_the_csv_keeps_the_identifier_and_warns(table_run, tmp_path,
                                                                          capsys):
    result, frame, test = table_run
    rows = frame.iloc[test].drop(columns="label")
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "predictions.csv"
    expected, _ = _quiet_predict(result.path, rows.reset_index(drop=True))
    capsys.readouterr()
    assert main(["predict", str(result.path), str(tmp_path / "new.csv"), "--out", str(out)]) == 0
    written = pd.read_csv(out)
    assert list(written.columns[:3]) == ["row", "customer_id", "prediction"]
    assert list(written["row"]) == list(range(len(rows)))
    assert list(written["customer_id"]) == list(rows["customer_id"])
    np.testing.assert_allclose(written["probability_yes"], expected["probability_yes"],
                               rtol=1e-9)
    assert "error" not in capsys.readouterr().err
    _each_column_is_documented(written, ["customer_id"])


def _each_column_is_documented(written: pd.DataFrame, keys: list[str]) -> None:
    """Review s12 VA15: docs/run_folder.md's predict section names every column predict
    writes (`row`, the key columns, `num_imputed` were missing)."""
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "run_folder.md").read_text(encoding="utf-8")
    section = docs.split("## What `trainwise predict` writes")[1].split("\n## ")[0]
    assert "num_imputed" in written.columns  # 'age' has gaps: the column is written
    for name in written.columns:
        said = "key columns" if name in keys else "`probability_<class>`" \
            if name.startswith("probability_") else f"`{name}`"
        assert said in section, name


def test_a_run_folder_without_the_saved_levels_keeps_its_clear_refusal(table_run, tmp_path):
    import shutil

    result, frame, _ = table_run
    old = tmp_path / "old"
    shutil.copytree(result.path, old)
    with np.load(old / FILE_NAME, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files if not k.startswith("one_hot_")}
    np.savez(old / FILE_NAME, **arrays)  # as an earlier trainwise wrote it
    with pytest.raises(DataError, match=r"missing.*does not hold the levels.*--resume "
                       rf"{re.escape(str(old))},"):
        trainwise.predict(old, frame.drop(columns="label").head(5))


def test_an_empty_table_and_a_bad_cell_are_named_as_such(table_run):
    result, frame, _ = table_run
    rows = frame.drop(columns="label").head(20).reset_index(drop=True)
    with pytest.raises(DataError, match="no rows to predict.*0 rows"):
        trainwise.predict(result.path, rows.iloc[:0].astype(object))
    bad = rows.astype({"income": object})
    bad.loc[3, "income"] = "oops"
    with pytest.raises(DataError, match=r"column 'income' row 3 holds 'oops', not a number"
                       r".*na_values"):
        trainwise.predict(result.path, bad)
    marker = rows.astype({"age": object})
    marker.loc[2, "age"] = "?"  # a missing-value marker, read as missing as the run read it
    predicted, _ = _quiet_predict(result.path, marker)
    assert predicted["num_imputed"].iloc[2] == 1


def test_gaps_the_run_never_had_are_counted_inf_is_refused_empty_rows_said(table_run):
    result, frame, _ = table_run
    rows = frame.drop(columns="label").head(8).reset_index(drop=True)
    rows["age"] = rows["age"].fillna(40.0)
    gaps = rows.copy()
    gaps.loc[[2, 5], "income"] = np.nan  # the run had no missing income
    gaps.loc[5, "age"] = np.nan  # the run had missing ages: filled as it filled them
    gaps.loc[7, ["plan", "city", "age", "income"]] = np.nan
    predicted, said = _quiet_predict(result.path, gaps)
    assert list(predicted["num_imputed"]) == [0, 0, 1, 0, 0, 2, 0, 2]
    assert any("column 'income' is missing in 3 rows (rows 2, 5, 7)" in m for m in said)
    assert not any("column 'age'" in m for m in said)
    assert any("row 7 has no value at all:" in m for m in said)  # not "1 row (rows 7)"
    broken = rows.copy()
    broken.loc[4, "income"] = np.inf
    with pytest.raises(DataError, match=r"1 infinite value .*'income', in row 4:"):
        trainwise.predict(result.path, broken)


def test_table_notes_are_said_at_the_callers_line(table_run):
    """Final read s13 A1: the table notes (unseen levels, new gaps, empty rows) used a fixed
    stacklevel and were said at prediction_table.py's or prediction.py's own lines, through
    trainwise.predict and result.predict alike; like the text notes, they name the caller's."""
    result, frame, _ = table_run
    rows = frame.drop(columns="label").head(5).reset_index(drop=True)
    rows.loc[0, "city"] = "atlantis"
    rows.loc[1, "income"] = np.nan  # the run had no missing income
    rows.loc[4, ["plan", "city", "age", "income"]] = np.nan
    for predict in (lambda: trainwise.predict(result.path, rows), lambda: result.predict(rows)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict()
        notes = [w for w in caught if w.category is PredictionWarning]
        assert len(notes) >= 3 and all(w.filename == __file__ for w in notes), \
            [(w.filename, w.lineno, str(w.message)[:40]) for w in notes]


def test_a_built_in_one_channel_sequence_takes_n_t_and_names_its_layout():
    """Audit s12 S6: the demo (MNIST-1D, rows (1, 40)) refused x_test as (N, 40) and advised
    a false (N, T, C) rule; (N, 40) is one channel, and the message gives the exact layout."""
    from trainwise.config import DataConfig
    from trainwise.prediction import _as_array
    from trainwise.preprocessing import Preprocessing

    prep = Preprocessing(kind="sequence", task="classification", input_shape=(1, 40),
                         input_dtype="<f4")
    data = DataConfig(source="mnist1d")
    x = np.random.default_rng(0).normal(0, 1, (7, 40))
    np.testing.assert_array_equal(_as_array(x, prep, data, folder="RUN_DIR"),
                                  x[:, None, :].astype(np.float32))
    with pytest.raises(DataError) as caught:
        _as_array(x[:, :, None], prep, data, folder="RUN_DIR")
    message = str(caught.value)
    assert "(N, 1, 40) or (N, 40), channels first; from (7, 40, 1): x.transpose(0, 2, 1)" \
        in message
    assert "(N, T, C)" not in message


@pytest.mark.parametrize("spelled", ["{:.1f}", "{:d}"])
def test_levels_spelled_as_numbers_match_a_column_read_as_numbers(spelled, tmp_path):
    """Review s12 VA4: a text column whose levels are '1.0', '2.0' (pandas writes floats so)
    or '1', '2' matches new cells read as numbers by number, not as unseen levels."""
    from pathlib import Path

    from trainwise.config import DataConfig
    from trainwise.data.tables import encode_features, read_table
    from trainwise.prediction_table import table_features
    from trainwise.preprocessing import Preprocessing

    levels = [spelled.format(1), spelled.format(2), "3.5", "n/r"]  # 'n/r' keeps it text
    values = np.random.default_rng(0).choice(levels, 300)
    train = Path(tmp_path / "train.csv")
    train.write_text("rating,x\n" + "\n".join(f"{v},{i}" for i, v in enumerate(values)))
    x, names, _, one_hot = encode_features(read_table(train)[0])
    prep = Preprocessing(kind="table", task="classification", input_shape=[x.shape[1]],
                         input_dtype="float32", feature_names=names, class_names=["a", "b"],
                         one_hot=one_hot)
    column = {name: k for k, name in enumerate(names)}
    # whole numbers only (pandas would name them '1', '2'), and with 3.5 ('1.0', '2.0')
    for cells, expected in (("1.0\n2\n3.5", levels[:3]), ("1\n2.0", levels[:2])):
        new = tmp_path / "new.csv"
        new.write_text("rating\n" + cells + "\n")
        rows = read_table(new)[0].assign(x=0.0)
        assert pd.api.types.is_numeric_dtype(rows["rating"])
        with warnings.catch_warnings():
            warnings.simplefilter("error", PredictionWarning)  # no "levels never seen"
            got = table_features(rows, prep, DataConfig(), folder="RUN_DIR")
        for row, level in enumerate(expected):
            assert got[row, column[f"rating_{level}"]] == 1.0
            assert got[row, [column[f"rating_{v}"] for v in levels[:3]]].sum() == 1.0


def test_a_column_constant_in_training_is_filled_and_a_file_is_called_a_file():
    """Audit s14 R8: the data stage said "drop" constant_col, and predict then refused new
    rows without it, counting 12 encoded features for a file of 7 columns."""
    from trainwise.config import DataConfig
    from trainwise.data.errors import DataError
    from trainwise.prediction_table import TableInput, table_features
    from trainwise.preprocessing import Preprocessing

    names = ["age", "constant_col", "smoker_no", "smoker_yes"]
    prep = Preprocessing("table", "regression", (4,), "float32", feature_names=names,
                         mean=np.array([40.0, 7.5, 0.5, 0.5]), std=np.ones(4),
                         one_hot=[("smoker_no", "smoker", "no", "level"),
                                  ("smoker_yes", "smoker", "yes", "level")])
    rows = pd.DataFrame({"age": [30.0, 50.0], "smoker": ["yes", "no"]})
    told = TableInput("file 'new.csv'", ("constant_col",))
    with pytest.warns(PredictionWarning, match=r"'constant_col'.*constant_col = 7\.5"):
        got = table_features(rows, prep, DataConfig(), folder="RUN_DIR", table=told)
    np.testing.assert_array_equal(got, [[30.0, 7.5, 0.0, 1.0], [50.0, 7.5, 1.0, 0.0]])
    with pytest.raises(DataError) as caught:  # the run's data stage never found it constant
        table_features(rows, prep, DataConfig(), folder="RUN_DIR",
                       table=TableInput("file 'new.csv'"))
    said = str(caught.value)
    assert said.startswith("this file 'new.csv' cannot be matched")
    assert "3 columns of the training table, encoded as the 4 features" in said


def test_a_compressed_csv_and_a_tab_export_predict_as_the_csv(table_run, tmp_path):
    """Audit s14 Z1: the run reads .csv.gz / .tsv / .txt; predict refused them ("has suffix
    '.gz', which predict does not read")."""
    result, frame, test = table_run
    rows = frame.iloc[test[:20]].drop(columns="label")
    rows.to_csv(tmp_path / "new.csv", index=False)
    rows.to_csv(tmp_path / "new.csv.gz", index=False)
    rows.to_csv(tmp_path / "new.tsv", index=False, sep="\t")
    plain, _ = _quiet_predict(result.path, tmp_path / "new.csv")
    for name in ("new.csv.gz", "new.tsv"):
        other, _ = _quiet_predict(result.path, tmp_path / name)
        pd.testing.assert_frame_equal(other, plain)


def test_an_object_array_in_a_npz_is_a_data_error_with_the_fix(table_run, tmp_path):
    """Audit s14 Z21: a raw numpy ValueError ("Object arrays cannot be loaded...")."""
    from trainwise.findings import TrainwiseError

    result, _, _ = table_run
    np.savez(tmp_path / "rows.npz", X=np.array([[1, "a"], [2, None]], dtype=object))
    with pytest.raises(TrainwiseError, match=r"object array .* np.savez"):
        trainwise.predict(result.path, tmp_path / "rows.npz")
