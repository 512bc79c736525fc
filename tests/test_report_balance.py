"""The class-balance figure from the data stage on (audit s8 R6): `trainwise audit` stops
before the split, and METHOD.md §1 looks at the balance first; the report drew it only from
the split's per-part counts."""

from __future__ import annotations

import re

import matplotlib
import numpy as np

matplotlib.use("Agg")

import trainwise  # noqa: E402
from trainwise.reporting.html import figure_builders  # noqa: E402
from trainwise.reporting.run_data import load_run  # noqa: E402


def _bar_heights(figure) -> np.ndarray:
    return np.array([patch.get_height() for patch in figure.axes[0].patches])


def test_audit_report_shows_the_whole_data_sets_class_balance(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [70, 20, 10])  # imbalanced: 70 / 20 / 10
    x = rng.normal(size=(100, 4)).astype(np.float32)
    result = trainwise.run(data=(x, y), overrides=[f"run.out_dir=\"{tmp_path}\"",
                                                   "run.threads=1"], until="data")
    text = (result.path / "report.html").read_text(encoding="utf-8")
    assert "figures/report_class_balance.png" in text
    assert "before any split" in text
    title, build = figure_builders(load_run(result.path))["class_balance"]
    figure = build()
    assert figure.axes[0].get_title(loc="left") == "Class balance before the split"
    np.testing.assert_allclose(_bar_heights(figure), np.bincount(y) / len(y))
    assert re.search(r"all rows \(n=100\)", " ".join(
        t.get_text() for t in figure.axes[0].get_legend().get_texts()))


def test_after_the_split_the_figure_is_per_split(tmp_path) -> None:
    rng = np.random.default_rng(1)
    y = np.arange(120) % 2
    result = trainwise.run(data=(rng.normal(size=(120, 3)).astype(np.float32), y),
                           overrides=[f"run.out_dir=\"{tmp_path}\"", "run.threads=1"],
                           until="split", report=False)
    _, build = figure_builders(load_run(result.path))["class_balance"]
    labels = [t.get_text() for t in build().axes[0].get_legend().get_texts()]
    assert [label.split(" ")[0] for label in labels] == ["train", "val", "test"]
