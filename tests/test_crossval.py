"""split.num_folds > 1: the crossval stage trains every fold and reports the spread."""

import json

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

import trainwise
from trainwise import stages_crossval
from trainwise.data.sources import load_data
from trainwise.model.class_weights import balanced_class_weights
from trainwise.rundir import read_findings
from trainwise.stages_split import fit_parts
from trainwise.train.crossval_verdict import crossval_finding

QUICK = ["train.max_epochs=4", "tune.num_steps=30", "tune.num_seeds=1", "tune.short_runs=false",
         "run.threads=1"]


def test_each_fold_is_standardised_by_its_own_training_rows_like_sklearn():
    data = load_data("wine")
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(data.y))
    train, val = np.sort(rows[:120]), np.sort(rows[120:])
    parts = fit_parts(data, train, val, "auto", log=False)
    scaler = StandardScaler().fit(data.x[train])
    np.testing.assert_allclose(parts.train.x, scaler.transform(data.x[train]), atol=1e-5)
    np.testing.assert_allclose(parts.val.x, scaler.transform(data.x[val]), atol=1e-5)
    np.testing.assert_array_equal(parts.val.rows, val)


def test_a_regression_folds_target_is_standardised_by_its_training_rows():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 4)), rng.gamma(2.0, 50.0, size=300)  # a skewed price
    data = trainwise.array_data(x, y, task="regression")
    train, val = np.arange(0, 200), np.arange(200, 300)
    for log, target in (("", y), ("log1p", np.log1p(y)), ("log", np.log(y))):
        parts = fit_parts(data, train, val, "auto", log=log)
        assert np.isclose(parts.target_mean, target[train].mean())
        np.testing.assert_allclose(parts.val.y, (target[val] - target[train].mean())
                                   / target[train].std(), rtol=1e-5, atol=1e-6)


def test_five_folds_are_trained_scored_and_summarised(tmp_path, monkeypatch):
    fitted = []  # the rows each trained fold was standardised on, trained and scored with

    def recording(data, train, val, augment, log):
        fitted.append((train, val))
        return fit_parts(data, train, val, augment, log)

    monkeypatch.setattr(stages_crossval, "fit_parts", recording)
    result = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=[
        *QUICK, "split.num_folds=5", f'run.out_dir="{tmp_path}"'])
    assert result.ok, result.verdict
    meta = json.loads((result.path / "meta.json").read_text())
    cv = meta["cross_validation"]
    folds = cv["folds"]
    assert [row["fold"] for row in folds] == [0, 1, 2, 3, 4]
    split = np.load(result.path / "split.npz")
    for row in folds:  # each fold trained on its own rows, as split.npz saved them
        assert row["val_rows"] == len(split[f"fold{row['fold']}_val"])
        assert row["train_rows"] == len(split[f"fold{row['fold']}_train"])
    pool = np.setdiff1d(np.arange(178), split["test"])  # wine: 178 rows; folds index the pool
    assert len(fitted) == 4
    for (train, val), j in zip(fitted, range(1, 5), strict=True):  # fold 0 is the run's own
        np.testing.assert_array_equal(train, pool[split[f"fold{j}_train"]])
        np.testing.assert_array_equal(val, pool[split[f"fold{j}_val"]])
    vals = np.concatenate([split[f"fold{j}_val"] for j in range(5)])
    assert len(vals) == len(np.unique(vals)) == len(split["train"]) + len(split["val"])
    scores = np.array([row["val_accuracy"] for row in folds])
    assert np.isclose(cv["mean"], scores.mean()) and np.isclose(cv["std"], scores.std(ddof=1))
    history = [json.loads(line) for line in (result.path / "history.jsonl").open()]
    best = min((r for r in history if r["kind"] == "epoch"), key=lambda r: r["val_loss"])
    assert folds[0]["trained_by"] == "run" and folds[0]["val_accuracy"] == best["val_accuracy"]
    assert sum(row["trained_by"] == "crossval" for row in folds) == 4
    assert scores.mean() > 0.8  # wine: every fold learns (chance is 40%)
    codes = {f.code for f in read_findings(result.path) if f.stage == "crossval"}
    assert codes in ({"cross_validation"}, {"crossval_spread"})
    assert (result.path / meta["cross_validation"]["figure"]["path"]).exists()


def test_one_split_has_no_crossval_stage_unless_asked_for(tmp_path):
    result = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=[
        *QUICK, f'run.out_dir="{tmp_path}"'])
    assert "crossval" not in result.stage_seconds
    asked = trainwise.run({"data": {"source": "wine"}}, report=False, until="crossval",
                          overrides=[*QUICK, f'run.out_dir="{tmp_path}"'])
    codes = [f.code for f in read_findings(asked.path) if f.stage == "crossval"]
    assert codes == ["crossval_skipped"]


