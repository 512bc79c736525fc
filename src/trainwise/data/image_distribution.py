"""The image distribution figure: per class the mean image and its difference from the mean
of all images, then the pixel values per channel (distribution_figures.py picks it)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from trainwise.data.distribution_parts import (
    MAX_CHANNELS,
    OVERLAY_CLASSES,
    channel_note,
    channel_values,
    figure_grid,
    group_means,
    histogram,
    panel_groups,
    subsample,
)
from trainwise.data.figures import as_images, group_label
from trainwise.data.task import TaskData

IMAGE_COLUMNS = 5


def _shown(mean: np.ndarray, low: float, high: float) -> np.ndarray:
    """(C, H, W) -> what imshow draws: RGB scaled by one range shared by every class, so a
    brighter class looks brighter; any other channel count shows channel 0 as it is."""
    if mean.shape[0] != 3:
        return mean[0]
    return np.clip((mean.transpose(1, 2, 0) - low) / ((high - low) or 1.0), 0, 1)


def _image_row_pair(figure: Figure, grid, groups, means, overall) -> None:
    """Mean images on one grey scale, and below them each minus the mean of all images."""
    low = float(min(np.nanmin(m) for m in means))
    high = float(max(np.nanmax(m) for m in means))
    differences = [np.nanmean(m - overall, axis=0) for m in means]  # (H, W): channels pooled
    limit = float(max(np.nanmax(np.abs(d)) for d in differences)) or 1.0
    columns = grid.ncols
    for panel, ((title, index), mean, difference) in enumerate(
            zip(groups, means, differences, strict=True)):
        row, column = divmod(panel, columns)
        top = figure.add_subplot(grid[2 * row, column])
        top.imshow(_shown(mean, low, high), cmap="gray", vmin=low, vmax=high,
                   interpolation="nearest")
        top.set_title(f"{title} (n={len(index)})", fontsize=7)
        bottom = figure.add_subplot(grid[2 * row + 1, column])
        bottom.imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
        if column == 0:
            top.set_ylabel("mean", fontsize=7)
            bottom.set_ylabel(f"minus all\n(±{limit:.3g})", fontsize=7)


def image_figure(data: TaskData) -> Figure:
    """Per class (the first MAX_CLASSES): the mean image and its difference from the mean of
    all images; then a histogram of the pixel values per channel (by class when few)."""
    rows = subsample(data)
    x = as_images(data)[rows]  # (n, C, H, W)
    groups = panel_groups(data, rows)
    columns = min(IMAGE_COLUMNS, len(groups))
    image_rows = -(-len(groups) // columns)
    figure, grid = figure_grid(columns, 1.5, [1.5] * (2 * image_rows) + [2.0], hspace=0.35)
    per = "class" if data.task == "classification" else "quarter of the target"
    figure.suptitle(f"{data.name}: mean image per {per} and pixel values, "
                    f"{channel_note(x.shape[1])}, {len(rows)} of {len(data.y)} images",
                    fontsize=10)
    means = group_means(x, groups)
    _image_row_pair(figure, grid, groups, means, group_means(x, [("all", np.arange(len(x)))])[0])
    channels = range(min(x.shape[1], MAX_CHANNELS))
    row = grid[-1, :].subgridspec(1, len(channels), wspace=0.35)
    rng = np.random.default_rng(0)
    by_class = len(groups) <= OVERLAY_CLASSES
    for channel in channels:
        ax = figure.add_subplot(row[0, channel])
        series = [(group_label(title), channel_values(x[index], channel, rng))
                  for title, index in groups] if by_class else \
            [("", channel_values(x, channel, rng))]
        histogram(ax, series)
        ax.set_title(f"channel {channel}: pixel values" + (f" by {per.split()[0]}"
                                                            if by_class else ""), fontsize=8)
        if channel == 0:  # beside every panel it runs into the tick labels of the previous one
            ax.set_ylabel("count (log)", fontsize=7)
    return figure
