"""Report figure: the reliability diagram (accuracy against confidence, per confidence bin).

Reads the bins evaluate() stores (`val_reliability`, `test_reliability`: per bin the mean
confidence, the accuracy and the count, None for an empty bin; the ECE's own 15 uniform bins,
train/evaluate.py). A calibrated model sits on the diagonal; bars below it are over-confident.
Validation and test get a panel each, drawn the same way, so neither is read as the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from trainwise.reporting.curves import best_epoch
from trainwise.reporting.figures import TEST_COLOR, VAL_COLOR, styled

Row = dict[str, Any]
FIGSIZE = (7.0, 4.0)  # taller than the curves: both axes run 0-1 and the gaps are the point
# A bin's accuracy on n rows has a standard error up to 0.5/sqrt(n): 0.16 at 10 rows, 0.5 at
# one. Below 10 rows a bar's gap to the diagonal says nothing, so it is drawn grey (the count
# stays written above it); mnist1d's test split had bins of 1-3 rows swinging 0 -> 0.67 -> 0.
MIN_BIN_ROWS = 10
SPARSE_COLOR = "#DDDDDD"


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


def reliability_caption(monitor: bool, tested: bool) -> str:
    """The figure's caption for what the run folder holds: a Monitor keeps no weights and
    scores no test (audit s11 D10), a recipe stopped before evaluate has no test panel."""
    if monitor:
        panels = ("Validation at the epoch of the lowest validation loss (a Monitor keeps no "
                  "weights: your own loop decides which it saves).")
    elif tested:
        panels = ("One panel per split, named above it: validation at the best epoch (whose "
                  "weights were kept) and test, scored once with those weights.")
    else:
        panels = ("Validation at the best epoch, whose weights were kept (no test was scored "
                  "in this run).")
    return (f"{panels} Each bar is the accuracy of the predictions in one confidence bin, "
            "with the bin's row count above it and a dot at the bin's mean confidence; against "
            "the diagonal of perfect calibration, bars below it are over-confident, above it "
            "under-confident. Grey bars hold fewer than 10 rows: one row moves them by 10 "
            "points or more, so their gap to the diagonal is noise; read the coloured ones.")


@styled
def reliability_figure(epochs: Sequence[Row], test: Row | None = None) -> Figure:
    """One panel per split (validation at the best epoch, test with the kept weights): each
    bin's accuracy as a bar with its row count above, the bin's mean confidence as a dot, and
    the diagonal. Bins of fewer than MIN_BIN_ROWS rows are grey: their accuracy is noise."""
    row = reliability_row(epochs)
    panels = []
    val = non_empty_bins(row.get("val_reliability")) if row is not None else None
    if val is not None and row is not None:
        panels.append((val, f"validation, epoch {row.get('epoch', '?')}", VAL_COLOR))
    tested = non_empty_bins((test or {}).get("test_reliability"))
    if tested is not None:
        panels.append((tested, "test, the kept weights", TEST_COLOR))
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    fig.suptitle("Reliability diagram: accuracy against confidence", x=0.01, ha="left",
                 fontsize=10)
    axes = fig.subplots(1, max(len(panels), 1), sharey=True, squeeze=False)[0]
    for ax, (bins, name, color) in zip(axes, panels, strict=False):
        ax.set_title(f"{name} (n={int(bins.count.sum()):,})", loc="left", fontsize=9)
        _draw_bins(ax, bins, color)
    for ax in axes:
        ax.plot([0, 1], [0, 1], color="#555555", linestyle="--", linewidth=1,
                label="perfectly calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.1)  # headroom for the counts over bars near 1
        ax.set_xlabel("confidence (top softmax probability)")
    axes[0].set_ylabel("accuracy")
    _legend(fig, axes[0], any((b.count < MIN_BIN_ROWS).any() for b, _, _ in panels))
    return fig


def _legend(fig: Figure, ax: Any, sparse: bool) -> None:
    """Below the panels: inside, it would cover the sparse bars of the low-confidence end."""
    handles, labels = ax.get_legend_handles_labels()
    if sparse:
        handles.append(Patch(facecolor=SPARSE_COLOR, alpha=0.8))
        labels.append(f"bin of < {MIN_BIN_ROWS} rows (too few to judge)")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)


def _draw_bins(ax: Any, bins: Bins, color: str) -> None:
    sparse = bins.count < MIN_BIN_ROWS
    ax.bar(bins.left, bins.accuracy, width=bins.width, align="edge", alpha=0.8,
           color=[SPARSE_COLOR if few else color for few in sparse], edgecolor="white")
    # the mean confidence inside each bin: the gap to the bar's top is what the ECE weighs
    ax.plot(bins.confidence, bins.accuracy, "o", color="#222222", markersize=3,
            label="bin's mean confidence")
    for left, accuracy, count, few in zip(bins.left, bins.accuracy, bins.count, sparse,
                                          strict=True):
        ax.annotate(f"{int(count)}", xy=(left + bins.width / 2, accuracy), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                    color="#999999" if few else "#333333")
