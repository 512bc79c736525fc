"""trainwise.predict: a finished run's best weights on new rows, in the user's units.

The reference is the run's own test result: predicting the test rows (given raw, as loaded)
must reproduce the evaluate stage's test accuracy exactly, and its RMSE and MAE up to float32
rounding (the stage computes them on standardised float32 values).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import trainwise
from trainwise.cli import main
from trainwise.data.errors import DataError
from trainwise.findings import TrainwiseError
from trainwise.preprocessing import FILE_NAME
from trainwise.rundir import RunFolderError

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32"]


def _run(tmp_path, data, **kwargs):
    result = trainwise.run(data=data, report=False, **kwargs,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    return result


def _test_rows(result) -> np.ndarray:
    with np.load(result.path / "split.npz") as saved:
        return saved["test"]


def _blobs(num_rows: int = 300, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping classes labelled 1..3 with features far from 0 and 1 in scale: a
    model fed them unnormalised, or read as codes 0..2, scores visibly worse."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, num_rows)
    x = rng.normal(0, 1.5, (num_rows, 6)) + np.eye(3, 6)[y] * 2.0
    return (x * [1, 10, 100, 1000, 0.1, 1] + shift).astype(np.float32), y + 1


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    x, y = _blobs(shift=50.0)
    return _run(tmp_path_factory.mktemp("cls"), (x, y)), x, y


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (300, 5)).astype(np.float32)
    y = (1e6 * (3 + x @ [1.0, -2.0, 0.5, 0.0, 1.0] + rng.normal(0, 0.3, 300))).astype(np.float32)
    return _run(tmp_path_factory.mktemp("reg"), (x, y)), x, y


def test_classification_reproduces_the_test_accuracy_in_the_users_labels(classifier):
    result, x, y = classifier
    test = _test_rows(result)
    predicted = trainwise.predict(result.path, x[test])
    assert predicted["prediction"].dtype == np.int64  # labels 1..3, not codes, not text
    assert set(predicted["prediction"]) <= {1, 2, 3}
    accuracy = float((predicted["prediction"].to_numpy() == y[test]).mean())
    assert accuracy == result.test["test_accuracy"]
    probs = predicted[["probability_1", "probability_2", "probability_3"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(probs.argmax(axis=1) + 1, predicted["prediction"])
    # the result's own method, and a tensor in, give the same answers
    pd.testing.assert_frame_equal(result.predict(torch.as_tensor(x[test])), predicted)


def test_the_results_predict_uses_the_model_it_holds(classifier, monkeypatch):
    """RunResult.model holds the trained baseline: nothing to rebuild from config.toml."""
    import trainwise.trained_run

    result, x, _ = classifier
    expected = trainwise.predict(result.path, x[:10])

    def no_rebuild(*args):
        raise AssertionError("rebuilt from config.toml although the result holds the model")

    monkeypatch.setattr(trainwise.trained_run, "_rebuilt_model", no_rebuild)
    pd.testing.assert_frame_equal(result.predict(x[:10]), expected)


def test_a_module_that_answers_a_tuple_gets_the_evaluate_stages_clear_error(classifier):
    """The forward pass is the evaluate stage's own, with its check that a model returns
    one tensor (a copy without it failed on 'tuple' has no attribute 'float')."""
    import trainwise.trained_run as trained_run

    result, x, _ = classifier
    net = trained_run._rebuilt_model(result.path, trained_run.Preprocessing.load(result.path),
                                     result_config(result).model)
    plain = net.forward
    net.forward = lambda inputs: (plain(inputs), None)  # the same weights, a tuple out
    with pytest.raises(TrainwiseError, match="returned a tuple, not one tensor"):
        trainwise.predict(result.path, x[:10], model=net)


def result_config(result):
    from trainwise.config import load_config

    return load_config(result.path / "config.toml")


def test_regression_reproduces_the_test_rmse_and_mae_in_the_targets_units(regressor):
    result, x, y = regressor
    test = _test_rows(result)
    predicted = result.predict(x[test])["prediction"].to_numpy()
    error = predicted - y[test].astype(np.float64)
    assert np.sqrt(np.mean(error ** 2)) == pytest.approx(result.test["test_rmse"], rel=1e-5)
    assert np.mean(np.abs(error)) == pytest.approx(result.test["test_mae"], rel=1e-5)
    assert abs(predicted.mean() - y[test].mean()) < 0.2 * y.std()  # millions, not ~0


def test_the_saved_statistics_are_the_training_rows_own(regressor):
    result, x, y = regressor
    with np.load(result.path / "split.npz") as saved:
        train = saved["train"]
    with np.load(result.path / "preprocess.npz", allow_pickle=False) as saved:
        np.testing.assert_allclose(saved["mean"], x[train].astype(np.float64).mean(axis=0))
        np.testing.assert_allclose(saved["std"], x[train].astype(np.float64).std(axis=0))
        assert float(saved["target_mean"]) == pytest.approx(y[train].astype(np.float64).mean())
        assert float(saved["target_scale"]) == pytest.approx(y[train].astype(np.float64).std())
        assert str(saved["task"]) == "regression"


def test_a_dataframe_is_matched_by_column_name_and_text_columns_are_refused(classifier):
    result, x, y = classifier
    names = [str(n) for n in np.load(result.path / "preprocess.npz")["feature_names"]]
    frame = pd.DataFrame(x[:20], columns=names)[names[::-1]]  # another column order
    frame["notes"] = "extra columns are ignored"
    expected = trainwise.predict(result.path, x[:20])
    pd.testing.assert_frame_equal(trainwise.predict(result.path, frame), expected)
    frame[names[0]] = frame[names[0]].astype(str)  # numbers written as text: still numbers
    pd.testing.assert_frame_equal(trainwise.predict(result.path, frame), expected)
    frame.loc[frame.index[2], names[0]] = "oops"  # audit s12 S12: the cell, not the encoding
    with pytest.raises(DataError, match=rf"column '{names[0]}' row 2 holds 'oops', not a "
                       "number.*na_values"):
        trainwise.predict(result.path, frame)
    with pytest.raises(DataError, match="missing"):
        trainwise.predict(result.path, frame.drop(columns=names[1]))


def test_rows_of_another_shape_are_refused_with_both_shapes(classifier):
    result, x, _ = classifier
    with pytest.raises(DataError, match=r"shaped \(20, 5\).*rows shaped \(6,\)"):
        trainwise.predict(result.path, x[:20, :5])
    with pytest.raises(DataError, match=r"add the row axis"):
        trainwise.predict(result.path, x[0])
    with pytest.raises(DataError, match="no rows to predict"):
        trainwise.predict(result.path, x[:0])


def test_the_command_line_writes_the_same_predictions(classifier, tmp_path):
    result, x, _ = classifier
    np.savez(tmp_path / "new.npz", X=x[:30])
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(result.path), str(tmp_path / "new.npz"), "--out", str(out)]) == 0
    written = pd.read_csv(out)
    expected = trainwise.predict(result.path, x[:30])
    np.testing.assert_array_equal(written["prediction"], expected["prediction"])
    np.testing.assert_allclose(written["probability_2"], expected["probability_2"], rtol=1e-9)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_a_run_of_your_own_module_needs_it_again(tmp_path):
    x, y = _blobs()
    torch.manual_seed(0)
    result = _run(tmp_path, (x, y), model=Net())
    test = _test_rows(result)
    with pytest.raises(TrainwiseError, match="model=net"):
        trainwise.predict(result.path, x[test])
    fresh = trainwise.predict(result.path, x[test], model=Net())  # weights from best.pt
    assert float((fresh["prediction"].to_numpy() == y[test]).mean()) == \
        result.test["test_accuracy"]
    pd.testing.assert_frame_equal(result.predict(x[test]), fresh)


def test_images_are_normalised_per_channel_as_in_training(tmp_path):
    """(N, C, H, W) uint8 pixels: the cnn2d baseline is rebuilt from the saved shape."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 120)
    x = rng.integers(0, 120, (120, 3, 8, 8)).astype(np.uint8)
    x[y == 1, 0, :4] += 100  # class 1: a bright top half in the first channel
    result = _run(tmp_path, (x, np.array(["cat", "dog"])[y]))
    test = _test_rows(result)
    predicted = trainwise.predict(result.path, x[test])
    assert set(predicted["prediction"]) <= {"cat", "dog"}
    labels = np.array(["cat", "dog"])[y[test]]
    assert float((predicted["prediction"].to_numpy() == labels).mean()) == \
        result.test["test_accuracy"]


