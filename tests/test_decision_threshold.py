"""The decision threshold a two-class run picks on validation (user audit s12 S2): kept in
meta.json, scored once on the test rows, and applied by predict(threshold="best").

Oracles: a hand-worked threshold on four rows, and scikit-learn's
precision_recall_fscore_support / balanced_accuracy_score on the test rows' predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

import trainwise
from trainwise.cli import main
from trainwise.data.errors import DataError
from trainwise.rundir import read_history
from trainwise.train.decision_threshold import apply_threshold, scores_at_threshold
from trainwise.train.ranking_verdict import validation_threshold

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32"]


def test_a_threshold_answers_the_positive_class_at_or_above_it():
    record = {"positive_index": 0, "threshold": 0.3}
    probs = np.array([[0.29, 0.71], [0.30, 0.70], [0.9, 0.1], [0.1, 0.9]])
    # P(class 0) >= 0.3 for rows 1 and 2 only: class 0 there, class 1 elsewhere
    assert apply_threshold(probs, record).tolist() == [1, 0, 0, 1]
    scores = scores_at_threshold(probs, np.array([0, 0, 1, 1]), record)
    # predicted [1, 0, 0, 1] against [0, 0, 1, 1]: 1 true positive of 2 said, of 2 actual
    assert scores["test_threshold_precision"] == 0.5
    assert scores["test_threshold_recall"] == 0.5
    assert scores["test_threshold_balanced_accuracy"] == 0.5


def rare_rows() -> tuple[np.ndarray, np.ndarray]:
    """1000 rows, ~8% positives that the features separate only partly (about 12 in
    validation: over MIN_PICK_POSITIVES, under 30)."""
    rng = np.random.default_rng(3)
    y = (rng.random(1000) < 0.08).astype(np.int64)
    x = (rng.normal(0, 1, (1000, 5)) + y[:, None] * [1.5, 1.0, 0, 0, 0]).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def rare(tmp_path_factory):
    x, y = rare_rows()
    out = tmp_path_factory.mktemp("rare")
    result = trainwise.run(data=(x, y), report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{out}\""])
    assert result.ok, result.verdict
    with np.load(result.path / "split.npz") as saved:
        test = saved["test"]
    return result.path, x[test], y[test]


def test_the_run_keeps_the_best_epochs_validation_threshold(rare):
    folder, _, _ = rare
    meta = json.loads((folder / "meta.json").read_text())
    picked = validation_threshold(read_history(folder))
    assert meta["decision_threshold"]["threshold"] == picked["threshold"]
    assert meta["decision_threshold"]["positive_class"] == "1"
    assert meta["decision_threshold"]["picked_on"] == "validation"
    assert meta["test"]["test_threshold"] == picked["threshold"]


def test_the_test_scores_at_the_threshold_are_sklearns(rare):
    folder, x, y = rare
    meta = json.loads((folder / "meta.json").read_text())
    threshold = meta["decision_threshold"]["threshold"]
    with pytest.warns(UserWarning, match="--threshold best"):
        frame = trainwise.predict(folder, x)  # the argmax: the threshold is named, not applied
    said = (frame["probability_1"].to_numpy() >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, said, pos_label=1, average="binary", zero_division=0)
    test = meta["test"]
    assert test["test_threshold_precision"] == pytest.approx(precision, abs=1e-12)
    assert test["test_threshold_recall"] == pytest.approx(recall, abs=1e-12)
    assert test["test_threshold_f1"] == pytest.approx(f1, abs=1e-12)
    assert test["test_threshold_balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y, said), abs=1e-12)
    best = trainwise.predict(folder, x, threshold="best")
    assert best["prediction"].tolist() == said.tolist()


def test_the_command_line_applies_the_threshold_on_request(rare, tmp_path, capsys):
    folder, x, _ = rare
    np.savez(tmp_path / "new.npz", X=x)
    out = tmp_path / "p.csv"
    assert main(["predict", str(folder), str(tmp_path / "new.npz"), "--out", str(out),
                 "--threshold", "best"]) == 0
    import pandas as pd

    threshold = json.loads((folder / "meta.json").read_text())["decision_threshold"]["threshold"]
    written = pd.read_csv(out)
    assert written["prediction"].tolist() == (written["probability_1"] >= threshold
                                              ).astype(int).tolist()


def test_an_unknown_threshold_is_refused_with_the_choices(rare):
    folder, x, _ = rare
    with pytest.raises(DataError, match='"argmax".*"best"'):
        trainwise.predict(folder, x, threshold="0.3")


def _row(argmax: float, at_threshold: float) -> dict:
    return {"test_balanced_accuracy": argmax, "test_threshold": 0.236,
            "test_threshold_precision": 0.71, "test_threshold_recall": 0.97,
            "test_threshold_f1": 0.82, "test_threshold_balanced_accuracy": at_threshold}


def test_one_rule_recommends_the_threshold_for_predict_and_the_verdict(rare, tmp_path):
    """Review s12 VA5 / VA11: on t3 (argmax 0.843, threshold 0.812 balanced accuracy) predict
    said "To apply it" while the verdict stayed silent; now both follow
    threshold_recommended (>= 5 points), and both name P('<class>')."""
    import shutil
    import warnings

    from trainwise.recipe_verdict import _beside_accuracy
    from trainwise.train.decision_threshold import threshold_recommended

    record = {"positive_class": "no", "positive_index": 0, "threshold": 0.236}
    assert not threshold_recommended(_row(0.843, 0.812))
    assert not threshold_recommended(_row(0.80, 0.849))  # 4.9 points: not enough
    assert threshold_recommended(_row(0.50, 0.79))
    assert "threshold" not in _beside_accuracy(_row(0.843, 0.812), None, record)
    said = _beside_accuracy(_row(0.50, 0.79), None, record)
    assert "P('no') >= 0.236: precision 71%, recall 97%" in said
    folder, x, _ = rare
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "meta.json").read_text())
    for gain, noted in ((0.01, False), (0.2, True)):
        meta["test"]["test_threshold_balanced_accuracy"] = \
            meta["test"]["test_balanced_accuracy"] + gain
        (copy / "meta.json").write_text(json.dumps(meta))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainwise.predict(copy, x)
        notes = [str(w.message) for w in caught if "--threshold best" in str(w.message)]
        assert bool(notes) is noted
        assert threshold_recommended(meta["test"]) is noted


def test_a_run_without_two_classes_reads_no_history_for_a_threshold(tmp_path, monkeypatch):
    """Review s12 VA12: a three-class run parsed history.jsonl on every predict for a
    threshold that only two-class runs pick."""
    import trainwise.rundir as rundir
    from trainwise.train.decision_threshold import run_threshold

    def refuse(*_):
        raise AssertionError("history.jsonl read")

    monkeypatch.setattr(rundir, "read_history", refuse)
    assert run_threshold(tmp_path, ["a", "b", "c"]) is None
    assert run_threshold(tmp_path, ["a", "b"], {"decision_threshold": {"threshold": 0.3}}) \
        == {"threshold": 0.3}  # meta given: not read again


def test_the_threshold_names_the_positive_rows_it_rests_on(rare):
    """Audit s13 F11: a threshold picked on 9 positive validation rows was recommended
    without a word on how few; the count is kept and, under 30, a caution names the keys."""
    folder, _, _ = rare
    _, y = rare_rows()
    with np.load(folder / "split.npz") as saved:
        positives = int((y[saved["val"]] == 1).sum())  # counted by hand from the split
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["decision_threshold"]["validation"]["positives"] == positives
    assert positives < 30
    findings = json.loads((folder / "findings.json").read_text())
    (result,) = [f for f in findings if f["code"] == "test_result"]
    assert f"picked on validation ({positives} rows of class '1')" in result["message"]
    assert f"it rests on {positives} validation rows of that class, under 30" in \
        result["message"]
    assert "split.val_fraction" in result["message"] and "split.num_folds" in result["message"]


def test_thirty_positive_rows_need_no_caution():
    from trainwise.train.decision_threshold import threshold_text

    row = {"test_threshold_f1": 0.5, "test_threshold_precision": 0.5,
           "test_threshold_recall": 0.5, "test_threshold_balanced_accuracy": 0.7}
    record = {"positive_class": "1", "threshold": 0.2, "validation": {"positives": 30}}
    said = threshold_text(row, record)
    assert "(30 rows of class '1')" in said and "split.val_fraction" not in said
    record["validation"]["positives"] = 29
    assert "rests on 29 validation rows" in threshold_text(row, record)


def test_the_verdict_says_a_shaky_threshold_briefly():
    """The test_result finding carries the whole caution; the one-line verdict only flags it
    (a run's verdict had grown to 1,095 characters with it)."""
    from trainwise.train.decision_threshold import threshold_text

    row = {"test_threshold_f1": 0.5, "test_threshold_precision": 0.5,
           "test_threshold_recall": 0.5, "test_threshold_balanced_accuracy": 0.7}
    record = {"positive_class": "1", "threshold": 0.2, "validation": {"positives": 6}}
    brief = threshold_text(row, record, brief=True)
    assert "shaky on 6 rows, under 30: see the findings" in brief
    assert len(brief) < len(threshold_text(row, record)) - 100
