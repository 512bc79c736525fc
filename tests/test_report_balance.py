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


def test_a_long_tail_is_drawn_most_rows_first_on_a_log_axis_with_the_rarest_named() -> None:
    """Audit s14 C14: 41 classes were drawn in name order on a linear axis without names, so
    the 2-row class was a flat line no one could find."""
    from trainwise.reporting.figures import MAX_LABELS, class_balance_figure

    names = [f"class {k:02d}" for k in range(41)]
    train = [1674 if k == 0 else (2 if k == 7 else 10 + (k * 7) % 30) for k in range(41)]
    figure = class_balance_figure({"train": train, "val": [max(1, c // 4) for c in train]},
                                  names)
    ax = figure.axes[0]
    assert ax.get_yscale() == "log"
    heights = _bar_heights(figure)[:41]  # the training split's bars, drawn first
    np.testing.assert_allclose(heights, np.sort(np.array(train) / sum(train))[::-1])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "class 00" and labels[-1] == "class 07"  # the most and the fewest
    assert len(labels) <= MAX_LABELS
    assert ax.get_xlabel() == "class, most rows first"


def test_few_classes_keep_their_order_and_a_linear_axis() -> None:
    from trainwise.reporting.figures import class_balance_figure

    figure = class_balance_figure({"train": [10, 30, 20]}, ["a", "b", "c"])
    ax = figure.axes[0]
    assert ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    np.testing.assert_allclose(_bar_heights(figure), [1 / 6, 1 / 2, 1 / 3])


def test_the_report_lists_the_rows_of_each_class_in_each_split(tmp_path) -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], [150, 40, 10])
    result = trainwise.run(data=(rng.normal(size=(200, 3)).astype(np.float32), y),
                           overrides=[f"run.out_dir=\"{tmp_path}\"", "run.threads=1"],
                           until="split")
    text = (result.path / "report.html").read_text(encoding="utf-8")
    counts = load_run(result.path).data["class_counts"]
    assert "Rows per class and split (3 classes)" in text
    for k in range(3):  # each class's row holds its count in each split, in split order
        cells = "".join(f'<td class="num">{counts[part][k]}</td>' for part in counts)
        assert f"<tr><td>{k}</td>{cells}</tr>" in text
    assert sum(sum(c) for c in counts.values()) == 200
