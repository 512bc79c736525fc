"""A classification run keeps its test predictions (audit s14 C9): test_predictions.csv alone
reproduces meta.json's test accuracy and the threshold's decisions, and its probabilities are
trainwise.predict's on the same rows (split.npz's test indices)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import trainwise
from trainwise.train.class_predictions import (
    MAX_CLASS_COLUMNS,
    TOP_CLASSES,
    probability_columns,
    write_class_predictions,
)

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32", "split.group_column=\"none\"", "split.time_column=\"none\""]


def _table(num_rows: int = 400) -> pd.DataFrame:
    """Two classes hanging on 'plan' and 'income', with an identifier set aside."""
    rng = np.random.default_rng(1)
    plan = rng.choice(["basic", "pro", "team"], num_rows).astype(object)
    income = rng.normal(50, 15, num_rows).round(2)
    score = (plan == "pro") * 1.5 - (plan == "basic") + (income - 50) / 15
    return pd.DataFrame({
        "customer_id": [f"C{k:05d}" for k in rng.permutation(num_rows)], "plan": plan,
        "income": income,
        "label": np.where(score + rng.normal(0, 0.7, num_rows) > 0, "yes", "no")})


def _predict(run_dir, rows, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trainwise.predict(run_dir, rows, **kwargs)


def test_classification_run_keeps_test_predictions(tmp_path):
    frame = _table()
    result = trainwise.run(data=frame, report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    kept = pd.read_csv(result.path / "test_predictions.csv", keep_default_na=False)
    meta = json.loads((result.path / "meta.json").read_text())
    with np.load(result.path / "split.npz") as saved:
        test = saved["test"]
    assert kept["row"].tolist() == test.tolist()
    assert kept["actual"].tolist() == frame["label"].iloc[test].tolist()
    right = (kept["actual"] == kept["predicted"]).mean()
    assert right == meta["test"]["test_accuracy"]  # exactly: the rows the metrics scored
    predicted = _predict(result.path, frame.iloc[test])
    assert kept["predicted"].tolist() == predicted["prediction"].tolist()
    for name in ("no", "yes"):
        column = f"probability_{name}"
        np.testing.assert_allclose(kept[column], predicted[column], rtol=0, atol=1e-6)
    threshold = (meta.get("decision_threshold") or {}).get("threshold")
    assert ("predicted_at_threshold" in kept) == (threshold is not None)
    if threshold is not None:
        best = _predict(result.path, frame.iloc[test], threshold="best")
        assert kept["predicted_at_threshold"].tolist() == best["prediction"].tolist()


def test_many_classes_keep_the_top_five(tmp_path):
    num_classes = MAX_CLASS_COLUMNS + 5
    names = [f"c{k}" for k in range(num_classes)]
    logits = torch.randn(7, num_classes, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 3, -100, 5, 24, 1, 2])
    path = tmp_path / "test_predictions.csv"
    write_class_predictions(path, None, logits, targets, names)
    kept = pd.read_csv(path, keep_default_na=False)
    assert not any(c.startswith("probability_") for c in kept.columns)
    assert kept["row"].tolist() == [""] * 7  # a source's own test part: no row to name
    assert kept["actual"].tolist() == ["c0", "c3", "", "c5", "c24", "c1", "c2"]
    probs = logits.softmax(dim=1).numpy().astype(np.float64)
    top = np.sort(probs, axis=1)[:, ::-1][:, :TOP_CLASSES]
    for k in range(TOP_CLASSES):
        np.testing.assert_allclose(kept[f"top{k + 1}_probability"], top[:, k], atol=1e-7)
    assert kept["top1_class"].tolist() == kept["predicted"].tolist()


@pytest.mark.parametrize("num_classes", [2, MAX_CLASS_COLUMNS])
def test_few_classes_get_one_column_each(num_classes):
    probs = np.full((3, num_classes), 1 / num_classes)
    names = [str(k) for k in range(num_classes)]
    assert list(probability_columns(probs, names)) == [f"probability_{n}" for n in names]


def test_the_mistakes_are_the_errors_the_metrics_scored_under_balanced_weights(tmp_path):
    """Review s14 (final read): under train.class_weights = "balanced" the mistakes count was
    taken from the prior-corrected probabilities the label check reads, whose argmax leans to
    the common class, so meta["mistakes"] disagreed with the test accuracy beside it."""
    frame = _table(600)
    rare = frame.index[frame["label"] == "yes"][60:]  # about 10% positives
    frame = frame.drop(rare).reset_index(drop=True)
    result = trainwise.run(data=frame, report=False,
                           overrides=[*QUICK, "train.class_weights=\"balanced\"",
                                      f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    kept = pd.read_csv(result.path / "test_predictions.csv", keep_default_na=False)
    meta = json.loads((result.path / "meta.json").read_text())
    wrong = int((kept["actual"] != kept["predicted"]).sum())
    assert wrong > 0  # the comparison below means something
    assert meta["mistakes"] == {"num_wrong": wrong, "num_test": len(kept)}