def test_sequences_are_laid_out_as_the_run_laid_out_its_arrays(tmp_path):
    """A 3-D array is read as (N, T, C) and given to the model as (N, C, T): new rows given
    as the run was given its data must be transposed the same way."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 160)
    x = rng.normal(0, 1, (160, 24, 2)).astype(np.float32)  # (N, T, C)
    x[y == 1, 5:9, 0] += 2.0
    result = _run(tmp_path, (x, y))
    test = _test_rows(result)
    predicted = trainwise.predict(result.path, x[test])
    assert float((predicted["prediction"].to_numpy() == y[test]).mean()) == \
        result.test["test_accuracy"]
    with pytest.raises(DataError, match=r"read as \(\d+, 24, 2\).*rows shaped \(2, 24\)"):
        trainwise.predict(result.path, x[test].transpose(0, 2, 1))


def test_token_ids_rebuild_the_embedding_at_the_runs_vocabulary(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 160)
    ids = rng.integers(1, 30, (160, 12))
    ids[y == 1, 0], ids[:, -3:] = 31, 0  # a telling id, and padding
    result = trainwise.run(data={"X": ids, "y": y}, report=False, overrides=[
        *QUICK, f"run.out_dir=\"{tmp_path}\"", "data.kind=\"tokens\""])
    test = _test_rows(result)
    predicted = trainwise.predict(result.path, ids[test])
    assert float((predicted["prediction"].to_numpy() == y[test]).mean()) == \
        result.test["test_accuracy"]
    with pytest.raises(DataError, match=r"0\.\.31 \(the run's vocabulary\)"):
        trainwise.predict(result.path, ids[test] + 40)


def test_a_built_in_set_takes_its_rows_as_loaded(tmp_path):
    from sklearn.datasets import load_digits

    result = trainwise.run(report=False, overrides=[
        *QUICK, f"run.out_dir=\"{tmp_path}\"", "data.source=\"digits\""])
    assert result.ok, result.verdict
    x, y = load_digits(return_X_y=True)
    test = _test_rows(result)
    predicted = trainwise.predict(result.path, x[test])
    assert float((predicted["prediction"].to_numpy() == y[test]).mean()) == \
        result.test["test_accuracy"]


def test_a_run_folder_without_the_saved_preprocessing_says_how_to_get_one(classifier,
                                                                           tmp_path):
    import shutil

    result, x, _ = classifier
    copy = tmp_path / "old_run"
    shutil.copytree(result.path, copy)
    (copy / "preprocess.npz").unlink()
    with pytest.raises(TrainwiseError, match=rf"trainwise run --resume {re.escape(str(copy))} "
                       r"\(.*keeps checkpoints/best\.pt\)"):
        trainwise.predict(copy, x[:5])


def test_float_pixels_are_refused_for_a_run_that_read_uint8(tmp_path):
    """ToTensor's [0, 1] floats would be scored as near-black images (all one class); the
    same pixels as whole-number floats are accepted and score as the uint8 rows do."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 120)
    x = rng.integers(0, 120, (120, 3, 8, 8)).astype(np.uint8)
    x[y == 1, 0, :4] += 100
    result = _run(tmp_path, (x, y))
    test = _test_rows(result)
    with pytest.raises(DataError, match=r"0\.\.255 \(uint8\).*floats in \[0, 0\.8\d*\]"):
        trainwise.predict(result.path, x[test].astype(np.float32) / 255)
    with pytest.raises(DataError, match="ToTensor"):
        trainwise.predict(result.path, torch.as_tensor(x[test]).float() / 255)
    pd.testing.assert_frame_equal(trainwise.predict(result.path, x[test].astype(np.float32)),
                                  trainwise.predict(result.path, x[test]))


