"""The range-test figure: the test's point and the rate training used are told apart, the band
covers every short run (widened ones too), the bold curve is the level the rule reads (not the
lagging moving average), and the y-limits keep the raw curve's floor in view."""

from __future__ import annotations

import json
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from trainwise.findings import info  # noqa: E402
from trainwise.reporting import build_report  # noqa: E402
from trainwise.reporting.lr_range import (  # noqa: E402
    lr_range_caption,
    lr_range_figure,
    used_lr,
)
from trainwise.tune.lr_range import EMA_BETA  # noqa: E402
from trainwise.tune.lr_rule import rule_level  # noqa: E402
from trainwise.tune.suggest import debiased_ema  # noqa: E402

LRS = np.geomspace(1e-6, 1.0, 100)  # the range test's default ramp: 6 decades in 100 steps


def _raw() -> np.ndarray:
    """Flat at 2.3, falls to 0.3 around lr 1e-2, then diverges (as a real test does)."""
    x = np.log10(LRS)
    loss = 0.3 + 2.0 / (1 + np.exp(3.0 * (x + 2.3)))
    return np.where(x > -1.2, loss + 30.0 * (x + 1.2) ** 2, loss)


def _lr_range() -> dict:
    raw = _raw()
    curve = {"seed": 0, "lrs": LRS.tolist(), "losses": raw.tolist(),
             "smoothed": debiased_ema(raw, EMA_BETA).tolist()}
    return {"curves": [curve], "lr": 0.027, "lr_low": 0.013, "lr_high": 0.071,
            "spread_decades": 0.06, "rule": "trainwise"}


TUNE = {"chosen_lr": 0.0468, "best_lr": 0.0705, "candidates": [
    {"lr": 0.0132, "round": 0}, {"lr": 0.0305, "round": 0}, {"lr": 0.0705, "round": 0},
    {"lr": 0.163, "round": 1}]}  # the last one added when the range widened (mnist1d)


def _labels(fig) -> list[str]:
    return fig.axes[0].get_legend_handles_labels()[1]


def _vertical_lines(fig) -> list[float]:
    return sorted(line.get_xdata()[0] for line in fig.axes[0].lines
                  if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1])


def test_the_range_test_point_and_the_rate_used_are_two_marks() -> None:
    labels = _labels(lr_range_figure(_lr_range(), TUNE, used_lr(TUNE)))
    assert "range-test point 0.027" in labels
    assert "used for training 0.0468" in labels
    assert not any("chosen lr" in label for label in labels)
    assert _vertical_lines(lr_range_figure(_lr_range(), TUNE, 0.0468)) == pytest.approx(
        [0.027, 0.0468])
    # without short runs training uses the point itself: one mark that says both
    same = lr_range_figure(_lr_range(), {"chosen_lr": 0.027, "candidates": []}, 0.027)
    assert "range-test point 0.027, used for training" in _labels(same)
    assert _vertical_lines(same) == pytest.approx([0.027])
    tuned_only = lr_range_figure(_lr_range(), TUNE, 0.0468, trained=False)
    assert "chosen for training 0.0468" in _labels(tuned_only)


def test_the_rate_used_comes_from_tune_json_else_the_lr_chosen_finding() -> None:
    assert used_lr(TUNE) == 0.0468
    chosen = info("tune", "lr_chosen", "Training uses learning rate 0.05.", lr=0.05)
    assert used_lr({"chosen_lr": None}, [chosen]) == 0.05
    assert used_lr(None, [info("tune", "lr_range", "point", lr=0.01)]) is None
    assert used_lr({"chosen_lr": float("nan")}) is None


def test_the_band_covers_every_short_run_including_widened_ones() -> None:
    fig = lr_range_figure(_lr_range(), TUNE, 0.0468)
    ax = fig.axes[0]
    (band,) = [p for p in ax.patches if p.get_label().startswith("short runs tried")]
    left, right = band.get_x(), band.get_x() + band.get_width()
    assert left == pytest.approx(0.0132) and right == pytest.approx(0.163)  # beyond lr_high
    marks = {line.get_label(): line for line in ax.lines}
    assert list(marks["short run"].get_xdata()) == pytest.approx([0.0132, 0.0305, 0.0705])
    assert list(marks["short run added when the range widened"].get_xdata()) == [0.163]
    # no short runs (find-lr): the band is the range test's own range, and says so
    alone = lr_range_figure(_lr_range(), None, None)
    assert "range test's range 0.013–0.071" in _labels(alone)


