"""Report figures, part 2: the training curves (METHOD.md section 3, the three signals).

Inputs are history rows as read from history.jsonl: step rows, epoch rows, findings.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from trainwise.findings import Finding
from trainwise.reporting.figures import (
    PALETTE,
    SEVERITY_COLORS,
    TRAIN_COLOR,
    VAL_COLOR,
    finite,
    legend,
    mark_findings,
    new_axes,
    styled,
)
from trainwise.train.diagnose_val import GAP_STANDARD_ERRORS, gap_noise

Row = dict[str, Any]
BIN_EDGES = np.linspace(0.0, 1.0, 21)  # val_confidence_hist: 20 bins of width 0.05
LOG_SPAN = 100.0  # losses spanning more than 2 decades get a log axis


def column(rows: Sequence[Row], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) for the rows that carry both keys; non-finite y kept as NaN (a gap, a marker)."""
    picked = [r for r in rows if r.get(x_key) is not None and y_key in r]
    return finite([r[x_key] for r in picked]), finite([r[y_key] for r in picked])


def best_epoch(epochs: Sequence[Row]) -> Row | None:
    """The epoch row with the lowest finite validation loss (the one the best weights come from)."""
    scored = [r for r in epochs if np.isfinite(finite([r.get("val_loss")])[0])]
    return min(scored, key=lambda r: r["val_loss"]) if scored else None


def _integer_x(ax: Axes, label: str) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "step 2.5"
    ax.set_xlabel(label)


def _plain_log_labels(ax: Axes, y: np.ndarray) -> None:
    """Label a log axis 0.5, 1, 2 rather than 5x10^-1.

    Within less than ~a decade the log locator leaves one or no labelled tick, so there
    evenly spaced ticks are placed instead (the scale itself stays logarithmic).
    """
    positive = y[np.isfinite(y) & (y > 0)]
    if positive.max() / positive.min() < 20:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plain_number(value: float, _: object = None) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"  # 100,000 rather than 1e+05


def _mark_nonfinite(ax: Axes, rows: Sequence[Row], key: str) -> None:
    """A NaN/inf value cannot be drawn on the curve: mark its step at the top of the axes (a
    float16 step the loss scaler skipped apart, as a grey tick: it is not an error)."""
    bad = [r for r in rows if key in r and r.get("step") is not None
           and not np.isfinite(finite([r[key]])[0])]
    for rows_, marker, color, label in (
            ([r for r in bad if not r.get("skipped")], "x", SEVERITY_COLORS["error"],
             f"non-finite {key}"),
            ([r for r in bad if r.get("skipped")], "|", "0.55",
             "step skipped by the float16 loss scaler")):
        if rows_:
            ax.plot([r["step"] for r in rows_], [0.98] * len(rows_), marker, color=color,
                    transform=ax.get_xaxis_transform(), label=label)


@styled
def loss_figure(steps: Sequence[Row], epochs: Sequence[Row],
                findings: Sequence[Finding] = (), num_classes: int | None = None) -> Figure:
    """Train vs validation loss per epoch over faint per-step loss; x is the training step.

    `num_classes` (classification) draws the cross-entropy of the uniform guess, ln C."""
    fig, ax = new_axes("Loss: training vs validation")
    x, y = column(steps, "step", "loss")
    drawn = [np.array([])]  # the values the y-axis must show
    if len(x) and not _one_step_per_epoch(steps, epochs):
        ax.plot(x, y, color=TRAIN_COLOR, alpha=0.35, linewidth=0.8, label="train loss per step")
        drawn.append(y)
    curves = {"train_loss": _mid_epoch(epochs, "train_loss"),
              "val_loss": column(epochs, "step", "val_loss")}
    for key, color, label in (("train_loss", TRAIN_COLOR, "train loss (epoch mean, mid-epoch)"),
                              ("val_loss", VAL_COLOR, "validation loss (epoch end)")):
        ex, ey = curves[key]
        if len(ex):
            ax.plot(ex, ey, color=color, linewidth=2, marker="o", markersize=3, label=label)
    best = best_epoch(epochs)
    if best is not None and best.get("step") is not None:
        ax.plot([best["step"]], [best["val_loss"]], marker="*", markersize=12, color=VAL_COLOR,
                markeredgecolor="#222222", linestyle="none", label=f"best (epoch {best['epoch']})")
    drawn.append(_mark_chance(ax, num_classes))
    _mark_nonfinite(ax, steps, "loss")
    _loss_scale(ax, [*drawn, *(curve[1] for curve in curves.values())])
    # rings go on the per-step losses even when that line is hidden: one step per epoch,
    # they are the epoch means at the same steps
    per_step = (x, y) if len(x) else curves["train_loss"]
    mark_findings(ax, findings, {"loss": per_step, "val_loss": curves["val_loss"]})
    _integer_x(ax, "step")
    # "best": the chance line runs along the top, where a loss curve starts; framed, so a
    # curve that still crosses it does not strike through the labels
    legend(ax, loc="best", frameon=True, facecolor="white", edgecolor="none", framealpha=0.85)
    return fig