def test_a_resume_that_finds_the_split_changed_keeps_the_saved_preprocessing(classifier,
                                                                              tmp_path):
    """The resume stops on split_changed; it must not first overwrite preprocess.npz with
    the mismatching split's statistics, which predict would then pair with the old best.pt."""
    import shutil

    result, x, _ = classifier
    copy = tmp_path / "run"
    shutil.copytree(result.path, copy)
    before = (copy / "preprocess.npz").read_bytes()
    with np.load(copy / "split.npz") as saved:
        parts = dict(saved)
    parts["train"], parts["val"] = parts["train"][5:], np.r_[parts["val"], parts["train"][:5]]
    np.savez(copy / "split.npz", **parts)
    resumed = trainwise.run(resume=copy, report=False)
    assert resumed.stopped_at == "split"
    assert any(f.code == "split_changed" for f in resumed.findings)
    assert (copy / "preprocess.npz").read_bytes() == before


def test_a_csv_to_predict_is_read_with_the_runs_separator_encoding_and_decimal(classifier,
                                                                               tmp_path):
    """A latin-1 export with ';' and decimal commas, as the run's config.toml says its data
    was written: `trainwise predict` has no options to say it again."""
    import shutil

    result, x, _ = classifier
    copy = tmp_path / "run"
    shutil.copytree(result.path, copy)
    config = (copy / "config.toml").read_text(encoding="utf-8")
    config = config.replace('sep = ""', 'sep = ";"').replace('decimal = ""', 'decimal = ","')
    (copy / "config.toml").write_text(config.replace('encoding = ""', 'encoding = "latin-1"'),
                                      encoding="utf-8")
    names = [str(n) for n in np.load(copy / "preprocess.npz")["feature_names"]]
    frame = pd.DataFrame(x[:20], columns=names)
    frame["größe"] = "groß"  # an extra column, not UTF-8 once written
    path = tmp_path / "new.csv"
    frame.to_csv(path, sep=";", decimal=",", encoding="latin-1", index=False)
    written = pd.read_csv(path, sep=";", decimal=",", encoding="latin-1")
    expected = trainwise.predict(copy, written)
    assert len(expected) == 20
    pd.testing.assert_frame_equal(trainwise.predict(copy, path), expected)


