"""split.num_folds > 1: the crossval stage trains every fold and reports the spread."""

import json

import numpy as np
from sklearn.preprocessing import StandardScaler

import trainwise
from trainwise.data.sources import load_data
from trainwise.rundir import read_findings
from trainwise.stages import fit_parts

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
    for log, target in ((False, y), (True, np.log1p(y))):
        parts = fit_parts(data, train, val, "auto", log=log)
        assert np.isclose(parts.target_mean, target[train].mean())
        np.testing.assert_allclose(parts.val.y, (target[val] - target[train].mean())
                                   / target[train].std(), rtol=1e-5, atol=1e-6)


def test_five_folds_are_trained_scored_and_summarised(tmp_path):
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
    assert codes & {"cross_validation", "crossval_spread"}
    assert (result.path / meta["cross_validation"]["figure"]["path"]).exists()


def test_one_split_has_no_crossval_stage_unless_asked_for(tmp_path):
    result = trainwise.run({"data": {"source": "wine"}}, report=False, overrides=[
        *QUICK, f'run.out_dir="{tmp_path}"'])
    assert "crossval" not in result.stage_seconds
    asked = trainwise.run({"data": {"source": "wine"}}, report=False, until="crossval",
                          overrides=[*QUICK, f'run.out_dir="{tmp_path}"'])
    codes = [f.code for f in read_findings(asked.path) if f.stage == "crossval"]
    assert codes == ["crossval_skipped"]