def _mark_chance(ax: Axes, num_classes: int | None) -> np.ndarray:
    """A dotted line at ln C, the cross-entropy of the uniform guess (the check stage reads
    the loss at init against it): a run that learned nothing stays on it, which a y-axis
    zoomed to 2.25-2.5 hid (audit s7 #14, lr=1e-6). Returns the level for the axis scale."""
    if not isinstance(num_classes, int) or num_classes < 2:  # meta.json is hand-editable
        return np.array([])
    level = math.log(num_classes)
    ax.axhline(level, color="#555555", linestyle=":", linewidth=1.2,
               label=f"chance: ln {num_classes} = {level:.3g}")
    return np.array([level])


def _mid_epoch(epochs: Sequence[Row], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a per-epoch mean such as train_loss, x the middle of the epoch's steps.

    The mean of steps s+1..e belongs at (s+1+e)/2: drawn at the epoch's last step e, beside
    the validation loss measured there, it looked half an epoch behind (audit s7 #8: epoch 1,
    train 1.68 and validation 1.10 both at step 29)."""
    picked, previous_end = [], 0
    for row in epochs:
        end = row.get("step")
        if end is None:
            continue
        if key in row:
            picked.append(((previous_end + 1 + end) / 2, row[key]))
        previous_end = end
    return finite([p[0] for p in picked]), finite([p[1] for p in picked])


def _one_step_per_epoch(steps: Sequence[Row], epochs: Sequence[Row]) -> bool:
    """No epoch logged more than one step loss, and the epochs carry their mean: each
    per-step point is then its epoch's mean, drawn under the epoch line (wine: 1 step per
    epoch), a legend entry for a line nobody can see."""
    if not any(r.get("train_loss") is not None for r in epochs):
        return False
    per_epoch = Counter(r.get("epoch") for r in steps if r.get("loss") is not None)
    return None not in per_epoch and max(per_epoch.values(), default=0) <= 1


def _loss_scale(ax: Axes, values: Sequence[np.ndarray]) -> None:
    """A log y-axis when the losses span more than LOG_SPAN: on a linear one a validation
    loss of 197,000 (lr=5) flattens the rest onto zero, and a 10x train/validation gap near
    zero (an overfit run: 0.009 vs 0.09) looks like none. Zeros (a fully confident, correct
    batch) fall below a log axis; a loss that goes negative keeps the linear one."""
    joined = np.concatenate([np.asarray(v, dtype=float) for v in values] or [np.array([])])
    joined = joined[np.isfinite(joined)]
    positive = joined[joined > 0]
    if len(positive) and joined.min() >= 0 and positive.max() > LOG_SPAN * positive.min():
        ax.set_yscale("log")
        _plain_log_labels(ax, positive)
        ax.set_ylabel("loss (log scale)")
        zeros = int((joined == 0).sum())
        if zeros:  # else a curve, and the best epoch's star, vanish without a word
            ax.text(0.01, 0.02, f"{zeros} loss value(s) of 0 lie below the log axis",
                    transform=ax.transAxes, fontsize=7, color="#555555")
    else:
        ax.set_ylabel("loss")


@styled
def grad_norm_figure(steps: Sequence[Row], findings: Sequence[Finding] = ()) -> Figure:
    """Global gradient norm per logged step, log y: spikes and long near-zero stretches show."""
    fig, ax = new_axes("Gradient norm (global L2 norm per logged step)")
    x, y = column(steps, "step", "grad_norm")
    ax.plot(x, y, color=PALETTE[4], linewidth=1, label="grad norm")
    if (y[np.isfinite(y)] > 0).any():  # log scale needs a positive value to anchor on
        ax.set_yscale("log")
        _plain_log_labels(ax, y)
    _mark_nonfinite(ax, steps, "grad_norm")
    mark_findings(ax, findings, {"grad_norm": (x, y)})
    _integer_x(ax, "step")
    ax.set_ylabel("grad norm")
    legend(ax, loc="upper right")
    return fig


@styled
def learning_rate_figure(steps: Sequence[Row]) -> Figure:
    fig, ax = new_axes("Learning rate per step")
    x, y = column(steps, "step", "lr")
    ax.plot(x, y, color=PALETTE[2], linewidth=1.5)
    # From zero, so warmup and decay read as fractions of the peak; "%.2g" rather than an
    # offset label ("1e-3"), which collides with the title.
    peak = float(np.nanmax(y)) if np.isfinite(y).any() else 0.0
    if peak > 0:
        ax.set_ylim(0, peak * 1.1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
    _integer_x(ax, "step")
    ax.set_ylabel("learning rate")
    return fig


@styled
def metric_figure(epochs: Sequence[Row], keys: Sequence[str], title: str,
                  findings: Sequence[Finding] = ()) -> Figure:
    """One metric family per epoch: accuracy and mean confidence (classification) or MAE/RMSE
    (regression); findings that fired on these curves are marked at their epoch."""
    fig, ax = new_axes(title)
    # Train keeps the train colour; validation metrics take the validation colour, then others.
    colors = iter((VAL_COLOR, PALETTE[4], PALETTE[5], PALETTE[6]))
    markers = iter(MARKERS)
    drawn = {}
    for key in keys:
        x, y = column(epochs, "epoch", key)
        if len(x):
            color = TRAIN_COLOR if key.startswith("train") else next(colors, "#555555")
            ax.plot(x, y, color=color, label=key.replace("_", " "),
                    **_metric_style(key, next(markers, "o")))
            drawn[key] = (x, y)
    mark_findings(ax, at_epochs(findings, epochs), drawn)
    _integer_x(ax, "epoch")
    ax.set_ylabel(_metric_label(list(drawn)))
    legend(ax, loc="best")
    return fig


MARKERS = ("o", "s", "^", "D", "v")  # one per line: a curve drawn over another still shows


def _metric_style(key: str, marker: str) -> dict[str, Any]:
    """Line style per metric, so two metrics that coincide both stay visible: on balanced
    data balanced accuracy lies exactly on accuracy and hid it (audit s7 #18); it is drawn
    thinner and dotted with hollow markers, over the solid line."""
    if "balanced" in key:
        return {"linestyle": ":", "linewidth": 1.5, "marker": marker, "markersize": 5,
                "markerfacecolor": "none", "zorder": 3}
    return {"linestyle": "--" if "confidence" in key else "-", "linewidth": 2,
            "marker": marker, "markersize": 3}


def _metric_label(keys: Sequence[str]) -> str:
    if any("accuracy" in k or "confidence" in k for k in keys):
        return "accuracy / mean confidence (0–1)"
    if any(k.endswith(("_mae", "_rmse")) for k in keys):
        return "error (target units)"
    return ", ".join(k.replace("_", " ") for k in keys)


def at_epochs(findings: Sequence[Finding], epochs: Sequence[Row]) -> list[Finding]:
    """The findings with their step turned into the epoch that step ends (or falls in), for
    figures whose x axis is the epoch."""
    ends = sorted((r["step"], r["epoch"]) for r in epochs
                  if r.get("step") is not None and r.get("epoch") is not None)
    moved = []
    for finding in findings:
        epoch = next((e for step, e in ends if finding.step is not None and step >= finding.step),
                     None)
        if epoch is not None:
            moved.append(dataclasses.replace(finding, step=epoch))
    return moved


@styled
def confidence_figure(epochs: Sequence[Row]) -> Figure:
    """Histogram of the top softmax probability on validation: last epoch (and best, if other).

    Mass piled at 0.9+ with accuracy well below means over-confidence; mass near 0.5 (or
    1/num_classes) means the model is lost. Shares, not counts, so two epochs compare.
    """
    fig, ax = new_axes("Prediction confidence on validation (top softmax probability)")
    with_hist = [r for r in epochs if r.get("val_confidence_hist")]
    last = with_hist[-1]
    best = best_epoch(with_hist)
    shown = [(last, "last", VAL_COLOR)]
    if best is not None and best is not last:
        shown.append((best, "best", TRAIN_COLOR))
    notes, num_rows = [], 0.0
    for i, (row, which, color) in enumerate(shown):
        label = f"epoch {row['epoch']} ({which})"
        num_rows = max(num_rows, _draw_shares(ax, row["val_confidence_hist"], label, color,
                                              i == 0))
        notes.append(_calibration_note(ax, row, label, color))
    if any(notes):  # on the side the mass is not, so the box never covers a tall bar
        right = _mass_mean(last["val_confidence_hist"]) < 0.5
        ax.text(0.98 if right else 0.02, 0.97, "\n".join(n for n in notes if n),
                transform=ax.transAxes, va="top", ha="right" if right else "left",
                ma="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#ccc"})
    _log_shares(ax, num_rows)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top softmax probability")
    legend(ax, loc="best")  # 20 bars: cheap to search, and mass may sit anywhere
    return fig


def _log_shares(ax: Axes, num_rows: float) -> None:
    """A log y-axis from half of one row's share to 1: with 93% of the rows in the last bin
    (a confident model), a linear axis left every other bin invisible (audit s7 #10)."""
    ax.set_yscale("log")
    ax.set_ylim(0.5 / max(num_rows, 1.0), 1.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:.3g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("share of validation set (log)")


def _mass_mean(counts: Sequence[int]) -> float:
    values = np.asarray(counts, dtype=float)
    centres = (BIN_EDGES[:-1] + BIN_EDGES[1:]) / 2
    return float(values @ centres / max(values.sum(), 1))


def _draw_shares(ax: Axes, counts: Sequence[int], label: str, color: str, filled: bool) -> float:
    """Draw one epoch's histogram as shares of the set (filled bars or an outline); returns
    the number of rows it counts."""
    values = np.asarray(counts, dtype=float)
    share = values / max(values.sum(), 1)
    if filled:
        ax.bar(BIN_EDGES[:-1], share, width=0.05, align="edge", color=color, alpha=0.7,
               label=label)
    else:
        ax.stairs(share, BIN_EDGES, color=color, linewidth=1.8, label=label)
    return float(values.sum())


def _calibration_note(ax: Axes, row: Row, label: str, color: str) -> str:
    """Mark mean confidence (dashed) and accuracy (dotted); return the gap as two lines, with
    no verdict when it is within the noise the diagnosis rules allow (over-confident by
    0.001 on 400 rows, where one row moves the accuracy by 0.0025: audit s7 #10)."""
    confidence, accuracy = row.get("val_mean_confidence"), row.get("val_accuracy")
    if confidence is not None:
        ax.axvline(confidence, color=color, linestyle="--", linewidth=1.2)
    if accuracy is not None:
        ax.axvline(accuracy, color=color, linestyle=":", linewidth=1.2)
    if confidence is None or accuracy is None:
        return ""
    gap, noise = confidence - accuracy, gap_noise(row, accuracy)
    head = f"{label}: mean confidence {confidence:.3f} (--), accuracy {accuracy:.3f} (··)\n"
    if abs(gap) <= noise:
        return (f"{head}    gap {gap:+.3f}: within noise ({GAP_STANDARD_ERRORS:g} standard "
                f"errors: ±{noise:.3f})")
    verdict = "over-confident" if gap > 0 else "under-confident"
    return f"{head}    {verdict} by {abs(gap):.3f} (noise ±{noise:.3f})"