def _split_only(tmp_path, frame, *overrides):
    """A table run up to its split stage: preprocess.npz and findings.json are written, which
    is all predict reads before it would load the weights."""
    result = trainwise.run(data=frame, report=False, until="split", overrides=[
        *QUICK, f"run.out_dir=\"{tmp_path}\"", *overrides])
    assert result.ok, result.verdict
    return result.path


def test_a_table_read_as_words_in_an_older_run_folder_says_how_to_save_its_words(tmp_path):
    """A run folder written before the vocabulary was saved (audit s13 I2): the fix is the
    resume that saves it, not dropping the text, the table's only feature."""
    rng = np.random.default_rng(6)
    words = np.array(["great fun film", "loved it", "boring dull plot", "a waste of time"])
    pick = rng.integers(0, 4, 120)
    filler = [" ".join(rng.choice(["the", "and", "of", "movie", "story", "cast"], 4))
              for _ in pick]  # distinct rows: copies across the split stop the run
    frame = pd.DataFrame({"review": np.char.add(words[pick], np.char.add(" ", filler)),
                          "label": np.where(pick < 2, "pos", "neg")})
    folder = _split_only(tmp_path, frame)
    with np.load(folder / FILE_NAME) as saved:
        assert "vocabulary" in saved.files
        older = {k: saved[k] for k in saved.files if k not in
                 ("vocabulary", "text_columns", "token_length", "unknown_id")}
    np.savez(folder / FILE_NAME, **older)
    for rows in (frame.drop(columns="label"), np.zeros((3, 4), np.int64)):
        with pytest.raises(DataError, match="cannot be scored by trainwise.predict: its "
                           r"text was read as word ids.*does not hold that vocabulary.*"
                           rf"trainwise run --resume {re.escape(str(folder))} ") as refused:
            trainwise.predict(folder, rows)
        assert "drop or convert" not in str(refused.value)


def test_a_table_with_a_date_feature_is_refused_as_not_scorable_yet(tmp_path):
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"when": pd.Timestamp("2021-01-01") + pd.to_timedelta(
        rng.integers(0, 900, 120), unit="D"), "size": rng.normal(0, 1, 120)})
    frame["label"] = (frame["size"] > 0).astype(int)
    folder = _split_only(tmp_path, frame, "split.time_column=\"none\"")  # 'when', a feature
    with pytest.raises(DataError, match=r"cannot be scored.*'when' \(days since 2021-01-0"
                       ) as refused:
        trainwise.predict(folder, frame.drop(columns="label"))
    # review s12 VA14: predict re-encodes text columns now; only the dates are to convert
    assert "text and date columns" not in str(refused.value)
    assert "re-encodes number columns and text columns" in str(refused.value)


