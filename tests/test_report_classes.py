"""The report's test section per class: baseline beside accuracy, per-class table, confusion
matrix (or the top confusions for many classes). Rendered without figures: fast."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics

from trainwise.reporting.context import report_context
from trainwise.reporting.html import render_html
from trainwise.reporting.run_data import load_run
from trainwise.train.class_metrics import per_class


def _render(tmp_path: Path, test: dict[str, Any], class_names: list[str],
            task: str = "classification") -> str:
    run = tmp_path / "run"
    run.mkdir()
    data = {"name": "t", "task": task, "class_names": class_names,
            "num_classes": len(class_names)}
    (run / "meta.json").write_text(json.dumps({"data": data, "verdict": "done"}))
    (run / "history.jsonl").write_text(json.dumps({"kind": "test", **test}) + "\n")
    context = report_context(load_run(run))
    context.update(figures={}, extra_figures=[], problems=[])
    return render_html(context)


def _test_row(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    import torch

    matrix = metrics.confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
    return {"test_loss": 0.5, "test_accuracy": metrics.accuracy_score(y_true, y_pred),
            "test_balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
            "test_confusion": matrix.tolist(), "test_baseline_accuracy": 0.9575,
            "test_baseline_class": "no", "test_per_class": per_class(torch.tensor(matrix))}


def _section(text: str) -> str:
    return text[text.index('id="test"'):text.index('id="findings"')]


def test_imbalanced_result_shows_baseline_recall_and_matrix(tmp_path: Path) -> None:
    y_true = np.array([0] * 383 + [1] * 17)
    y_pred = np.zeros(400, dtype=np.int64)
    y_pred[-2:] = 1  # 2 of 17 "yes" found
    text = _render(tmp_path, _test_row(y_true, y_pred, 2), ["no", "yes"])
    headline = text[text.index('class="headline"'):text.index("</dl>")]
    assert "always the majority class" in headline and "95.8 %" in headline
    assert "test balanced accuracy" in headline and "55.9 %" in headline  # (1 + 2/17) / 2
    section = _section(text)
    facts = re.findall(r"<tr><th>([^<]*)</th>", section[:section.index("Per class")])
    assert facts[:5] == ["test accuracy", "test accuracy, 95% interval",
                         "test baseline accuracy", "test baseline class",
                         "test balanced accuracy"]  # the baseline right beside accuracy
    rows = re.findall(r"<tr><td>(\w+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", section)
    cells = {name: re.findall(r">([^<]*)<", tds)[::2] for name, tds in rows}
    # rows, precision and its 95% Wilson interval (2 of 2), recall and its (2 of 17), F1
    assert cells["yes"] == ["17", "100.0 %", "34.2 – 100 %", "11.8 %", "3.3 – 34.3 %", "0.211"]
    matrix = section[section.index("Confusion matrix"):]
    counts = [re.findall(r'<td class="num(?: correct)?" style="[^"]*">(\d+)</td>', row)
              for row in re.findall(r"<tr><th>(?:no|yes)</th>(.*?)</tr>", matrix)]
    assert counts == [["383", "0"], ["15", "2"]]  # sklearn's layout: row = true class


def test_many_classes_list_the_top_confusions_instead_of_a_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 25, 2000)
    y_pred = np.where(rng.random(2000) < 0.8, y_true, rng.integers(0, 25, 2000))
    y_pred[y_true == 3] = 7  # class c3 always called c7: the largest confusion
    text = _render(tmp_path, _test_row(y_true, y_pred, 25), [f"c{i}" for i in range(25)])
    section = _section(text)
    assert "Confusion matrix" not in section
    top = section[section.index("Most frequent confusions"):]
    first = re.search(r"<tr><td>(\w+)</td><td>(\w+)</td><td[^>]*>(\d+)</td>", top)
    assert first.groups() == ("c3", "c7", str(int((y_true == 3).sum())))
    assert len(re.findall(r"<tr><td>c\d+</td><td>c\d+</td>", top)) == 10


def test_regression_has_no_class_tables(tmp_path: Path) -> None:
    text = _render(tmp_path, {"test_loss": 0.3, "test_rmse": 0.65, "test_mae": 0.43}, [],
                   task="regression")
    section = html.unescape(_section(text))
    assert "Per class" not in section and "onfusion" not in section and "baseline" not in section
    assert "test RMSE" in text


def test_regression_shows_r2_beside_the_baselines(tmp_path: Path) -> None:
    """Audit s8 T2: the test section read 'test loss, test mae, test rmse' with nothing to
    judge them by. R^2 and the baselines now stand beside them, in that order, named."""
    test = {"test_loss": 0.25, "test_mae": 1.712, "test_rmse": 1.793, "test_r2": -1.05,
            "test_mean_rmse": 5.1, "test_mean_mae": 4.9, "test_previous_rmse": 0.521,
            "test_previous_mae": 0.407}
    text = _render(tmp_path, test, [], task="regression")
    section = html.unescape(_section(text))
    labels = re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", section)
    assert labels[:7] == [("test RMSE", "1.793"), ("test MAE", "1.712"), ("test R²", "-1.05"),
                          ("RMSE of predicting the training mean", "5.1"),
                          ("MAE of predicting the training mean", "4.9"),
                          ("RMSE of repeating the previous value", "0.521"),
                          ("MAE of repeating the previous value", "0.407")]
    assert "no better than that constant" in section
    headline = html.unescape(text[:text.index('id="data"')])
    # the headline names the baselines as the table does, the previous value included: on a
    # series it is the one that matters (it beats the model here)
    assert "test R²" in headline and "RMSE of predicting the training mean" in headline
    assert "RMSE of repeating the previous value" in headline and "0.521" in headline


def test_undefined_precision_and_recall_read_n_a_not_zero(tmp_path: Path) -> None:
    """audit s9 I10: 'yes' is never predicted (precision 0/0) and 'maybe' has no test row
    (recall 0/0): both were printed 0.0 %, which reads as a model failure."""
    y_true = np.array([0] * 40 + [1] * 5)
    y_pred = np.zeros(45, dtype=np.int64)
    text = _render(tmp_path, _test_row(y_true, y_pred, 3), ["no", "yes", "maybe"])
    rows = re.findall(r"<tr><td>(\w+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", _section(text))
    cells = {name: re.findall(r">([^<]*)<", tds)[::2] for name, tds in rows}
    assert cells["yes"][:2] == ["5", "n/a (never predicted)"] and cells["yes"][3:] == [
        "0.0 %", "0 – 43.4 %", "0.000"]  # 0 of 5 found: Wilson's upper bound 43.4%
    assert cells["maybe"] == ["0", "n/a (never predicted)", "", "n/a (no test rows)", "", "n/a"]
    assert [cells["no"][i] for i in (0, 1, 3, 5)] == ["40", "88.9 %", "100.0 %", "0.941"]


def test_intervals_and_a_note_for_classes_with_few_rows(tmp_path: Path) -> None:
    """audit s9 I6: each precision / recall has its Wilson interval; balanced accuracy its
    MOVER interval under it; classes under 10 test or validation rows are named."""
    from trainwise.train.intervals import balanced_accuracy_interval, percent, wilson

    y_true = np.array([0] * 300 + [1] * 20 + [2] * 3)
    y_pred = y_true.copy()
    y_pred[300:305] = 0  # 15 of 20 '1' found
    y_pred[320:] = 0  # no '2' found
    run = tmp_path / "run"
    run.mkdir()
    data = {"name": "t", "task": "classification", "class_names": ["a", "b", "c"],
            "num_classes": 3, "class_counts": {"train": [900, 60, 9], "val": [150, 9, 1],
                                               "test": [300, 20, 3]}}
    (run / "meta.json").write_text(json.dumps({"data": data, "verdict": "done"}))
    (run / "history.jsonl").write_text(json.dumps({"kind": "test", **_test_row(
        y_true, y_pred, 3)}) + "\n")
    context = report_context(load_run(run))
    context.update(figures={}, extra_figures=[], problems=[])
    section = _section(render_html(context))
    low, high = wilson(15, 20)
    assert f"<td class=\"num muted\">{percent(low)} – {percent(high)} %</td>" in section
    low, high = balanced_accuracy_interval(_test_row(y_true, y_pred, 3)["test_confusion"])
    assert f"{percent(low)} – {percent(high)} % (MOVER" in section
    # test rows and validation rows listed apart: 'b' has 20 test rows, so its recall in this
    # table is not the one few rows shake (review s9 A14)
    note = html.unescape(section[section.index("Fewer than 10 test rows"):])
    assert note.startswith("Fewer than 10 test rows: 'c' (3). One row moves such a class's "
                           "recall in this table")
    assert "Fewer than 10 validation rows: 'b' (9), 'c' (1). One row there moves " \
        "val_balanced_accuracy" in note
    assert "'a'" not in note[:note.index("Collect")]
