"""Data handed to run(data=...) from Python: what of it reaches the saved file."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.config import load_config
from trainwise.data.in_memory import as_task_data, save_in_memory
from trainwise.findings import TrainwiseError

QUICK = ["run.threads=1"]


def _split_of(frame: pd.DataFrame, tmp_path) -> tuple[str, dict]:
    result = trainwise.run(data=frame, until="split", report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    meta = json.loads((result.path / "meta.json").read_text())
    return meta["split"]["strategy"], meta["split"]["fingerprint"]


def _daily_series(num_days: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=num_days, freq="D", name="date")
    temp = np.sin(np.arange(num_days) / 20) + rng.normal(0, 0.1, num_days)
    return pd.DataFrame({"temp": temp, "label": (np.roll(temp, -1) > temp).astype(int)},
                        index=days)


def test_a_date_index_is_split_by_time_as_a_date_column_is(tmp_path):
    # the index used to be dropped: 'stratified', validation days between training days
    indexed = _daily_series()
    strategy, fingerprint = _split_of(indexed, tmp_path)
    assert (strategy, fingerprint) == _split_of(indexed.reset_index(), tmp_path)
    assert strategy == "time"


def test_a_named_index_becomes_a_group_column(tmp_path):
    rng = np.random.default_rng(0)
    patients = pd.Index(np.repeat([f"p{i:03d}" for i in range(40)], 5), name="patient_id")
    frame = pd.DataFrame({"x1": rng.normal(size=200), "label": rng.integers(0, 2, 200)},
                         index=patients)
    saved = pd.read_parquet(save_in_memory(frame, tmp_path))
    assert list(saved.columns) == ["patient_id", "x1", "label"]
    assert _split_of(frame, tmp_path)[0] == "stratified_group"


@pytest.mark.parametrize("index", [pd.RangeIndex(6), pd.Index([0, 2, 4, 6, 8, 10])],
                         ids=["range", "left by filtering"])
def test_row_numbers_are_not_a_column(tmp_path, index):
    frame = pd.DataFrame({"a": range(6)}, index=index)
    assert list(pd.read_parquet(save_in_memory(frame, tmp_path)).columns) == ["a"]


def test_an_index_kept_as_a_column_too_is_not_written_twice(tmp_path):
    frame = pd.DataFrame({"pid": list("aabbcc"), "a": range(6)}).set_index("pid", drop=False)
    assert list(pd.read_parquet(save_in_memory(frame, tmp_path)).columns) == ["pid", "a"]


def test_a_missing_target_names_the_dataframe_and_the_python_call(tmp_path):
    # it named the internal runs/data/<digest>/table.parquet and only the --set form
    frame = pd.DataFrame({"age": range(40), "churn": ["yes", "no"] * 20})
    result = trainwise.run(data=frame, until="data", report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert result.stopped_at == "data"
    [problem] = [f for f in result.findings if f.severity.value == "error"]
    assert "is not in 'the DataFrame passed as data='" in problem.message
    assert "parquet" not in problem.message
    assert 'trainwise.run({"data": {"target": "churn"}}, ...) in Python' in problem.message


def _customers(num_rows: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"age": rng.integers(18, 80, num_rows).astype(float),
                             "income": rng.normal(50, 10, num_rows),
                             "city": rng.choice(["paris", "rome", "oslo"], num_rows)})
    return features, pd.Series(np.where(features.age > 50, "yes", "no"), name="churn")


def test_a_dataframe_of_features_in_a_pair_keeps_its_column_names(tmp_path):
    # saved as arrays, the names became x0, x1 and the text column was refused
    features, churn = _customers()
    data = as_task_data((features, churn))
    assert {"age", "income"} <= set(data.feature_names)
    assert any(name.startswith("city") for name in data.feature_names)
    result = trainwise.run(data=(features, churn), until="data", report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    table = pd.read_parquet(load_config(result.path / "config.toml").data.source)
    assert list(table.columns) == ["age", "income", "city", "label"]
    assert (table["label"] == churn.to_numpy()).all()  # by position, as scikit-learn pairs


def test_a_tensor_dataset_is_its_x_y_pair(tmp_path):
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    assert save_in_memory(TensorDataset(x, y), tmp_path) == save_in_memory((x, y), tmp_path)
    with pytest.raises(trainwise.TrainwiseError, match=r"data=loader.dataset when that is a "
                       r"TensorDataset of two tensors \(x, y\)"):
        save_in_memory(DataLoader(TensorDataset(x, y)), tmp_path)


def test_a_pair_that_cannot_become_one_table_says_what_to_pass(tmp_path):
    features, churn = _customers()
    with pytest.raises(trainwise.TrainwiseError, match=r"needs y of shape \(120,\).*got "
                       r"\(119,\).*data=X.assign\(churn=y\)"):
        save_in_memory((features, churn[:119]), tmp_path)
    with pytest.raises(trainwise.TrainwiseError, match="X has a column 'label'.*rename"):
        save_in_memory((features.assign(label=1), churn), tmp_path)


def test_a_test_part_in_memory_is_checked_and_coded_as_in_a_file(tmp_path):
    """audit(dict) coded y_test with its own classes: dog/fish read back as cat/dog."""
    from trainwise.data.errors import DataError

    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(60, 3)), "y": np.array(["cat", "dog", "fish"] * 20),
              "X_test": rng.normal(size=(10, 3)), "y_test": np.array(["dog", "fish"] * 5)}
    data = as_task_data(arrays)
    assert np.bincount(data.y_test, minlength=3).tolist() == [0, 5, 5]
    assert trainwise.audit(arrays)[1]["test_class_counts"] == [0, 5, 5]
    with pytest.raises(DataError, match="only one of X_test / y_test"):
        as_task_data({k: v for k, v in arrays.items() if k != "y_test"})
    with pytest.raises(DataError, match=r"X_test rows have shape \(5,\) but X rows \(3,\)"):
        as_task_data(dict(arrays, X_test=rng.normal(size=(10, 5))))
    with pytest.raises(DataError, match=r"y_test in the arrays passed has classes \['eel'\]"):
        as_task_data(dict(arrays, y_test=np.array(["eel", "dog"] * 5)))


def test_a_missing_target_in_a_verb_names_the_verbs_own_call():
    """audit(df, target="label") was told to set data.target with run() or --set."""
    frame = pd.DataFrame({"age": range(40), "churn": ["yes", "no"] * 20})
    with pytest.raises(trainwise.TrainwiseError) as raised:
        trainwise.audit(frame, target="label")
    message = str(raised.value)
    assert "'label' is not in the DataFrame (columns: age, churn)" in message
    assert 'trainwise.audit(df, target="churn")' in message and "--set" not in message


def test_a_pair_takes_labels_as_one_column_as_split_does(tmp_path):
    """(X_df, df[["churn"]]) was refused: 'needs y of shape (120,) ... got (120, 1)'."""
    features, churn = _customers()
    for labels in (churn.to_frame(), churn.to_numpy()[:, None]):
        data = as_task_data((features, labels))
        assert data.kind == "table" and data.class_names == ["no", "yes"]
        assert pd.read_parquet(save_in_memory((features, labels), tmp_path))["label"].tolist() \
            == churn.tolist()


def test_build_model_takes_what_run_takes() -> None:
    """Reverify s9 P11: build_model(df) / build_model((x, y)) raised a raw AttributeError."""
    from trainwise.model.baselines import build_model

    x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = np.arange(40) % 3
    model = build_model((x, y))
    assert model(torch.from_numpy(x[:5])).shape == (5, 3)  # 3 classes from y, 6 inputs
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]).assign(kind=y)
    assert build_model(frame, target="kind")(torch.from_numpy(x[:2])).shape == (2, 3)
    with pytest.raises(TrainwiseError, match='target='):
        build_model(frame)


def test_a_categorical_target_keeps_its_class_order_on_every_path(tmp_path):
    """An ordered Categorical y kept low < mid < high from a DataFrame, but data=(X, y) sorted
    it to high, low, mid (np.asarray drops the categories) (audit s10 G12)."""
    from trainwise.data.arrays import load_npz
    from trainwise.data.tables import load_table

    rng = np.random.default_rng(0)
    order = ["low", "mid", "high"]
    y = pd.Series(pd.Categorical(np.array(order)[rng.integers(0, 3, 60)], categories=order,
                                 ordered=True), name="grade")
    x = rng.normal(size=(60, 3))
    features = pd.DataFrame(x, columns=["a", "b", "c"])
    for data in (as_task_data((x, y)), as_task_data((features, y)),
                 as_task_data((torch.tensor(x), y.to_frame()))):
        assert data.class_names == order
        assert [data.class_names[c] for c in data.y] == y.astype(str).tolist()
    assert load_npz(save_in_memory((x, y), tmp_path)).class_names == order
    assert load_table(save_in_memory((features, y), tmp_path), "label").class_names == order
    assert as_task_data((x, y.astype(str))).class_names == sorted(order)  # plain text: sorted
    with pytest.raises(TrainwiseError, match=r"labels \['top'\] that are not in `classes`"):
        as_task_data({"X": x, "y": np.where(y == "high", "top", y.astype(str)),
                      "classes": np.array(order)})


def test_a_pair_with_several_target_columns_says_multi_output_is_not_supported():
    """(X_df, Y) with Y of 3 float columns got the one-hot advice y.argmax(axis=1) (G9)."""
    features, _ = _customers()
    outputs = np.random.default_rng(0).normal(size=(len(features), 3))
    with pytest.raises(TrainwiseError, match=r"multi-output target.*one target per row.*"
                       r"trainwise.Monitor"):
        as_task_data((features, outputs))