def test_a_folder_that_never_trained_says_to_train_not_to_resume(classifier, tmp_path, capsys):
    """Audit s11 R9a: a `trainwise audit` folder was told to --resume (which trains a whole
    model) "keeping checkpoints/best.pt" it never had, with exit 2 (a bad config)."""
    import shutil

    result, x, _ = classifier
    audit = tmp_path / "audit_run"
    audit.mkdir()
    shutil.copy(result.path / "config.toml", audit / "config.toml")
    (audit / "meta.json").write_text('{"stage_seconds": {"data": 0.5, "report": 1.0}}')
    np.savez(tmp_path / "rows.npz", X=x[:5])
    assert main(["predict", str(audit), str(tmp_path / "rows.npz"),
                 "--out", str(tmp_path / "p.csv")]) == 1  # an unusable folder, as README says
    message = " ".join(capsys.readouterr().err.split())
    assert "holds no trained model" in message and "ended after its data stage" in message
    assert f"trainwiserun{audit / 'config.toml'}" in "".join(message.split())  # wrapped
    assert "--resume" not in message and not (tmp_path / "p.csv").exists()
    # review s11 VA9: one meta.json reader; a meta.json that is not an object reads as {}
    (audit / "meta.json").write_text("[]")  # the old copy in prediction.py had no dict check
    assert main(["predict", str(audit), str(tmp_path / "rows.npz"),
                 "--out", str(tmp_path / "p.csv")]) == 1
    assert "stopped before training" in " ".join(capsys.readouterr().err.split())


def test_a_folder_that_never_trained_is_refused_before_the_rows_are_read(classifier, tmp_path):
    """Review s11 VA14: a tune folder has preprocess.npz, so predict read and normalised the
    rows (and blamed their shape) before it found no best.pt."""
    import shutil

    result, _, _ = classifier
    tune = tmp_path / "tune_run"
    tune.mkdir()
    for name in ("config.toml", FILE_NAME):
        shutil.copy(result.path / name, tune / name)
    (tune / "meta.json").write_text('{"stage_seconds": {"data": 0.5, "tune": 3.0}}')
    with pytest.raises(RunFolderError, match="ended after its tune stage"):
        trainwise.predict(tune, np.zeros((2, 999)))  # rows of the wrong shape: not looked at


def test_a_missing_numeric_column_asks_for_the_column_not_an_encoded_array(classifier):
    """Audit s11 R9b: every missing column was blamed on one-hot encoding."""
    from trainwise.prediction_table import _refuse_missing
    from trainwise.preprocessing import Preprocessing

    result, x, _ = classifier
    names = [str(n) for n in np.load(result.path / "preprocess.npz")["feature_names"]]
    with pytest.raises(DataError) as caught:
        trainwise.predict(result.path, pd.DataFrame(x[:5], columns=names).drop(columns=names[0]))
    assert "Add the missing columns" in str(caught.value)
    assert "one-hot" not in str(caught.value)
    names = ["color_red", "color_blue", "size"]  # a run folder without the saved levels
    raw = pd.DataFrame({"color": ["red", "blue"], "size": [1.0, 2.0]})  # as in the file
    prep = Preprocessing("table", "classification", (3,), "<f4", feature_names=names)
    with pytest.raises(DataError, match="does not hold the levels of its text columns"):
        _refuse_missing(["color_red", "color_blue"], raw, prep, "RUN_DIR")


def test_load_model_gives_the_trained_module_back_from_the_folder_alone(classifier):
    """Audit s11 R11: rebuilding the module from best.pt needed the whole data set and code
    no document gave; load_model needs the run folder only."""
    from trainwise.preprocessing import Preprocessing

    result, x, _ = classifier
    net = trainwise.load_model(result.path)
    assert isinstance(net, nn.Module) and not net.training
    best = torch.load(result.path / "checkpoints/best.pt", weights_only=True,
                      map_location="cpu")["model"]  # saved from a GPU where there is one
    assert net.state_dict().keys() == best.keys()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in best.items())
    inputs = torch.as_tensor(Preprocessing.load(result.path).normalise(x[:20]),
                             dtype=torch.float32)
    with torch.no_grad():
        probs = torch.softmax(net(inputs), dim=1).numpy()
    expected = trainwise.predict(result.path, x[:20]).filter(like="probability_").to_numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-7)


