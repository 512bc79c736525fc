"""The reliability diagram keeps validation and test apart (a panel each, both with counts) and
greys out bins too small to judge (mnist1d's test bins of 1-3 rows read as miscalibration)."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")

from matplotlib.colors import to_rgb  # noqa: E402

from trainwise.reporting import build_report  # noqa: E402
from trainwise.reporting.reliability import SPARSE_COLOR, reliability_figure  # noqa: E402

# 15 bins as evaluate() writes them; validation 400 rows, test 1000, each with a few 1-3 row bins
VAL = {"confidence": [None] * 6 + [0.43, None, 0.59, None, None, 0.76, None, 0.91, 0.99],
       "accuracy": [None] * 6 + [1.0, None, 1.0, None, None, 0.75, None, 1.0, 1.0],
       "count": [0] * 6 + [2, 0, 1, 0, 0, 4, 0, 8, 385]}
TEST = {"confidence": [None] * 5 + [0.37, 0.43, 0.50, 0.58, 0.64, 0.69, 0.77, 0.83, 0.91, 0.99],
        "accuracy": [None] * 5 + [0.0, 0.5, 0.29, 0.67, 0.0, 0.25, 0.91, 0.83, 0.96, 0.99],
        "count": [0] * 5 + [1, 4, 7, 3, 5, 4, 11, 6, 28, 931]}
EPOCHS = [{"kind": "epoch", "epoch": 15, "step": 435, "val_loss": 0.04, "val_reliability": VAL}]


def _bars(ax) -> list:
    return [p for p in ax.patches if p.get_width() < 1]


def _grey(bar) -> bool:
    return tuple(bar.get_facecolor()[:3]) == to_rgb(SPARSE_COLOR)


def test_each_split_has_its_own_panel_with_its_counts() -> None:
    fig = reliability_figure(EPOCHS, {"kind": "test", "test_reliability": TEST})
    val_ax, test_ax = fig.axes
    assert val_ax.get_title(loc="left") == "validation, epoch 15 (n=400)"
    assert test_ax.get_title(loc="left") == "test, the kept weights (n=1,000)"
    assert [t.get_text() for t in test_ax.texts] == [str(n) for n in TEST["count"] if n]
    assert [t.get_text() for t in val_ax.texts] == [str(n) for n in VAL["count"] if n]
    assert [b.get_height() for b in _bars(test_ax)] == [a for a in TEST["accuracy"] if a
                                                        is not None]


def test_bins_of_fewer_than_10_rows_are_grey_in_both_panels() -> None:
    fig = reliability_figure(EPOCHS, {"kind": "test", "test_reliability": TEST})
    for ax, bins in zip(fig.axes, (VAL, TEST), strict=True):
        counts = [n for n in bins["count"] if n]
        assert [_grey(b) for b in _bars(ax)] == [n < 10 for n in counts]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "bin of < 10 rows (too few to judge)" in labels
    dense = {"confidence": [None] * 14 + [0.99], "accuracy": [None] * 14 + [1.0],
             "count": [0] * 14 + [400]}
    clean = reliability_figure([{**EPOCHS[0], "val_reliability": dense}])
    assert len(clean.axes) == 1  # no test row: one panel
    assert not any("too few" in t.get_text() for t in clean.legends[0].get_texts())


def test_the_caption_says_which_panel_is_which_split(tmp_path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"name": "t", "verdict": "ok", "data": {
        "task": "classification"}}))
    rows = [*EPOCHS, {"kind": "test", "test_accuracy": 0.978, "test_reliability": TEST}]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = build_report(tmp_path).read_text()
    caption = re.search(r'alt="Reliability diagram".*?<figcaption>(.*?)<span', html,
                        re.S).group(1)
    assert "One panel per split" in caption and "test, scored once" in caption
    assert "fewer than 10 rows" in caption
    assert "the line: the test split" not in caption


def _caption(tmp_path, meta: dict, rows: list[dict]) -> str:
    (tmp_path / "meta.json").write_text(json.dumps({"name": "t", "verdict": "ok", "data": {
        "task": "classification"}, **meta}))
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = build_report(tmp_path).read_text()
    return re.search(r'alt="Reliability diagram".*?<figcaption>(.*?)<span', html,
                     re.S).group(1)


def test_the_caption_claims_only_what_the_run_holds(tmp_path) -> None:
    """Audit s11 D10: a Monitor's report said 'whose weights were kept' and 'test, scored once
    with those weights': a Monitor keeps no weights and scores no test."""
    monitor = _caption(tmp_path, {"source": "trainwise.Monitor"}, EPOCHS)
    assert "kept" not in monitor and "test" not in monitor
    assert "lowest validation loss" in monitor and "fewer than 10 rows" in monitor
    untested = _caption(tmp_path, {}, EPOCHS)  # a recipe run stopped before evaluate
    assert "weights were kept" in untested and "no test was scored" in untested
