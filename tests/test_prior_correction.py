"""Balanced class weights move the probabilities toward the rarer classes (user audit s12
S4: mean P('1') 0.264 on 5.5% positives); predict says so and, on request, undoes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import trainwise
from trainwise.data.errors import DataError
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
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.08).astype(np.int64)
    x = (rng.normal(0, 1, (600, 5)) + y[:, None] * [1.5, 1.0, 0, 0, 0]).astype(np.float32)
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