def test_missing_cells_of_an_array_are_counted_and_an_empty_row_is_said(classifier):
    """Audit s12 S5: NaN rows were scored as the training mean without a word."""
    from trainwise.prediction_table import PredictionWarning

    result, x, _ = classifier
    rows = x[:4].astype(np.float64)
    rows[0] = np.nan
    rows[2, 3] = np.nan
    with pytest.warns(PredictionWarning) as caught:
        predicted = trainwise.predict(result.path, rows)
    said = " ".join(str(w.message) for w in caught)
    assert "row 0 has no value at all:" in said and "(rows 0)" not in said  # audit s16 D10
    assert list(predicted["num_imputed"]) == [6, 0, 1, 0]
    rows[3, 1] = -np.inf
    with pytest.raises(DataError, match="1 infinite value .*in row 3:"):
        trainwise.predict(result.path, rows)


RECEIVED_MODULE = """import pathlib
pathlib.Path(__file__).with_name("imported").write_text("the module's code ran")
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.layers(x)
"""


def test_a_run_folder_naming_module_class_is_imported_only_when_trusted(tmp_path, monkeypatch,
                                                                       capsys):
    # audit s16 S2: `trainwise predict .` in a received run folder imported the module its
    # config.toml named (from the working folder), running its code before any weight was read
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    (tmp_path / "received_s2_models.py").write_text(RECEIVED_MODULE)
    monkeypatch.chdir(tmp_path)
    x, y = _blobs()
    result = trainwise.run(data=(x, y), report=False, overrides=[
        *QUICK, f"run.out_dir=\"{tmp_path / 'runs'}\"", "model.name=\"received_s2_models:Net\""])
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    monkeypatch.delitem(sys.modules, "received_s2_models")  # as in a new process
    (tmp_path / "imported").unlink()
    test = _test_rows(result)
    for call in (lambda: trainwise.predict(result.path, x[test]),
                 lambda: trainwise.load_model(result.path)):
        with pytest.raises(TrainwiseError) as refused:
            call()
        assert f"imports {tmp_path / 'received_s2_models.py'}," in str(refused.value)
        assert "trust_code=True" in str(refused.value)
        assert not (tmp_path / "imported").exists()
    np.savez(tmp_path / "new.npz", X=x[test])
    code = main(["predict", str(result.path), str(tmp_path / "new.npz"), "--out",
                 str(tmp_path / "p.csv")])
    assert code == 2 and "--trust-code" in capsys.readouterr().err
    assert not (tmp_path / "imported").exists() and not (tmp_path / "p.csv").exists()
    trusted = trainwise.predict(result.path, x[test], trust_code=True)
    assert (tmp_path / "imported").exists()
    assert float((trusted["prediction"].to_numpy() == y[test]).mean()) == \
        result.test["test_accuracy"]
    # your own environment's module (installed, PYTHONPATH) is imported as any import is
    (tmp_path / "site").mkdir()
    (tmp_path / "received_s2_models.py").rename(tmp_path / "site" / "received_s2_models.py")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    del sys.modules["received_s2_models"]
    pd.testing.assert_frame_equal(trainwise.predict(result.path, x[test]), trusted)
    # your own module in the working folder: found there by sys.path alone (python -c, a
    # notebook) it is refused, and the advice, PYTHONPATH=<that folder>, works (review s16 VS4)
    (tmp_path / "site" / "received_s2_models.py").rename(tmp_path / "received_s2_models.py")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "site")])
    monkeypatch.syspath_prepend(str(tmp_path))
    del sys.modules["received_s2_models"]
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(TrainwiseError, match=f"PYTHONPATH={tmp_path} before the command"):
        trainwise.predict(result.path, x[test])
    monkeypatch.setenv("PYTHONPATH", ".")  # what Python puts on sys.path from it: tmp_path
    pd.testing.assert_frame_equal(trainwise.predict(result.path, x[test]), trusted)
