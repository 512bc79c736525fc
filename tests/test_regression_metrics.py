"""Regression test results: R^2 and the baselines agree with scikit-learn / pandas, and a
model no better than a constant, or scored on targets outside the training range, is warned
about (audit s8 T2)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics
from torch import nn

import trainwise
from trainwise.rundir import read_history
from trainwise.train.evaluate import evaluate
from trainwise.train.regression_metrics import (
    baselines_text,
    extrapolation,
    previous_values,
    regression_results,
)
from trainwise.train.regression_predictions import TargetUnits


def _row(predictions, targets):
    """The test row evaluate() writes for these predictions."""
    loader = [(torch.tensor(predictions, dtype=torch.float32),
               torch.tensor(targets, dtype=torch.float32))]
    return evaluate(nn.Identity(), loader, nn.MSELoss(), "regression", prefix="test")


def test_r2_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(2.0, 3.0, size=200)
    for predictions in (y + rng.normal(0, 1, size=200), rng.normal(size=200)):
        row = _row(predictions, y)
        assert row["test_r2"] == pytest.approx(metrics.r2_score(y, predictions), abs=1e-5)
    assert np.isnan(_row([1.0, 2.0], [3.0, 3.0])["test_r2"])  # constant targets: undefined


def test_mean_baseline_and_a_model_worse_than_a_constant():
    rng = np.random.default_rng(1)
    train, test = rng.normal(0, 1, size=300), rng.normal(0.5, 1, size=100)
    bad = rng.normal(0, 2, size=100)  # noise: R^2 well below 0
    scale = 4.0  # targets standardised by the training std: errors come back times it
    row = _row(bad, test)
    row["test_rmse"] *= scale
    row["test_mae"] *= scale
    extra, findings = regression_results(row, train, test, scale)
    mean = np.full_like(test, train.mean())
    assert extra["test_mean_rmse"] == pytest.approx(
        scale * np.sqrt(metrics.mean_squared_error(test, mean)))
    assert extra["test_mean_mae"] == pytest.approx(
        scale * metrics.mean_absolute_error(test, mean))
    (found,) = findings
    assert found.code == "below_regression_baseline" and found.severity.value == "warning"
    assert "R^2 -" in found.message and "a constant at that mean would score better" \
        in found.message
    assert found.evidence["test_std"] == pytest.approx(scale * test.std())
    assert "train stage" in found.fix and "data stage" in found.fix
    assert found.fix.startswith("Read the train stage")  # nothing before it: no dangling "Then"

    good = test + rng.normal(0, 0.1, size=100)
    extra, findings = regression_results(_row(good, test), train, test)
    assert findings == []


def test_previous_value_is_pandas_shift_within_each_series():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"series": np.repeat(["a", "b"], 20),
                          "time": np.tile(np.arange(20), 2), "y": rng.normal(size=40)})
    frame = frame.sample(frac=1, random_state=0).reset_index(drop=True)  # order: by time only
    rows = np.flatnonzero(frame.time.to_numpy() >= 15)
    expected = frame.sort_values(["series", "time"]).groupby("series").y.shift(1)
    got = previous_values(frame.time.to_numpy(), frame.y.to_numpy(), rows,
                          frame.series.to_numpy())
    np.testing.assert_allclose(got, expected.loc[rows].to_numpy())
    # a row first in its series has no previous value; tied times have no single one
    assert previous_values(frame.time.to_numpy(), frame.y.to_numpy(), np.arange(40),
                           frame.series.to_numpy()) is None
    assert previous_values(np.zeros(40), frame.y.to_numpy(), rows) is None


def test_previous_value_baseline_beating_the_model_is_warned():
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=200))
    train, test = walk[:150], walk[150:]
    previous = walk[149:199]
    model = test + rng.normal(0, 3, size=50)  # R^2 may be fine; the naive forecast is better
    extra, findings = regression_results(_row(model, test), train, test, previous=previous)
    assert extra["test_previous_rmse"] == pytest.approx(
        np.sqrt(metrics.mean_squared_error(test, previous)))
    found = [f for f in findings if f.code == "below_regression_baseline"]
    assert found and "Repeating the previous value does at least as well" in found[0].message
    # one name per baseline: the warning, the test_result line and the report's table agree
    from trainwise.reporting.scores import SCORE_LABELS

    line = baselines_text({"test_mean_rmse": 1.0, "test_mean_mae": 1.0, **extra})
    for name in ("predicting the training mean", "repeating the previous value"):
        assert f"{name} scores RMSE" in found[0].message and f"{name}: RMSE" in line
        assert f"RMSE of {name}" in SCORE_LABELS.values()


def test_extrapolation_only_for_targets_well_outside_the_training_range():
    rng = np.random.default_rng(4)
    train = rng.normal(size=800)
    assert extrapolation(train, rng.normal(size=200)) is None  # a random split
    trend = np.linspace(0, 10, 100)
    found = extrapolation(trend[:80], trend[80:])
    # 8.78 = the training maximum 7.98 plus 10% of its range: 8.79 .. 10, 13 rows
    assert found is not None and found.code == "test_targets_outside_training_range"
    assert found.evidence["num_above"] == 13 and found.evidence["num_below"] == 0
    assert "change" in found.fix and "split stage" in found.fix


def test_time_split_run_reports_r2_and_both_baselines(tmp_path):
    """A trending monthly series split by time (audit s8's macro.csv, small): the test row
    carries R^2 and the baselines as recomputed from split.npz, and both warnings fire."""
    rng = np.random.default_rng(5)
    n = 160
    y = np.linspace(0, 16, n) + np.cumsum(rng.normal(0, 0.3, size=n))
    frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=n, freq="MS"),
                          "lag1": np.r_[y[0], y[:-1]], "noise": rng.normal(size=n), "y": y})
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    result = trainwise.run(overrides=[
        f"data.source=\"{path}\"", "data.target=\"y\"", "train.max_epochs=2", "train.lr=1e-4",
        "run.checks=false", "run.threads=1", f"run.out_dir=\"{tmp_path}\""], report=False)
    assert result.ok, result.verdict
    test = result.test
    split = np.load(result.path / "split.npz")
    assert json.loads((result.path / "meta.json").read_text())["split"]["strategy"] == "time"
    truth = y[split["test"]]
    mean = np.full_like(truth, y[split["train"]].mean())
    assert test["test_mean_rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, mean)))
    previous = y[split["test"] - 1]  # the file is in time order, one series
    assert test["test_previous_mae"] == pytest.approx(metrics.mean_absolute_error(truth, previous))
    codes = {f.code for f in result.findings}
    assert {"below_regression_baseline", "test_targets_outside_training_range"} <= codes
    (line,) = [f.message for f in result.findings if f.code == "test_result"]
    assert f"R^2 {test['test_r2']:.3g}" in line and "repeating the previous value: RMSE" in line


def test_constant_test_targets_give_an_undefined_r2_in_words_and_null_evidence():
    """sklearn's r2_score is NaN here; the message says why, the evidence is JSON null."""
    train, test = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    row = _row(np.array([0.0, 2.0, 0.0]), test)
    _, findings = regression_results(row, train, test)
    (found,) = [f for f in findings if f.code == "below_regression_baseline"]
    assert "R^2 undefined (the test targets are all equal)" in found.message
    assert found.evidence["test_r2"] is None and "nan" not in found.message


def test_target_units_put_mae_and_rmse_back_in_the_targets_units():
    """Trained on targets divided by 1000: the errors come back x1000 (as sklearn scores the
    unscaled values); the loss stays the one trained on, R^2 has no units (audit s10 G1)."""
    rng = np.random.default_rng(1)
    y, predictions = rng.normal(size=50), rng.normal(size=50)
    loader = [(torch.tensor(predictions, dtype=torch.float32),
               torch.tensor(y, dtype=torch.float32))]
    row = evaluate(nn.Identity(), loader, nn.MSELoss(), "regression",
                   target_units=TargetUnits(scale=1000.0))
    assert row["val_rmse"] == pytest.approx(
        np.sqrt(metrics.mean_squared_error(1000 * y, 1000 * predictions)), rel=1e-5)
    assert row["val_mae"] == pytest.approx(
        metrics.mean_absolute_error(1000 * y, 1000 * predictions), rel=1e-5)
    assert row["val_loss"] == pytest.approx(metrics.mean_squared_error(y, predictions), rel=1e-5)
    assert row["val_r2"] == pytest.approx(metrics.r2_score(y, predictions), abs=1e-5)


@pytest.fixture(scope="module")
def millions_run(tmp_path_factory):
    """A short run on a target in the millions: (result, the target as written)."""
    tmp_path = tmp_path_factory.mktemp("millions")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = 1e6 * (50 + x @ np.array([3.0, 2.0, -1.0]) + rng.normal(size=200))
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}).to_csv(path, index=False)
    result = trainwise.run(overrides=[
        f"data.source=\"{path}\"", "data.target=\"y\"", "train.max_epochs=2", "train.lr=1e-2",
        "run.checks=false", "run.threads=1", f"run.out_dir=\"{tmp_path}\""], report=False)
    assert result.ok, result.verdict
    return result, y


