"""What the image and sequence distribution figures share: the subsample, the groups (per
class or target quarter), group means, histograms and the figure grid."""

from __future__ import annotations

import warnings

import numpy as np
from matplotlib.figure import Figure

from trainwise.data.figures import row_groups
from trainwise.data.task import TaskData

MAX_SAMPLES = 2000  # a random subset: 60k images would take seconds, and 2000 give the same means
MAX_VALUES = 20_000_000  # fewer samples for big images: 2000 RGB 224x224 would be 2.4 GB as float
MAX_HISTOGRAM_VALUES = 1_000_000  # per channel; np.histogram over 20M values takes ~0.5 s
MAX_CLASSES = 10
MAX_CHANNELS = 3
OVERLAY_CLASSES = 5  # more classes overlaid in one histogram are unreadable: pooled instead
BAND = (0.1, 0.9)
COLUMNS = 4


def subsample(data: TaskData) -> np.ndarray:
    """Sorted row indices of at most MAX_SAMPLES rows (fewer for big samples), drawn with a
    fixed seed so the figure is the same every run; every row when there are few enough."""
    count = len(data.y)
    per_sample = max(1, int(np.prod(np.shape(data.x)[1:])))
    keep = min(count, MAX_SAMPLES, max(50, MAX_VALUES // per_sample))
    if keep == count:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, keep, replace=False))


def panel_groups(data: TaskData, rows: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(title, indices into the subsample) per class or target quarter, empty ones dropped."""
    position = np.full(len(data.y), -1)
    position[rows] = np.arange(len(rows))
    groups = [(title, position[indices]) for title, indices in row_groups(data, MAX_CLASSES)]
    return [(title, index[index >= 0]) for title, index in groups if (index >= 0).any()]


def as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def group_means(x: np.ndarray, groups: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """The mean sample of each group, NaN ignored: (C, T) or (C, H, W) each."""
    with warnings.catch_warnings():  # an all-NaN time step stays NaN: a gap in the line
        warnings.simplefilter("ignore", RuntimeWarning)
        return [np.nanmean(as_float(x[index]), axis=0) for _, index in groups]


def _bins(values: np.ndarray) -> np.ndarray:
    """50 equal bins; whole-number values (pixels 0-255, digits' 0-16) get bins of a whole
    width centred on the integers, else some bins catch one more integer than the next."""
    low, high = float(values.min()), float(values.max())
    if np.array_equal(values, np.round(values)):
        step = max(1, int(np.ceil((high - low + 1) / 64)))
        return np.arange(low - 0.5, high + step, step)
    return np.histogram_bin_edges(values, bins=50)


def histogram(ax, series: list[tuple[str, np.ndarray]]) -> None:
    """One histogram per (label, values), overlaid on shared bins; counts on a log scale so a
    spike at one value (blank pixels, padding) and the tails are both visible."""
    finite = [v[np.isfinite(v)] for _, v in series]
    pooled = np.concatenate(finite)
    if pooled.size == 0:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    bins = _bins(pooled)
    for (label, _), values in zip(series, finite, strict=True):
        ax.hist(values, bins=bins, histtype="step" if len(series) > 1 else "stepfilled",
                label=label or None, linewidth=1)
    ax.set_yscale("log")
    ax.tick_params(which="both", labelsize=6)  # "both": under one decade the minor ticks
    # carry the labels (2x10^3, 3x10^3), at the default size they overlap the next panel
    if len(series) > 1:
        ax.legend(fontsize=5, ncols=2)


def channel_values(x: np.ndarray, channel: int, rng: np.random.Generator) -> np.ndarray:
    values = as_float(x[:, channel]).ravel()
    if values.size > MAX_HISTOGRAM_VALUES:  # random, not strided: a stride aliases with rows
        values = values[rng.choice(values.size, MAX_HISTOGRAM_VALUES, replace=False)]
    return values


def channel_note(num_channels: int) -> str:
    if num_channels <= MAX_CHANNELS:
        return "1 channel" if num_channels == 1 else f"all {num_channels} channels"
    return f"channels 0-{MAX_CHANNELS - 1} of {num_channels}"


def figure_grid(columns: int, column_width: float, heights: list[float], hspace: float = 0.6):
    """A Figure at least 7.5 inches wide (room for the title) and its GridSpec, with fixed
    margins in inches: layout="constrained" doubles the drawing time (~1 s a figure)."""
    width, height = max(7.5, column_width * columns + 0.6), sum(heights) + 0.9
    figure = Figure(figsize=(width, height))
    grid = figure.add_gridspec(len(heights), columns, left=0.6 / width, right=0.98,
                               bottom=0.4 / height, top=1 - 0.5 / height, wspace=0.3,
                               hspace=hspace, height_ratios=heights)
    return figure, grid