def test_the_bold_curve_is_the_level_the_rule_reads_not_the_lagging_average() -> None:
    """Audit s13 T2: the bold EMA (beta 0.98, ~50 steps = 3 decades of this ramp) bottomed out
    decades right of the raw curve and showed no rise where the rule saw one."""
    from trainwise.tune import suggest_range

    lr_range = _lr_range()
    raw = _raw()
    ema = np.array(lr_range["curves"][0]["smoothed"])  # stored: it stops the test, only
    bold = [line for line in lr_range_figure(lr_range, TUNE, 0.0468).axes[0].lines
            if line.get_label() == "seed 0 (level the rule reads)"]
    assert len(bold) == 1
    lrs, level = np.asarray(bold[0].get_xdata()), np.asarray(bold[0].get_ydata())
    raw_bottom = np.log10(LRS[np.argmin(raw)])
    assert abs(np.log10(lrs[np.argmin(level)]) - raw_bottom) < 0.2  # no lag
    np.testing.assert_allclose(level, rule_level(LRS, raw)[1])  # what suggest_range reads
    assert not np.allclose(level, ema[: level.size])
    # it reaches the range's top, where the rule saw the rise, and shows that rise
    high = suggest_range(LRS, raw).lr_high
    assert lrs[-1] >= high
    rise = level[lrs >= high][0] - level.min()
    assert rise >= 0.1 * (level[0] - level.min())


def test_the_y_limits_keep_the_raw_floor_in_view() -> None:
    lr_range = _lr_range()
    raw_floor = 0.3
    low, high = lr_range_figure(lr_range, TUNE, 0.0468).axes[0].get_ylim()
    assert low <= raw_floor + 0.02  # the raw minimum is in view
    assert high < 4.0  # the divergence (loss > 30) is still cut off
    # one lucky batch far below the curve does not stretch the axis
    lucky = _raw()
    lucky[60] = -5.0
    lr_range["curves"][0]["losses"] = lucky.tolist()
    assert lr_range_figure(lr_range, TUNE, 0.0468).axes[0].get_ylim()[0] > 0.0


def test_the_caption_says_the_bold_curve_is_the_level_the_rule_reads() -> None:
    caption = lr_range_caption(_lr_range(), TUNE, 0.0468)
    assert "Bold: the level the rule reads" in caption and "does not lag" in caption
    assert "moving average" not in caption
    assert "dashed: the rate used for training, 0.0468" in caption
    assert "hollow: added when the range widened" in caption
    same = lr_range_caption(_lr_range(), {"candidates": []}, 0.027)
    assert "dashed" not in same and "the range test's range" in same


def test_the_report_uses_the_caption_and_the_rate_used(tmp_path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"name": "t", "verdict": "ok"}))
    (tmp_path / "lr_range.json").write_text(json.dumps(_lr_range()))
    (tmp_path / "tune.json").write_text(json.dumps(TUNE))
    html = build_report(tmp_path).read_text()
    caption = re.search(r'alt="LR range test".*?<figcaption>(.*?)<span', html, re.S).group(1)
    assert "level the rule reads" in caption and "chosen for training, 0.0468" in caption


def test_the_report_says_one_seeds_spread_is_unknown(tmp_path) -> None:
    """Audit s13 T11: one seed's spread (null) was left out, or printed 0.00 decades."""
    (tmp_path / "meta.json").write_text(json.dumps({"name": "t", "verdict": "ok"}))
    one = {**_lr_range(), "spread_decades": None}
    (tmp_path / "lr_range.json").write_text(json.dumps(one))
    html = build_report(tmp_path).read_text()
    assert "from 1 seed; spread unknown (1 seed; tune.num_seeds &gt;= 3 measures it)" in html


def _result():
    from trainwise.tune.lr_range import LrCurve, LrRangeResult

    curve = _lr_range()["curves"][0]
    return LrRangeResult(lr=0.027, lr_low=0.013, lr_high=0.071, spread_decades=0.06,
                         rule="trainwise", curves=[LrCurve(0, curve["lrs"], curve["losses"],
                                                           curve["smoothed"])])


def test_find_lr_result_plots_the_reports_figure() -> None:
    """Audit s12 L10: trainwise.find_lr's result had no plot (fastai's lr_find shows one)."""
    from matplotlib.figure import Figure

    result = _result()
    fig = result.plot()
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == _labels(lr_range_figure(result.to_dict()))  # the report's figure, reused
    assert "range test's range 0.013–0.071" in labels and "range-test point 0.027" in labels
    assert ax.get_xscale() == "log"
    raw, bold = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(raw.get_xdata(), LRS)
    np.testing.assert_allclose(raw.get_ydata(), _raw())
    np.testing.assert_allclose(bold.get_ydata(), rule_level(LRS, _raw())[1])
    (band,) = ax.patches  # the suggested range, shaded in data units (an axvspan)
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((0.013, 0.071))
    assert isinstance(fig, Figure)
    theirs = Figure().add_subplot()  # with ax=: the Axes back, as pandas' df.plot(ax=ax)
    assert result.plot(ax=theirs) is theirs and len(theirs.lines) == len(ax.lines)


def test_tune_result_plots_the_chosen_lr_on_the_range_test() -> None:
    from matplotlib.figure import Figure

    from trainwise.tune.search import TuneResult

    tuned = TuneResult(lr=0.0468, range_test=_result(), short=None)
    labels = _labels(tuned.plot())
    assert "chosen for training 0.0468" in labels and "range-test point 0.027" in labels
    theirs = Figure().add_subplot()  # audit s16 N21: the Axes drawn on, not its Figure
    assert tuned.plot(ax=theirs) is theirs and _labels(theirs.figure) == labels