def test_validation_errors_per_epoch_are_in_the_targets_units(millions_run):
    """A target in the millions: each epoch's val_rmse is that of the validation rows in the
    target's units (from R^2 and their spread: RMSE^2 = (1 - R^2) var), not of the
    standardised values the model trains on (it was ~0.7 beside a test RMSE of 6e7)."""
    result, y = millions_run
    val = y[np.load(result.path / "split.npz")["val"]]
    epochs = [r for r in read_history(result.path) if r["kind"] == "epoch"]
    assert epochs
    for row in epochs:
        assert row["val_rmse"] == pytest.approx(np.sqrt((1 - row["val_r2"]) * val.var()),
                                                rel=1e-3)
        assert row["val_mae"] <= row["val_rmse"]


def test_the_test_predictions_are_kept_in_the_targets_units(millions_run):
    """test_predictions.csv holds each test row's actual value as in the file and the
    prediction the test metrics were computed from (audit s10 A18); the quarters cover every
    test row."""
    result, y = millions_run
    test_rows = np.load(result.path / "split.npz")["test"]
    kept = pd.read_csv(result.path / "test_predictions.csv")
    assert kept["row"].tolist() == test_rows.tolist()
    assert kept["actual"].to_numpy() == pytest.approx(y[test_rows], rel=1e-6)
    assert kept["error"].to_numpy() == pytest.approx(kept["predicted"] - kept["actual"])
    assert result.test["test_rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(
        kept["actual"], kept["predicted"])), rel=1e-4)
    assert result.test["test_r2"] == pytest.approx(metrics.r2_score(
        kept["actual"], kept["predicted"]), abs=1e-4)
    quarters = result.test["test_error_by_quarter"]
    assert len(quarters) == 4 and sum(q["rows"] for q in quarters) == len(test_rows)
    assert quarters[0]["low"] == pytest.approx(y[test_rows].min())


