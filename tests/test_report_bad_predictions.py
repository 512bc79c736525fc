"""A malformed test_predictions.csv costs one figure, shown as a note in the report, not the
whole report (audit s16 S10: `trainwise report` ended in KeyError: 'actual', no report.html)."""

from __future__ import annotations

import html
import shutil

import matplotlib
import pytest

matplotlib.use("Agg")

from trainwise.reporting import build_report  # noqa: E402
from trainwise.reporting.html import figure_builders  # noqa: E402
from trainwise.reporting.precision_recall import two_class_predictions  # noqa: E402
from trainwise.reporting.run_data import load_run  # noqa: E402
from trainwise.train.regression_predictions import read_predictions  # noqa: E402

NOTE = "test_predictions.csv lacks column 'actual' (it has x, y)"


def test_a_malformed_predictions_file_is_a_note_and_the_rest_is_drawn(finished_run,
                                                                      tmp_path) -> None:
    folder = tmp_path / "received"
    shutil.copytree(finished_run[0], folder)
    assert "precision_recall" in figure_builders(load_run(folder))  # the file is read here
    (folder / "test_predictions.csv").write_text("x,y\n1,2\n")
    text = html.unescape(" ".join(build_report(folder).read_text(encoding="utf-8").split()))
    assert "figure 'precision_recall' could not be drawn: ValueError: " + NOTE in text
    assert (folder / "figures" / "report_loss.png").is_file()  # the others still drawn


@pytest.mark.parametrize("read", [lambda p: two_class_predictions(p, None, "1"),
                                  read_predictions])
def test_the_readers_name_the_missing_column(read, tmp_path) -> None:
    path = tmp_path / "test_predictions.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=r"lacks column 'actual' \(it has x, y\).*delete it"):
        read(path)
