"""A two-class report draws the test split's precision-recall curve with the argmax's and the
kept threshold's operating points (audit s14 C16): the points and the AP must be the numbers
meta.json scored, recomputed from test_predictions.csv with scikit-learn."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import trainwise  # noqa: E402
from trainwise.reporting.html import figure_builders  # noqa: E402
from trainwise.reporting.precision_recall import (  # noqa: E402
    precision_recall_figure,
    two_class_predictions,
)
from trainwise.reporting.run_data import load_run  # noqa: E402

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32", "split.group_column=\"none\"", "split.time_column=\"none\""]


def _rare_positives(num_rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_rows, 3))
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.6, num_rows)
    label = np.where(score > np.quantile(score, 0.88), "yes", "no")  # 12% positives
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label})


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pr")
    result = trainwise.run(data=_rare_positives(1500, 0), report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{out}\""])
    assert result.ok, result.verdict
    return result.path


def _legend(figure) -> list[str]:
    return [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_the_curve_marks_the_numbers_the_test_table_scored(two_class_run) -> None:
    meta = json.loads((two_class_run / "meta.json").read_text())
    test, record = meta["test"], meta.get("decision_threshold")
    assert record is not None and record["positive_class"] == "yes"  # a kept threshold
    title, build = figure_builders(load_run(two_class_run))["precision_recall"]
    labels = _legend(build())
    assert f"average precision {test['test_average_precision']:.3f}" in labels[0]
    kept = pd.read_csv(two_class_run / "test_predictions.csv")
    truth = kept["actual"] == "yes"
    said = kept["predicted"] == "yes"
    recall = (said & truth).sum() / truth.sum()
    precision = (said & truth).sum() / said.sum()
    assert labels[2] == f"argmax: recall {recall:.1%}, precision {precision:.1%}"
    assert labels[3] == (f"threshold {record['threshold']:.3g}, picked on validation: recall "
                         f"{test['test_threshold_recall']:.1%}, precision "
                         f"{test['test_threshold_precision']:.1%}")
    assert labels[1] == f"chance ({truth.mean():.1%} of the rows)"


def test_a_class_never_predicted_is_drawn_at_precision_zero_and_said() -> None:
    from sklearn.metrics import average_precision_score

    actual = np.array(["no"] * 8 + ["yes"] * 2)
    probability = np.linspace(0.05, 0.45, 10)  # 'yes' never passes 0.5
    figure = precision_recall_figure(actual, probability, "yes", np.array(["no"] * 10))
    labels = _legend(figure)
    assert labels[2] == "argmax: recall 0.0%, precision n/a (never predicted)"
    assert f"{average_precision_score(actual == 'yes', probability):.3f}" in labels[0]


def test_more_than_two_classes_draw_no_curve(tmp_path) -> None:
    rng = np.random.default_rng(3)
    y = np.arange(300) % 3
    result = trainwise.run(data=(rng.normal(size=(300, 3)).astype(np.float32), y),
                           report=False, overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert (result.path / "test_predictions.csv").exists()
    assert "precision_recall" not in figure_builders(load_run(result.path))


def _drifted_predictions(path) -> pd.DataFrame:
    """A drifted time split's test rows: 'yes' was rarer in validation (the threshold's class)
    but is 70% of test, so test's rarer class, the one its AP scores, is 'no'."""
    rng = np.random.default_rng(0)
    actual = np.where(rng.random(200) < 0.7, "yes", "no")
    yes = np.clip(0.5 + 0.3 * (actual == "yes") - 0.15 + rng.normal(0, 0.2, 200), 0, 1)
    frame = pd.DataFrame({"actual": actual, "predicted": np.where(yes > 0.5, "yes", "no"),
                          "predicted_at_threshold": np.where(yes > 0.4, "yes", "no"),
                          "probability_no": 1 - yes, "probability_yes": yes})
    frame.to_csv(path, index=False)
    return frame


def test_a_drifted_split_says_which_class_the_scores_table_scored(tmp_path) -> None:
    """Review s15 VE3: the curve of the threshold's class 'yes' beside a table AP for 'no'."""
    from sklearn.metrics import average_precision_score

    frame = _drifted_predictions(tmp_path / "test_predictions.csv")
    record = {"threshold": 0.4, "positive_class": "yes"}
    kept = two_class_predictions(tmp_path / "test_predictions.csv", record, "no")
    assert kept["positive"] == "yes" and kept["threshold"] == 0.4
    table_ap = average_precision_score(frame["actual"] == "no", frame["probability_no"])
    labels = _legend(precision_recall_figure(**kept))
    assert labels[-1] == ("drawn for 'yes', the threshold's class; the scores table's average "
                          f"precision {table_ap:.3f} is for 'no', the test split's rarer class")


def test_with_no_kept_threshold_the_curve_is_test_s_rarer_class(tmp_path) -> None:
    """Review s15 VE3: a record with threshold None (not kept) still named validation's
    'yes'; the curve is then for 'no', the class the table's AP scores, with no note."""
    _drifted_predictions(tmp_path / "test_predictions.csv")
    record = {"threshold": None, "positive_class": "yes", "not_kept": "too few rows"}
    kept = two_class_predictions(tmp_path / "test_predictions.csv", record, "no")
    assert kept["positive"] == "no" and kept["threshold"] is None
    assert kept["at_threshold"] is None and kept["table_note"] is None