def _prices(tmp_path, low=8.5e3):
    """Log-normal prices over three decades, log-linear in feature a (the audit's skew.csv)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(240, 3))
    price = np.round(np.exp(np.log(low) + 2.3 * (x[:, 0] - x[:, 0].min())
                            + 0.1 * rng.normal(size=240)))
    path = tmp_path / "prices.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "price": price}).to_csv(
        path, index=False)
    return path, price


def test_a_log_target_trains_on_its_log_and_reports_in_its_units(tmp_path):
    """data.target_transform = "log" (audit s10 A8): the model learns log1p(price), every error
    and baseline comes back in the price's units, as sklearn scores the kept predictions."""
    path, price = _prices(tmp_path)
    result = trainwise.run(overrides=[
        f"data.source=\"{path}\"", "data.target=\"price\"", "data.target_transform=\"log\"",
        "train.max_epochs=2", "train.lr=1e-2", "run.checks=false", "run.threads=1",
        f"run.out_dir=\"{tmp_path}\""], report=False)
    assert result.ok, result.verdict
    split = np.load(result.path / "split.npz")
    kept = pd.read_csv(result.path / "test_predictions.csv")
    assert kept["actual"].to_numpy() == pytest.approx(price[split["test"]], rel=1e-6)
    test = result.test
    assert test["test_rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(
        kept["actual"], kept["predicted"])), rel=1e-4)
    assert test["test_mae"] == pytest.approx(metrics.mean_absolute_error(
        kept["actual"], kept["predicted"]), rel=1e-4)
    mean = np.full(len(kept), price[split["train"]].mean())  # the arithmetic mean, in dollars
    assert test["test_mean_rmse"] == pytest.approx(
        np.sqrt(metrics.mean_squared_error(kept["actual"], mean)), rel=1e-6)
    val = price[split["val"]]
    for row in (r for r in read_history(result.path) if r["kind"] == "epoch"):
        assert row["val_rmse"] == pytest.approx(np.sqrt((1 - row["val_r2"]) * val.var()),
                                                rel=1e-3)
        assert row["val_rmse"] > 1000  # dollars, not log units
    # trainwise.predict on the test rows' features gives the same dollars
    frame = pd.read_csv(path)
    again = trainwise.predict(result.path, frame.iloc[split["test"]][["a", "b", "c"]])
    assert again["prediction"].to_numpy() == pytest.approx(kept["predicted"].to_numpy(),
                                                           rel=1e-4)