def _rows(accuracies, val_rows=30, train_rows=(100,) * 5):
    return [{"fold": j, "val_rows": val_rows, "train_rows": n, "val_accuracy": a}
            for j, (a, n) in enumerate(zip(accuracies, train_rows, strict=False))]


def test_folds_that_differ_by_row_noise_alone_are_not_called_a_disagreement():
    # five 30-row folds of one model at 90%: 27, 29, 26, 30, 25 right (a 17-point range that
    # the old fixed 10-point rule called a disagreement); chi-square on right/wrong: p = 0.12
    noise, _ = crossval_finding(_rows([27 / 30, 29 / 30, 26 / 30, 1.0, 25 / 30]),
                                "classification", False, 0, "x")
    assert noise.code == "cross_validation" and noise.evidence["p_folds_agree"] > 0.05
    assert "+- 6.9 points" in noise.message  # sd of the five, in accuracy points
    real, _ = crossval_finding(_rows([1.0, 1.0, 29 / 30, 15 / 30, 1.0]), "classification",
                               False, 0, "x")
    assert real.code == "crossval_spread" and real.evidence["p_folds_agree"] < 0.001


def test_time_folds_are_a_backtest_not_a_spread():
    finding, meta = crossval_finding(_rows([0.767, 0.903, 0.875, 0.968], 31, (38, 68, 99, 131)),
                                     "classification", True, 3, "x")
    assert finding.code == "backtest" and finding.severity.value == "info"
    assert "96.8% (trained on 131)" in finding.message and meta["timed"]


def test_each_fold_weighs_classes_by_its_own_training_rows(tmp_path, monkeypatch):
    losses = []
    real_fit = stages_crossval.fit

    def recording(model, train_loader, *args, **kwargs):
        y = np.concatenate([b[1].numpy() for b in train_loader])
        losses.append((y, kwargs["loss_fn"].weights))
        return real_fit(model, train_loader, *args, **kwargs)

    monkeypatch.setattr(stages_crossval, "fit", recording)
    trainwise.run({"data": {"source": "wine"}}, report=False, until="crossval", overrides=[
        *QUICK, "split.num_folds=3", 'train.class_weights="balanced"',
        f'run.out_dir="{tmp_path}"'])
    assert len(losses) == 2
    for y, weight in losses:
        np.testing.assert_allclose(weight.numpy(), balanced_class_weights(y, 3).numpy())


def test_the_folds_stop_where_the_time_budget_stopped_the_run(tmp_path):
    result = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=[
        *QUICK, "split.num_folds=3", "train.max_epochs=30", "train.max_minutes=0.0001",
        "train.patience=100", f'run.out_dir="{tmp_path}"'])
    folds = json.loads((result.path / "meta.json").read_text())["cross_validation"]["folds"]
    assert [row["best_epoch"] for row in folds] == [1, 1, 1]  # the budget allowed one epoch


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))


@pytest.mark.parametrize("own_model", [False, True])
def test_a_resumed_run_cross_validates_as_the_uninterrupted_one(tmp_path, own_model):
    # a time budget (review s11 final F1: the resumed folds ignored it) and, with a model of
    # the user's, the same object handed back, trained in place by the first attempt (F2)
    settings = [*QUICK, "split.num_folds=3", "train.max_epochs=30", "train.patience=100",
                "train.max_minutes=0.0001", f'run.out_dir="{tmp_path}"']
    whole = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=settings,
                          model=_net() if own_model else None)
    model = _net() if own_model else None
    stopped = trainwise.run({"data": {"source": "wine"}}, report=False, until="train",
                            overrides=settings, model=model)
    assert "cross_validation" not in json.loads((stopped.path / "meta.json").read_text())
    resumed = trainwise.run(resume=stopped.path, report=False, model=model)
    folds = [json.loads((r.path / "meta.json").read_text())["cross_validation"]["folds"]
             for r in (whole, resumed)]
    assert folds[0] == folds[1]  # the same folds, initial weights and training: the same rows
    assert [row["best_epoch"] for row in folds[1]] == [1, 1, 1]  # the budget's one epoch


def test_a_fold_that_cannot_train_is_said_and_the_run_is_still_tested(tmp_path, monkeypatch):
    train_fold = stages_crossval._train_fold

    def fold_two_fails(ctx, fold, *args):
        if fold == 2:
            raise RuntimeError("a window too small for the batch")
        return train_fold(ctx, fold, *args)

    monkeypatch.setattr(stages_crossval, "_train_fold", fold_two_fails)
    result = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=[
        *QUICK, "split.num_folds=3", f'run.out_dir="{tmp_path}"'])
    (finding,) = [f for f in read_findings(result.path) if f.stage == "crossval"]
    assert finding.code == "crossval_incomplete" and "fold 2: RuntimeError" in finding.message
    assert result.test and result.test["test_accuracy"] > 0.8  # the evaluate stage still ran
