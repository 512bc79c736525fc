"""Look first, the distributions of images and sequences (METHOD.md 1.1).

Tables and vectors get a histogram per feature (figures.py); an image or a sequence has
hundreds of features, so it is summarised instead: per class the mean image, or the mean
curve with the 10-90% band of the samples, and a histogram of all values per channel. A
shortcut (a watermark, a border, padding that differs by class) and a channel on another
scale show up here before any training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from trainwise.data.distribution_parts import (
    BAND,
    COLUMNS,
    MAX_CHANNELS,
    MAX_CLASSES,
    OVERLAY_CLASSES,
    as_float,
    channel_note,
    channel_values,
    figure_grid,
    group_means,
    histogram,
    panel_groups,
    subsample,
)
from trainwise.data.figures import as_images, save_png
from trainwise.data.image_distribution import image_figure
from trainwise.data.task import TaskData


def distribution_style(data: TaskData) -> str | None:
    """"images", "sequences", or None for tables and vectors (their samples figure already
    draws a histogram per feature)."""
    if data.kind == "image" or data.image_shape:
        return "images"
    return "sequences" if data.kind == "sequence" else None


def _values(data: TaskData) -> np.ndarray:
    """(N, C, ...) as loaded: sequences (N, C, T), images (N, C, H, W)."""
    return as_images(data) if distribution_style(data) == "images" else np.asarray(data.x)


def sequence_figure(data: TaskData) -> Figure:
    """A panel per class (the first MAX_CLASSES): per channel shown, the mean at each time
    step and the 10-90% band of the samples, on one y-scale; then a histogram of all values
    per channel."""
    rows = subsample(data)
    x = np.asarray(data.x)[rows]  # (n, C, T)
    groups, channels = panel_groups(data, rows), range(min(x.shape[1], MAX_CHANNELS))
    num_panels = len(groups) + len(channels)
    columns = min(COLUMNS, num_panels)
    figure, grid = figure_grid(columns, 2.6, [1.9] * -(-num_panels // columns))
    figure.suptitle(f"{data.name}: mean and {BAND[0]:.0%}-{BAND[1]:.0%} band per time step, "
                    f"{channel_note(x.shape[1])}, {len(rows)} of {len(data.y)} samples",
                    fontsize=10)
    first = None
    for panel, ((title, index), mean) in enumerate(zip(groups, group_means(x, groups),
                                                       strict=True)):
        ax = figure.add_subplot(grid[divmod(panel, columns)], sharey=first)
        first = first or ax
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(as_float(x[index]), BAND, axis=0)  # (C, T) each
        for channel in channels:
            ax.fill_between(np.arange(x.shape[2]), low[channel], high[channel], alpha=0.25,
                            color=f"C{channel}", linewidth=0)
            ax.plot(mean[channel], color=f"C{channel}", linewidth=1.2, label=f"channel {channel}")
        ax.set_title(f"{title} (n={len(index)})", fontsize=8)
        ax.set_xlabel("time step", fontsize=7)
        ax.tick_params(labelsize=6)
    if first is not None and len(channels) > 1:
        first.legend(fontsize=6)
    rng = np.random.default_rng(0)
    for offset, channel in enumerate(channels):
        ax = figure.add_subplot(grid[divmod(len(groups) + offset, columns)])
        histogram(ax, [("", channel_values(x, channel, rng))])
        ax.set_title(f"channel {channel}: all values", fontsize=8)
        ax.set_ylabel("count (log)", fontsize=7)
    return figure


def distribution_figure(data: TaskData) -> Figure | None:
    """The distribution figure for images or sequences; None for tables and vectors."""
    style = distribution_style(data)
    if style is None or len(data.y) == 0:
        return None
    return image_figure(data) if style == "images" else sequence_figure(data)


def distribution_caption(data: TaskData) -> str:
    """The report's caption: what is drawn, from how many samples, and what to look for."""
    style = distribution_style(data)
    count, total = len(subsample(data)), len(data.y)
    groups = "class" if data.task == "classification" else "quarter of the target range"
    classes = "" if data.task != "classification" or data.num_classes <= MAX_CLASSES else \
        f" (the first {MAX_CLASSES} of {data.num_classes} classes)"
    channels = channel_note(int(np.shape(_values(data))[1]))
    drawn = f"all {total} samples" if count == total else \
        f"a random {count} of the {total} samples"
    if style == "images":
        return (f"Per {groups}{classes}: the mean image (one brightness scale for all), and "
                "below it how it differs from the mean of all images (red brighter, blue "
                f"darker); then a histogram of the pixel values per channel ({channels}, by "
                f"{groups} when {OVERLAY_CLASSES} or fewer). From {drawn}, as loaded, before "
                "normalisation. "
                "Look for a class whose mean differs only at a border, a corner or a "
                "watermark (a shortcut the model learns instead of the content), a class "
                "much brighter than the rest, a channel on another scale, and a spike at one "
                "value (blank or padded images).")
    return (f"Per {groups}{classes}: the mean at each time step (line) and the "
            f"{BAND[0]:.0%}-{BAND[1]:.0%} range of the samples (band), {channels}, on one "
            f"y-scale; then a histogram of all values per channel. From {drawn}, as loaded. "
            "Look for a channel on another scale, time steps where the band shrinks to a "
            "line (constant values: padding or a fixed header), a spike at one value in a "
            "histogram (padding, missing values filled in), and classes that differ only at "
            "the start or the end (a shortcut, not the shape).")


def plot_distributions(data: TaskData, path: str | Path) -> Path | None:
    """Write distribution_figure(data) as a PNG at `path`; None (no file) for tables and
    vectors, whose samples figure already shows a histogram per feature."""
    figure = distribution_figure(data)
    if figure is None:
        return None
    return save_png(figure, path)