def test_a_log_target_below_zero_is_refused_with_the_fix(tmp_path):
    path, price = _prices(tmp_path)
    frame = pd.read_csv(path)
    frame.loc[0, "price"] = -5.0
    frame.to_csv(path, index=False)
    result = trainwise.run(overrides=[
        f"data.source=\"{path}\"", "data.target=\"price\"", "data.target_transform=\"log\"",
        "run.checks=false", "run.threads=1", f"run.out_dir=\"{tmp_path}\""], report=False)
    assert not result.ok
    (problem,) = [f for f in result.findings if f.severity.value == "error"]
    assert "down to -5" in problem.message and 'data.target_transform = "none"' in problem.message


def test_the_outlier_warning_is_not_repeated_once_the_log_is_taken(tmp_path):
    """The audit's skew.csv: four prices beyond 10 IQRs warn, with data.target_transform =
    "log" as the fix; a run that set it trains on log1p, where none lies that far."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1000, 4))
    log10 = 4 + 3 * (x[:, 0] - x[:, 0].min()) / np.ptp(x[:, 0]) + 0.1 * rng.normal(size=1000)
    path = tmp_path / "skew.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "price": np.round(10 ** log10)}).to_csv(
        path, index=False)

    def codes(transform):
        result = trainwise.run(overrides=[
            f"data.source=\"{path}\"", "data.target=\"price\"",
            f"data.target_transform=\"{transform}\"", f"run.out_dir=\"{tmp_path}\""],
            until="data", report=False)
        return {f.code: f for f in result.findings}

    plain = codes("none")
    assert "--set data.target_transform='\"log\"'" in plain["target_outliers"].fix
    assert "target_outliers" not in codes("log")


def _split_only(tmp_path, frame, name):
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return trainwise.run(overrides=[
        f"data.source=\"{path}\"", "data.target=\"energy\"", "data.target_transform=\"log\"",
        f"run.out_dir=\"{tmp_path / name}\""], until="split", report=False)


def test_the_log_target_does_not_depend_on_the_targets_unit(tmp_path):
    """Audit s14 R3: kWh and the same energy x e^-14 (median 0.003). log1p of the small one
    was the identity (target_scale 0.008 against 1.5 on the log), so the outliers stayed and
    R^2 fell from 0.89 to 0.01; the natural log shifts by -14 and scales alike."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    energy = np.exp(x @ [1.0, 0.5, -0.3] + 0.5 * rng.normal(size=300) + 8)
    saved = {}
    for name, target in (("kwh", energy), ("small", energy * np.exp(-14))):
        result = _split_only(tmp_path, pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                                                     "energy": target}), name)
        assert result.ok, result.verdict
        saved[name] = np.load(result.path / "preprocess.npz")
        (split,) = [f for f in result.findings if f.code == "split"]
        assert "natural log" in split.message
    assert str(saved["small"]["target_log"]) == "log"
    assert float(saved["small"]["target_scale"]) == pytest.approx(
        float(saved["kwh"]["target_scale"]), rel=1e-6)  # CSV digits
    assert float(saved["small"]["target_mean"]) == pytest.approx(
        float(saved["kwh"]["target_mean"]) - 14, rel=1e-6)


def test_a_log_target_with_a_zero_trains_on_log1p_and_says_so(tmp_path):
    energy = np.r_[0.0, np.random.default_rng(4).lognormal(3.0, 1.0, size=199)]
    result = _split_only(tmp_path, pd.DataFrame({"a": np.arange(200.0), "energy": energy}),
                         "zero")
    assert str(np.load(result.path / "preprocess.npz")["target_log"]) == "log1p"
    (split,) = [f for f in result.findings if f.code == "split"]
    assert "log(1 + target)" in split.message and "rescale" in split.message


