"""Report figures: the confidence histogram on validation (METHOD.md section 3, the third
signal), the last epoch's beside the best one's, with mean confidence and accuracy marked.

Separate from curves.py because it is no curve: a histogram of shares on a log axis, with a
note that reads the gap between confidence and accuracy against its noise (the gap rule's
standard error, diagnose_confidence.gap_noise), so the figure never calls noise a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from trainwise.reporting.curves import Row, best_epoch
from trainwise.reporting.figures import TRAIN_COLOR, VAL_COLOR, legend, styled, titled_axes
from trainwise.train.diagnose_confidence import GAP_STANDARD_ERRORS, gap_noise

BIN_EDGES = np.linspace(0.0, 1.0, 21)  # val_confidence_hist: 20 bins of width 0.05


@styled
def confidence_figure(epochs: Sequence[Row], ax: Axes | None = None) -> Figure:
    """Histogram of the top softmax probability on validation: last epoch (and best, if other).

    Mass piled at 0.9+ with accuracy well below means over-confidence; mass near 0.5 (or
    1/num_classes) means the model is lost. Shares, not counts, so two epochs compare.
    """
    fig, ax = titled_axes("Prediction confidence on validation (top softmax probability)", ax)
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
