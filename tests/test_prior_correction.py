"""Balanced class weights move the probabilities toward the rarer classes (user audit s12
S4: mean P('1') 0.264 on 5.5% positives); predict says so and, on request, undoes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import trainwise
from test_decision_threshold import rare_rows
from trainwise.data.errors import DataError
from trainwise.train.decision_threshold import apply_threshold, on_corrected_scale
from trainwise.train.prior_correction import prior_corrected, training_counts


def test_the_correction_multiplies_by_the_training_counts_and_renormalises():
    # weights n / (2 n_c) for counts 90 / 10 are 0.556 / 5: dividing by them is multiplying
    # by the counts. [0.5, 0.5] -> [45, 5] / 50; [0.2, 0.8] -> [18, 8] / 26
    probs = np.array([[0.5, 0.5], [0.2, 0.8]])
    got = prior_corrected(probs, np.array([90, 10]))
    np.testing.assert_allclose(got, [[0.9, 0.1], [18 / 26, 8 / 26]], rtol=1e-12)
    # a class with no training row had weight 0: it stays at 0
    np.testing.assert_allclose(prior_corrected(np.array([[0.2, 0.3, 0.5]]), np.array([1, 1, 0])),
                               [[0.4, 0.6, 0.0]], rtol=1e-12)


def test_only_a_class_weighted_run_has_counts_to_undo():
    meta = {"config": {"train": {"class_weights": "none"}},
            "data": {"class_counts": {"train": [90, 10]}}}
    assert training_counts(meta) is None
    meta["config"]["train"]["class_weights"] = "balanced"
    assert training_counts(meta).tolist() == [90.0, 10.0]


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    x, y = rare_rows()  # the threshold tests' rows, trained with balanced class weights
    out = tmp_path_factory.mktemp("weighted")
    result = trainwise.run(data=(x, y), report=False, overrides=[
        "train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
        "train.batch_size=32", 'train.class_weights="balanced"', f"run.out_dir=\"{out}\""])
    assert result.ok, result.verdict
    return result.path, x


def test_predict_says_weighted_probabilities_overstate_and_undoes_them_on_request(weighted):
    folder, x = weighted
    with pytest.warns(UserWarning, match="over-state the rarer classes.*--prior-corrected"):
        plain = trainwise.predict(folder, x)
    fixed = trainwise.predict(folder, x, prior_corrected=True)
    counts = json.loads((folder / "meta.json").read_text())["data"]["class_counts"]["train"]
    raw = plain[["probability_0", "probability_1"]].to_numpy() * counts
    expected = raw / raw.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fixed[["probability_0", "probability_1"]].to_numpy(), expected,
                               rtol=1e-12)
    assert fixed["probability_1"].mean() < plain["probability_1"].mean()
    assert fixed["prediction"].tolist() == plain["prediction"].tolist()  # decided as before


def test_correcting_an_unweighted_run_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    result = trainwise.run(data=(x, y), report=False, overrides=[
        "train.max_epochs=1", "run.threads=1", "run.checks=false", "train.lr=0.01",
        f"run.out_dir=\"{tmp_path}\""])
    with pytest.raises(DataError, match="trained without class weights"):
        trainwise.predict(result.path, x, prior_corrected=True)


def test_the_command_line_notes_it_on_stderr_and_writes_the_corrected_columns(weighted,
                                                                              tmp_path, capsys):
    import pandas as pd

    from trainwise.cli import main

    folder, x = weighted
    np.savez(tmp_path / "new.npz", X=x[:50])
    assert main(["predict", str(folder), str(tmp_path / "new.npz"),
                 "--out", str(tmp_path / "a.csv")]) == 0
    assert "note: the run trained with train.class_weights" in capsys.readouterr().err
    assert main(["predict", str(folder), str(tmp_path / "new.npz"), "--prior-corrected",
                 "--out", str(tmp_path / "b.csv")]) == 0
    expected = trainwise.predict(folder, x[:50], prior_corrected=True)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "b.csv")["probability_1"],
                               expected["probability_1"], rtol=1e-12)


def test_the_corrected_threshold_is_the_weighted_one_moved_by_the_counts():
    # review s12 VA6: t' = t n_pos / (t n_pos + (1 - t) n_neg); t = 0.8, counts 90 / 10:
    # 0.8 * 10 / (0.8 * 10 + 0.2 * 90) = 8 / 26. A row at P = t lands at exactly t'.
    record = {"positive_class": "1", "positive_index": 1, "threshold": 0.8}
    moved = on_corrected_scale(record, np.array([90.0, 10.0]))
    assert moved["threshold"] == pytest.approx(8 / 26, rel=1e-11)
    at_t = prior_corrected(np.array([[0.2, 0.8]]), np.array([90, 10]))
    assert at_t[0, 1] == pytest.approx(moved["threshold"], rel=1e-11)
    # positive index 0 takes its own count: 0.8 * 90 / (0.8 * 90 + 0.2 * 10) = 72 / 74
    flipped = on_corrected_scale({**record, "positive_index": 0}, np.array([90.0, 10.0]))
    assert flipped["threshold"] == pytest.approx(72 / 74, rel=1e-11)
    probs = np.random.default_rng(0).dirichlet([1, 1], 1000)
    corrected = prior_corrected(probs, np.array([90, 10]))
    assert apply_threshold(probs, record).tolist() == apply_threshold(corrected, moved).tolist()


def test_best_with_prior_corrected_writes_decisions_its_probabilities_show(weighted):
    folder, x = weighted
    meta = json.loads((folder / "meta.json").read_text())
    record, counts = meta["decision_threshold"], meta["data"]["class_counts"]["train"]
    t = record["threshold"]
    n_pos, n_neg = counts[record["positive_index"]], counts[1 - record["positive_index"]]
    moved = t * n_pos / (t * n_pos + (1 - t) * n_neg)
    with pytest.warns(UserWarning, match=f"P\\('1'\\) >= {moved:.3g} on the corrected scale"):
        fixed = trainwise.predict(folder, x, threshold="best", prior_corrected=True)
    assert fixed["prediction"].tolist() == (fixed["probability_1"] >= moved).astype(int).tolist()
    plain = trainwise.predict(folder, x, threshold="best")  # the same rows pass, but for
    # float32 rounding at the threshold itself (a validation row's P is the picked threshold)
    differ = fixed["prediction"].to_numpy() != plain["prediction"].to_numpy()
    with pytest.warns(UserWarning):
        weighted_p = trainwise.predict(folder, x)["probability_1"].to_numpy()
    assert differ.sum() <= 1 and np.all(np.abs(weighted_p[differ] - t) < 1e-7)
    assert 0 < fixed["prediction"].sum() < len(x)  # the check is not vacuous


def test_one_rule_says_a_run_trained_with_balanced_weights():
    # review s12 VA13: a regression ignores class_weights; predict and the report agree
    from trainwise.reporting.run_data import RunData, class_weighted
    from trainwise.train.prior_correction import is_class_weighted

    meta = {"config": {"train": {"class_weights": "balanced"}},
            "data": {"task": "regression", "class_counts": {"train": [90, 10]}}}
    assert not is_class_weighted(meta) and training_counts(meta) is None
    meta["data"]["task"] = "classification"
    assert is_class_weighted(meta) and training_counts(meta).tolist() == [90.0, 10.0]
    assert class_weighted(RunData(path=Path("."), meta=meta))
    meta["data"]["task"] = "regression"
    assert not class_weighted(RunData(path=Path("."), meta=meta))
