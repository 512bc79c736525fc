"""Report figure: the reliability diagram (accuracy against confidence, per confidence bin).

Reads the bins evaluate() stores (`val_reliability`, `test_reliability`: per bin the mean
confidence, the accuracy and the count, None for an empty bin; the ECE's own 15 uniform bins,
train/evaluate.py). A calibrated model sits on the diagonal; bars below it are over-confident.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from trainwise.reporting.curves import best_epoch
from trainwise.reporting.figures import TEST_COLOR, VAL_COLOR, legend, new_axes, styled

Row = dict[str, Any]
FIGSIZE = (7.0, 4.2)  # taller than the curves: both axes run 0-1 and the gaps are the point


class Bins(NamedTuple):
    """The non-empty bins of one split: left edges, width, confidence, accuracy, count."""

    left: np.ndarray
    width: float
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def non_empty_bins(reliability: Any) -> Bins | None:
    """The bins that hold samples; None when the field is missing or malformed."""
    if not isinstance(reliability, dict):
        return None
    try:
        count = np.asarray(reliability["count"], dtype=float)
        confidence = np.array([np.nan if v is None else v for v in reliability["confidence"]],
                              dtype=float)
        accuracy = np.array([np.nan if v is None else v for v in reliability["accuracy"]],
                            dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    if not len(count) or not (len(count) == len(confidence) == len(accuracy)):
        return None
    keep = (count > 0) & np.isfinite(confidence) & np.isfinite(accuracy)
    if not keep.any():
        return None
    width = 1.0 / len(count)
    return Bins(np.flatnonzero(keep) * width, width, confidence[keep], accuracy[keep],
                count[keep])


def reliability_row(epochs: Sequence[Row]) -> Row | None:
    """The epoch whose bins are drawn: the best one (its weights are the ones kept and tested),
    else the last one that has bins."""
    with_bins = [r for r in epochs if non_empty_bins(r.get("val_reliability")) is not None]
    if not with_bins:
        return None
    best = best_epoch(with_bins)
    return best if best is not None else with_bins[-1]


@styled
def reliability_figure(epochs: Sequence[Row], test: Row | None = None) -> Figure:
    """Validation accuracy per confidence bin as bars (count above each), the bins' mean
    confidence as dots on them, the test split's bins as a line, and the diagonal."""
    fig, ax = new_axes("Reliability diagram: accuracy against confidence", FIGSIZE)
    ax.plot([0, 1], [0, 1], color="#555555", linestyle="--", linewidth=1,
            label="perfectly calibrated")
    row = reliability_row(epochs)
    val = non_empty_bins(row.get("val_reliability")) if row is not None else None
    if val is not None and row is not None:
        _draw_validation(ax, val, f"validation, epoch {row.get('epoch', '?')}")
    tested = non_empty_bins((test or {}).get("test_reliability"))
    if tested is not None:
        ax.plot(tested.confidence, tested.accuracy, marker="s", markersize=4, linewidth=1.2,
                color=TEST_COLOR, label=f"test (n={int(tested.count.sum()):,})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)  # headroom for the counts over bars near 1
    ax.set_xlabel("confidence (top softmax probability)")
    ax.set_ylabel("accuracy")
    legend(ax, loc="upper left")
    for handle in getattr(ax.get_legend(), "legend_handles", []):
        if isinstance(handle, Rectangle):
            handle.set_alpha(0.8)  # the bars' own colour, not the faded first bin's
    return fig


def _draw_validation(ax: Any, bins: Bins, label: str) -> None:
    bars = ax.bar(bins.left, bins.accuracy, width=bins.width, align="edge", color=VAL_COLOR,
                  alpha=0.8, edgecolor="white", label=f"{label} (n={int(bins.count.sum()):,})")
    # a good model puts nearly every sample in the top bin; the bins of 1-3 samples are noise,
    # so they fade (opacity grows with the square root of the bin's share of the largest)
    for bar, count in zip(bars, bins.count, strict=True):
        bar.set_alpha(0.2 + 0.6 * float(np.sqrt(count / bins.count.max())))
    # the mean confidence inside each bin: the gap to the bar's top is what the ECE weighs
    ax.plot(bins.confidence, bins.accuracy, "o", color="#222222", markersize=3,
            label="bin's mean confidence")
    for left, accuracy, count in zip(bins.left, bins.accuracy, bins.count, strict=True):
        ax.annotate(f"{int(count)}", xy=(left + bins.width / 2, accuracy), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                    color="#555555")
