"""Report figures drawn from the diagnosis: the reliability diagram's bars are evaluate()'s bins,
and every diagnosis code is drawn on the curve it fired on."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from trainwise.findings import Finding, Severity  # noqa: E402
from trainwise.reporting.confidence import confidence_figure  # noqa: E402
from trainwise.reporting.curves import grad_norm_figure, loss_figure  # noqa: E402
from trainwise.reporting.figures import FINDING_CURVES  # noqa: E402
from trainwise.reporting.html import figure_builders  # noqa: E402
from trainwise.reporting.metric_curves import metric_figure  # noqa: E402
from trainwise.reporting.reliability import (  # noqa: E402
    MIN_BIN_ROWS,
    SPARSE_COLOR,
    reliability_figure,
)
from trainwise.reporting.run_data import RunData  # noqa: E402
from trainwise.train.diagnose import list_rules  # noqa: E402
from trainwise.train.evaluate import reliability  # noqa: E402

ACCURACY_KEYS = ["train_accuracy", "val_accuracy", "val_mean_confidence"]


def _bins(seed: int, n: int = 400, sharpness: float = 3.0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(sharpness * torch.randn(n, 5, generator=generator), dim=1)
    targets = torch.randint(0, 5, (n,), generator=generator)
    return reliability(probs, targets)


def _bars(fig) -> list[Rectangle]:
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_width() < 1]


def test_reliability_bars_are_the_non_empty_bins_of_evaluate() -> None:
    val = _bins(0)
    epochs = [{"kind": "epoch", "epoch": 1, "step": 10, "val_loss": 1.0, "val_reliability": val}]
    fig = reliability_figure(epochs)
    bars = _bars(fig)
    full = [i for i, n in enumerate(val["count"]) if n]
    assert 0 < len(full) < 15  # the reference has empty bins, so skipping them is tested
    assert len(bars) == len(full)
    assert [b.get_x() for b in bars] == pytest.approx([i / 15 for i in full])
    assert [b.get_height() for b in bars] == pytest.approx([val["accuracy"][i] for i in full])
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == [str(val["count"][i]) for i in full]  # the bin counts, over the bars
    grey = [tuple(b.get_facecolor()[:3]) == to_rgb(SPARSE_COLOR) for b in bars]
    assert grey == [val["count"][i] < MIN_BIN_ROWS for i in full]  # too few rows to judge
    assert any(grey) and not all(grey)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert list(lines["perfectly calibrated"].get_xydata().tolist()) == [[0, 0], [1, 1]]
    dots = lines["bin's mean confidence"].get_xydata()
    assert dots[:, 0] == pytest.approx([val["confidence"][i] for i in full])


def test_reliability_draws_the_best_epoch_and_the_test_split() -> None:
    epochs = [{"kind": "epoch", "epoch": e, "step": 10 * e, "val_loss": loss,
               "val_reliability": _bins(e)} for e, loss in ((1, 0.9), (2, 0.5), (3, 0.7))]
    test = {"kind": "test", "test_reliability": _bins(9, n=1000)}
    fig = reliability_figure(epochs, test)
    best = epochs[1]["val_reliability"]
    assert len(_bars(fig)) == sum(1 for n in best["count"] if n)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "validation, epoch 2 (n=400)", "test, the kept weights (n=1,000)"]
    test_bars = [p for p in fig.axes[1].patches if p.get_width() < 1]
    assert len(test_bars) == sum(1 for n in test["test_reliability"]["count"] if n)


def test_reliability_without_bins_draws_only_the_diagonal() -> None:
    fig = reliability_figure([{"kind": "epoch", "epoch": 1, "val_reliability": {"count": []}}])
    assert _bars(fig) == [] and len(fig.axes[0].lines) == 1


# ---------------------------------------------------------------- findings on their curves
def _run(num_epochs: int = 4, per_epoch: int = 5) -> tuple[list[dict], list[dict]]:
    steps, epochs = [], []
    for epoch in range(1, num_epochs + 1):
        for step in range((epoch - 1) * per_epoch + 1, epoch * per_epoch + 1):
            steps.append({"kind": "step", "step": step, "epoch": epoch, "loss": 2.0 / step,
                          "grad_norm": 1.0 + step % 3, "lr": 0.01})
        epochs.append({"kind": "epoch", "epoch": epoch, "step": epoch * per_epoch,
                       "train_loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                       "train_accuracy": 0.5 + 0.1 * epoch, "val_accuracy": 0.45 + 0.1 * epoch,
                       "val_mean_confidence": 0.6 + 0.08 * epoch})
    return steps, epochs


def _marked(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


CODES = [*list_rules(), "healthy"]


def test_every_diagnosis_code_has_a_curve() -> None:
    assert set(CODES) <= set(FINDING_CURVES)


@pytest.mark.parametrize("code", CODES)
def test_each_code_is_drawn_on_the_curve_it_fired_on(code: str) -> None:
    steps, epochs = _run()
    finding = Finding("train", Severity.WARNING, code, "m", {"x": 1}, "f (train stage)", step=10)
    figures = {
        "loss": loss_figure(steps, epochs, [finding]),
        "grad_norm": grad_norm_figure(steps, [finding]),
        "accuracy": metric_figure(epochs, ACCURACY_KEYS, "Accuracy", [finding]),
    }
    curve_figure = {"loss": "loss", "val_loss": "loss", "grad_norm": "grad_norm",
                    "val_accuracy": "accuracy", "val_mean_confidence": "accuracy"}
    expected = {curve_figure[curve] for curve in FINDING_CURVES[code]}
    drawn = {name for name, fig in figures.items() if code in _marked(fig)}
    assert drawn == expected
    for name in drawn:  # at its step (epoch 2 ends at step 10), with a ring on the curve
        x = 2 if name == "accuracy" else 10
        ax = figures[name].axes[0]
        assert any(list(line.get_xdata()) == [x, x] for line in ax.lines)
        assert any(line.get_marker() == "o" and list(line.get_xdata()) == [x]
                   and line.get_markerfacecolor() == "none" for line in ax.lines)


def test_a_dip_to_zero_is_ringed_at_the_bottom_of_the_log_axis() -> None:
    steps, _ = _run()
    steps[9]["grad_norm"] = 0.0
    finding = Finding("train", Severity.WARNING, "gradient_dip", "m", {}, "f", step=10)
    ax = grad_norm_figure(steps, [finding]).axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "grad norm (log scale)"  # P13
    (ring,) = [line for line in ax.lines if line.get_markerfacecolor() == "none"]
    assert ring.get_ydata()[0] == pytest.approx(0.02)  # axes fraction: 0 has no log position


def test_an_unknown_code_is_drawn_on_both_step_curves() -> None:
    steps, epochs = _run()
    finding = Finding("check", Severity.WARNING, "new_rule", "m", {}, "", step=7)
    assert "new_rule" in _marked(loss_figure(steps, epochs, [finding]))
    assert "new_rule" in _marked(grad_norm_figure(steps, [finding]))
    assert "new_rule" not in _marked(metric_figure(epochs, ACCURACY_KEYS, "A", [finding]))


def test_an_explosion_is_marked_at_its_peak_and_ringed_at_both_ends() -> None:
    """The finding's step is the minimum the loss rose from; the event line and its label go
    to the peak (evidence peak_step), not the minimum (audit s7 #8: step 51, peak at 423)."""
    steps, epochs = _run()
    steps[14]["loss"] = 40.0  # step 15
    finding = Finding("train", Severity.ERROR, "loss_exploding", "m",
                      {"min_step": 5, "peak_step": 15}, "f", step=5)
    ax = loss_figure(steps, epochs, [finding]).axes[0]
    verticals = [line.get_xdata()[0] for line in ax.lines
                 if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]
    assert verticals == [15]
    (label,) = [t for t in ax.texts if t.get_text() == "loss_exploding"]
    assert label.xy[0] == 15
    rings = [line.get_xydata()[0].tolist() for line in ax.lines
             if line.get_markerfacecolor() == "none"]
    assert rings == [[5, 0.4], [15, 40.0]]  # the per-step loss 2/step at the onset


@pytest.mark.parametrize("code", ["healthy", "loss_scaler_skips", "new_rule"])
def test_info_findings_are_not_drawn_as_events(code: str) -> None:
    """An info reports no event: "healthy" at the best epoch drew a dashed line that read as
    one (audit s7 #21), and the loss scaler's first skips already have their grey ticks."""
    steps, epochs = _run()
    finding = Finding("train", Severity.INFO, code, "m", {}, "", step=10)
    for fig in (loss_figure(steps, epochs, [finding]), grad_norm_figure(steps, [finding])):
        ax = fig.axes[0]
        assert code not in _marked(fig)
        assert not [line for line in ax.lines if list(line.get_xdata()) == [10, 10]]
        assert not [line for line in ax.lines if line.get_markerfacecolor() == "none"]


def test_skipped_float16_steps_are_grey_ticks_not_errors() -> None:
    steps = [{"kind": "step", "step": i, "loss": 1.0 / i, "grad_norm": 1.0} for i in range(1, 40)]
    steps[2] = {**steps[2], "grad_norm": float("inf"), "skipped": True}
    steps[30] = {**steps[30], "grad_norm": float("nan")}  # a real one
    fig = grad_norm_figure(steps)
    marks = {line.get_label(): list(line.get_xdata()) for line in fig.axes[0].get_lines()}
    assert marks["step skipped by the float16 loss scaler"] == [3]
    assert marks["non-finite grad_norm"] == [31]


# ---------------------------------------------------------------- the loss figure's axes
def test_losses_spanning_more_than_two_decades_get_a_log_axis() -> None:
    """One validation loss of 197,000 (audit s7 #8, lr=5) or a 10x train/validation gap
    near zero (the overfit run: 0.009 vs 0.09 after 2.3) flatten a linear axis."""
    steps, epochs = _run()
    epochs[1]["val_loss"] = 197_000.0
    ax = loss_figure(steps, epochs).axes[0]
    assert ax.get_yscale() == "log" and "log" in ax.get_ylabel()
    steps, epochs = _run()
    steps[0]["loss"] = 2.3
    for row, (train, val) in zip(epochs[1:], ((0.05, 0.2), (0.009, 0.09)), strict=False):
        row.update(train_loss=train, val_loss=val)
    assert loss_figure(steps, epochs).axes[0].get_yscale() == "log"
    epochs[-1]["val_loss"] = 0.0  # wine: cross-entropy underflows to 0 on 14 rows
    ax = loss_figure(steps, epochs).axes[0]
    assert "1 loss value(s) of 0 lie below the log axis" in [t.get_text() for t in ax.texts]
    assert ax.yaxis.get_major_formatter()(100_000.0) == "100,000"


@pytest.mark.parametrize("change", ["narrow", "negative", "empty"])
def test_losses_within_two_decades_or_below_zero_keep_a_linear_axis(change: str) -> None:
    steps, epochs = _run()  # 2.0 down to 0.1: a span of 20
    if change == "negative":  # e.g. a Gaussian negative log-likelihood: no log position
        steps[-1]["loss"], epochs[-1]["val_loss"] = -3.0, 500.0
    if change == "empty":
        steps, epochs = [], [{"kind": "epoch", "epoch": 1, "step": 5, "val_loss": None}]
    ax = loss_figure(steps, epochs).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "loss"


def _line(ax, prefix: str):
    (line,) = [line for line in ax.lines if line.get_label().startswith(prefix)]
    return line


def test_the_epoch_mean_training_loss_is_drawn_at_mid_epoch() -> None:
    """The mean over steps 1..5 belongs at step 3, not at step 5 beside the validation loss
    measured there (audit s7 #8: it looked half an epoch behind)."""
    steps, epochs = _run()  # 5 steps per epoch, epochs end at steps 5, 10, 15, 20
    ax = loss_figure(steps, epochs).axes[0]
    train = _line(ax, "train loss (epoch mean")
    assert list(train.get_xdata()) == [3, 8, 13, 18]
    assert list(train.get_ydata()) == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    assert list(_line(ax, "validation loss").get_xdata()) == [5, 10, 15, 20]


@pytest.mark.parametrize("per_epoch,train_loss,drawn", [
    (1, True, False),  # wine: each per-step point is its epoch's mean, under the epoch line
    (2, True, True),
    (1, False, True),  # no epoch means: the per-step line is the only training curve
])
def test_the_per_step_line_is_left_out_when_it_adds_nothing(per_epoch, train_loss, drawn):
    steps, epochs = _run(per_epoch=per_epoch)
    if not train_loss:
        epochs = [{k: v for k, v in row.items() if k != "train_loss"} for row in epochs]
    labels = [line.get_label() for line in loss_figure(steps, epochs).axes[0].lines]
    assert ("train loss per step" in labels) is drawn


@pytest.mark.parametrize("task,num_classes,expected", [
    ("classification", 10, "chance: ln 10 = 2.3"),
    ("classification", None, None),  # C unknown: no level to draw
    ("regression", 10, None),  # not a cross-entropy
])
def test_classification_loss_shows_the_chance_level(tmp_path, task, num_classes, expected):
    """A run that learned nothing sits on ln C; the y-axis zoomed to 2.25-2.5 made its
    gentle slope look like learning (audit s7 #14, lr=1e-6)."""
    steps = [{"kind": "step", "step": s, "epoch": 1 + (s - 1) // 5, "loss": 2.5 - 0.01 * s}
             for s in range(1, 21)]
    _, epochs = _run()
    for row in epochs:
        row.update(train_loss=2.45 - 0.05 * row["epoch"], val_loss=2.4 - 0.04 * row["epoch"])
    run = RunData(tmp_path, {"data": {"task": task, "num_classes": num_classes}}, steps, epochs)
    ax = figure_builders(run)["loss"][1]().axes[0]
    chance = [line for line in ax.lines if line.get_label().startswith("chance")]
    if expected is None:
        assert chance == []
        return
    (line,) = chance
    assert line.get_label() == expected and line.get_linestyle() == ":"
    assert list(line.get_ydata()) == pytest.approx([math.log(10)] * 2)
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] < math.log(10) < ax.get_ylim()[1]


@pytest.mark.parametrize("train_counts,weights,expected", [
    ([3528, 72], "none", ["uniform guess: ln 2 = 0.693", "prior only: 0.098"]),  # audit s9
    ([3528, 72], "balanced", ["chance: ln 2 = 0.693"]),  # weighted loss: its constant best is ln C
    ([2100, 1500], "none", ["chance: ln 2 = 0.693"]),  # 60/40: 0.673, on top of ln 2
])
def test_imbalanced_classes_also_show_the_loss_of_answering_the_class_shares(
        tmp_path, train_counts, weights, expected):
    """2% positives: a model that learned only the prior scores 0.098, not ln 2 = 0.693; the
    run's 0.088 -> 0.061 sat 8-11x below the only line drawn, which looked like a big win."""
    steps, epochs = _run()
    for row in epochs:
        row.update(train_loss=0.1 - 0.01 * row["epoch"], val_loss=0.088 - 0.007 * row["epoch"])
    meta = {"config": {"train": {"class_weights": weights}},
            "data": {"task": "classification", "num_classes": 2,
                     "class_counts": {"train": train_counts, "val": [392, 8]}}}
    ax = figure_builders(RunData(tmp_path, meta, steps, epochs))["loss"][1]().axes[0]
    levels = [line for line in ax.lines if line.get_label().startswith(("chance", "uniform",
                                                                        "prior"))]
    assert [line.get_label() for line in levels] == expected
    assert ax.get_ylim()[0] < min(line.get_ydata()[0] for line in levels)


# ---------------------------------------------------------------- the confidence histogram
def _confident_row(epoch: int, confidence: float, accuracy: float, rows: int = 400) -> dict:
    """93% of the rows in the last bin, one row in each of four low bins (the audit's mnist1d)."""
    hist = [0] * 20
    hist[8] = hist[10] = hist[12] = hist[14] = 1
    hist[18] = rows - 4 - round(0.93 * rows)
    hist[19] = round(0.93 * rows)
    return {"kind": "epoch", "epoch": epoch, "step": 10 * epoch, "val_loss": 0.1,
            "val_confidence_hist": hist, "val_mean_confidence": confidence,
            "val_accuracy": accuracy}


def test_the_confidence_histogram_has_a_log_axis_down_to_one_row() -> None:
    """93% of the mass in the last bin on a linear axis made every other bin invisible, and
    the axis ran to 1.2 (audit s7 #10)."""
    ax = confidence_figure([_confident_row(1, 0.983, 0.983)]).axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim() == pytest.approx((0.5 / 400, 1.0))
    heights = sorted(b.get_height() for b in _bars(ax.figure) if b.get_height() > 0)
    assert heights[0] == pytest.approx(1 / 400) and heights[0] > ax.get_ylim()[0]
    assert ax.yaxis.get_major_formatter()(0.01) == "1%"


@pytest.mark.parametrize("confidence,accuracy,rows,verdict", [
    (0.984, 0.983, 400, None),  # the audit's 0.001: one row is 0.0025 of accuracy
    (0.977, 0.983, 400, None),
    (0.90, 0.80, 400, "over-confident by 0.100"),
    (0.70, 0.80, 400, "under-confident by 0.100"),
    (0.90, 0.80, 20, None),  # 0.1 on 20 rows: 2 standard errors are 0.18
])
def test_the_confidence_note_gives_no_verdict_within_noise(confidence, accuracy, rows, verdict):
    """The gap counts as the diagnosis rules count it: beyond GAP_STANDARD_ERRORS standard
    errors of the accuracy on the histogram's rows."""
    ax = confidence_figure([_confident_row(1, confidence, accuracy, rows)]).axes[0]
    (note,) = [t.get_text() for t in ax.texts]
    if verdict is None:
        assert "within noise" in note and "confident by" not in note
    else:
        assert verdict in note and "within noise" not in note


# ---------------------------------------------------------------- the accuracy figure
def test_coinciding_metrics_stay_apart_and_the_axis_is_labelled() -> None:
    """On balanced data balanced accuracy lies exactly on accuracy: with one style it hid
    that line, and the y-axis had no label (audit s7 #18)."""
    _, epochs = _run()
    for row in epochs:
        row["val_balanced_accuracy"] = row["val_accuracy"]
    keys = [*ACCURACY_KEYS, "val_balanced_accuracy"]
    ax = metric_figure(epochs, keys, "Accuracy").axes[0]
    styles = {line.get_label(): (line.get_linestyle(), line.get_marker(),
                                 line.get_markerfacecolor() == "none") for line in ax.lines}
    assert set(styles) == {key.replace("_", " ") for key in keys}
    assert len(set(styles.values())) == len(keys)  # no two lines look alike
    balanced, plain = ax.lines[3], ax.lines[1]
    assert balanced.get_zorder() > plain.get_zorder()  # drawn over it, hollow and dotted
    assert "accuracy" in ax.get_ylabel()
    regression = [{"epoch": e, "val_mae": 1.0 / e, "val_rmse": 1.5 / e} for e in (1, 2, 3)]
    assert "error" in metric_figure(regression, ["val_mae", "val_rmse"], "E").axes[0].get_ylabel()


@pytest.mark.parametrize("meta,drawn", [
    ({"data": {"task": "regression"}}, True),  # trainwise run: the standardised target's MSE
    ({"data": {"task": "regression"}, "source": "trainwise.Monitor"}, False),  # the user's loss
    ({"data": {"task": "classification", "num_classes": 3}}, False),
])
def test_a_regression_run_draws_the_loss_of_predicting_the_training_mean(tmp_path, meta, drawn):
    """The regression's chance line: 1.0, the MSE of predicting the training mean on a target
    standardised by the training rows' mean and std (audit s10 A17: no line, and a caption
    about ln C)."""
    steps, epochs = _run()
    ax = figure_builders(RunData(tmp_path, meta, steps, epochs))["loss"][1]().axes[0]
    lines = [line for line in ax.lines if line.get_label().startswith("predicting the training")]
    assert bool(lines) is drawn
    if drawn:
        assert list(lines[0].get_ydata()) == [1.0, 1.0]
        assert ax.get_ylim()[0] < 1.0 < ax.get_ylim()[1]