def test_a_run_folder_saved_before_the_choice_is_undone_with_expm1(tmp_path):
    """preprocess.npz without target_log: every such run trained on log1p."""
    from trainwise.preprocessing import Preprocessing

    prep = Preprocessing("table", "regression", (1,), "<f4")
    prep.save(tmp_path)
    old = Preprocessing.load(tmp_path)
    assert old.target_function("log") == "log1p" and old.target_function("none") == ""
    Preprocessing("table", "regression", (1,), "<f4", target_log="log").save(tmp_path)
    assert Preprocessing.load(tmp_path).target_function("log") == "log"


def test_a_resumed_run_keeps_the_log_its_checkpoints_were_trained_on(tmp_path):
    """--resume refits the split: an older folder (log1p, no target_log saved) must not be
    rescored with exp, nor a new one's log re-chosen."""
    from types import SimpleNamespace

    from trainwise.preprocessing import Preprocessing
    from trainwise.stages_split import _resumed_log

    ctx = SimpleNamespace(run=SimpleNamespace(path=tmp_path))
    assert _resumed_log(ctx) == ""  # a new run: chosen from the targets
    Preprocessing("table", "regression", (1,), "<f4").save(tmp_path)
    assert _resumed_log(ctx) == "log1p"
    Preprocessing("table", "regression", (1,), "<f4", target_log="log").save(tmp_path)
    assert _resumed_log(ctx) == "log"


def test_outliers_left_on_the_log_are_named_without_advising_the_log(tmp_path):
    """Three values x 1e6 on a narrow lognormal stay 10 IQRs out on the log: the warning is
    said of the log scale, and never advises data.target_transform = "log" again (R3)."""
    rng = np.random.default_rng(5)
    energy = rng.lognormal(5.0, 0.3, size=300)
    energy[[3, 50, 200]] *= 1e6
    result = trainwise.run(overrides=[
        f"data.source=\"{_csv(tmp_path, energy)}\"", "data.target=\"energy\"",
        "data.target_transform=\"log\"", f"run.out_dir=\"{tmp_path}\""],
        until="data", report=False)
    (outliers,) = [f for f in result.findings if f.code == "target_outliers"]
    assert outliers.evidence["num_rows"] == 3 and sorted(outliers.evidence["rows"]) == [3, 50,
                                                                                        200]
    assert "log scale" in outliers.message and "target_transform='" not in outliers.fix


def _csv(tmp_path, energy):
    path = tmp_path / "outliers.csv"
    pd.DataFrame({"a": np.arange(len(energy), dtype=float), "energy": energy}).to_csv(
        path, index=False)
    return path


def test_rows_sharing_a_time_without_a_series_key_say_why_and_name_the_key(tmp_path):
    """Audit s13 F9: 12 stores x 728 days with no split.group_column: one series of 12 rows
    a day, and the previous-value baseline vanished without a word. The note names the text
    column whose levels each have one row per time; following it gives the baseline."""
    rng = np.random.default_rng(6)
    months = pd.date_range("2001-01-01", periods=60, freq="MS")
    frame = pd.DataFrame({"date": np.tile(months, 3), "store": np.repeat(["a", "b", "c"], 60),
                          "kind": np.tile(["x", "y"], 90),  # 2 levels: not one row per time
                          "noise": rng.normal(size=180)})
    frame["y"] = np.repeat([0.0, 5.0, 10.0], 60) + np.cumsum(rng.normal(size=180))
    path = tmp_path / "stores.csv"
    frame.to_csv(path, index=False)
    base = [f"data.source=\"{path}\"", "data.target=\"y\"", "train.max_epochs=1",
            "train.lr=1e-3", "run.checks=false", "run.threads=1", f"run.out_dir=\"{tmp_path}\""]
    result = trainwise.run(overrides=base, report=False)
    assert result.ok, result.verdict
    (note,) = [f for f in result.findings if f.code == "no_previous_value"]
    assert note.severity.value == "info" and note.evidence["most_rows_at_one_time"] == 3
    assert note.evidence["rows_sharing_a_time"] == 180  # every date holds 3 rows
    assert note.evidence["series_key_candidates"] == ["store"]
    assert "--set 'split.group_column=\"store\"' --set 'split.strategy=\"time\"'" in note.fix
    keyed = trainwise.run(overrides=[*base, "split.group_column=\"store\"",
                                     "split.strategy=\"time\""], report=False)
    assert keyed.ok, keyed.verdict
    assert "no_previous_value" not in [f.code for f in keyed.findings]
    test = json.loads((keyed.path / "meta.json").read_text())["test"]
    assert "test_previous_rmse" in test
