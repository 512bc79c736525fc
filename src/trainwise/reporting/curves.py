"""Report figures, part 2: the training curves along the step (METHOD.md section 3: training
vs validation loss, the gradient norm; and the learning rate), and the row helpers the other
history figures share (`column`, `integer_x`, and `best_epoch`, the diagnosis's own). The
per-epoch metric curves are in metric_curves.py, the third signal, the confidence histogram,
in confidence.py.

Inputs are history rows as read from history.jsonl: step rows, epoch rows, findings.
"""

from __future__ import annotations

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
    styled,
    titled_axes,
)
from trainwise.train.diagnose_common import best_epoch  # the report's figures share it
from trainwise.train.prior_loss import prior_loss

Row = dict[str, Any]
LOG_SPAN = 100.0  # losses spanning more than 2 decades get a log axis


def column(rows: Sequence[Row], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) for the rows that carry both keys; non-finite y kept as NaN (a gap, a marker)."""
    picked = [r for r in rows if r.get(x_key) is not None and y_key in r]
    return finite([r[x_key] for r in picked]), finite([r[y_key] for r in picked])


def integer_x(ax: Axes, label: str) -> None:
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
                findings: Sequence[Finding] = (), num_classes: int | None = None,
                train_class_counts: Sequence[int] | None = None,
                standardised_target: bool = False, ax: Axes | None = None) -> Figure:
    """Train vs validation loss per epoch over faint per-step loss; x is the training step.

    `num_classes` (classification) draws the cross-entropy of the uniform guess, ln C;
    `train_class_counts`, when the shares are imbalanced, the loss of answering them;
    `standardised_target` (a `trainwise run` regression: MSE of the standardised target)
    the loss of predicting the training mean, 1.0. On `ax` when given, else a new figure."""
    fig, ax = titled_axes("Loss: training vs validation", ax)
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
    drawn.append(_mark_chance(ax, num_classes, train_class_counts))
    if standardised_target:
        drawn.append(_mark_training_mean(ax))
    _mark_nonfinite(ax, steps, "loss")
    _loss_scale(ax, [*drawn, *(curve[1] for curve in curves.values())])
    # rings go on the per-step losses even when that line is hidden: one step per epoch,
    # they are the epoch means at the same steps
    per_step = (x, y) if len(x) else curves["train_loss"]
    mark_findings(ax, findings, {"loss": per_step, "val_loss": curves["val_loss"]})
    integer_x(ax, "step")
    # "best": the chance line runs along the top, where a loss curve starts; framed, so a
    # curve that still crosses it does not strike through the labels
    legend(ax, loc="best", frameon=True, facecolor="white", edgecolor="none", framealpha=0.85)
    return fig


def _mark_training_mean(ax: Axes) -> np.ndarray:
    """A dotted line at 1.0: on a target standardised by the training split's mean and std,
    the MSE of predicting that mean for every row (exactly 1 on the training rows, about 1 on
    validation), where a regression that learned nothing stays: the regression's chance."""
    ax.axhline(1.0, color="#555555", linestyle=":", linewidth=1.2,
               label="predicting the training mean: 1")
    return np.array([1.0])


PRIOR_LINE_BELOW = 0.9  # the class shares' entropy is drawn under 90% of ln C: closer, the
# two lines overlap (60/40: 0.673 against 0.693) and a balanced task needs only ln C


def _mark_chance(ax: Axes, num_classes: int | None,
                 train_class_counts: Sequence[int] | None = None) -> np.ndarray:
    """A dotted line at ln C, the cross-entropy of the uniform guess (the check stage reads
    the loss at init against it): a run that learned nothing stays on it, which a y-axis
    zoomed to 2.25-2.5 hid (audit s7 #14, lr=1e-6). On imbalanced classes a model that learned
    only the class shares scores their entropy, -sum p ln p, far below ln C (2% positives:
    0.098 against 0.693; audit s9 I5), so that line is drawn too, as the level to beat. Returns
    the levels for the axis scale."""
    if not isinstance(num_classes, int) or num_classes < 2:  # meta.json is hand-editable
        return np.array([])
    level = math.log(num_classes)
    prior = prior_line(num_classes, train_class_counts)
    shown = prior is not None
    ax.axhline(level, color="#555555", linestyle=":", linewidth=1.2,
               label=f"{'uniform guess' if shown else 'chance'}: ln {num_classes} = {level:.3g}")
    if not shown:
        return np.array([level])
    ax.axhline(prior, color="#555555", linestyle="-.", linewidth=1.2,
               label=f"prior only: {prior:.3g}")
    return np.array([level, prior])


def prior_line(num_classes: int | None, train_class_counts: Sequence[int] | None) -> float | None:
    """The 'prior only' level the loss figure draws (prior_loss of the training counts; the
    collapse finding quotes the same level), or None where it draws none (no counts, or
    shares close to even)."""
    if not isinstance(num_classes, int) or num_classes < 2:
        return None
    prior = prior_loss(train_class_counts)
    return prior if prior is not None and prior < PRIOR_LINE_BELOW * math.log(num_classes) \
        else None


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
def grad_norm_figure(steps: Sequence[Row], findings: Sequence[Finding] = (),
                     ax: Axes | None = None) -> Figure:
    """Global gradient norm per logged step, log y: spikes and long near-zero stretches show."""
    fig, ax = titled_axes("Gradient norm (global L2 norm per logged step)", ax)
    x, y = column(steps, "step", "grad_norm")
    ax.plot(x, y, color=PALETTE[4], linewidth=1, label="grad norm")
    if (y[np.isfinite(y)] > 0).any():  # log scale needs a positive value to anchor on
        ax.set_yscale("log")
        _plain_log_labels(ax, y)
    _mark_nonfinite(ax, steps, "grad_norm")
    mark_findings(ax, findings, {"grad_norm": (x, y)})
    integer_x(ax, "step")
    ax.set_ylabel("grad norm (log scale)" if ax.get_yscale() == "log" else "grad norm")
    legend(ax, loc="upper right")
    return fig


@styled
def learning_rate_figure(steps: Sequence[Row], ax: Axes | None = None) -> Figure:
    fig, ax = titled_axes("Learning rate per step", ax)
    x, y = column(steps, "step", "lr")
    ax.plot(x, y, color=PALETTE[2], linewidth=1.5)
    # From zero, so warmup and decay read as fractions of the peak; "%.2g" rather than an
    # offset label ("1e-3"), which collides with the title.
    peak = float(np.nanmax(y)) if np.isfinite(y).any() else 0.0
    if peak > 0:
        ax.set_ylim(0, peak * 1.1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
    integer_x(ax, "step")
    ax.set_ylabel("learning rate")
    return fig
