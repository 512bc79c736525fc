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

from trainwise.data.figures import as_images, group_label, row_groups
from trainwise.data.task import TaskData

MAX_SAMPLES = 2000  # a random subset: 60k images would take seconds, and 2000 give the same means
MAX_VALUES = 20_000_000  # fewer samples for big images: 2000 RGB 224x224 would be 2.4 GB as float
MAX_HISTOGRAM_VALUES = 1_000_000  # per channel; np.histogram over 20M values takes ~0.5 s
MAX_CLASSES = 10
MAX_CHANNELS = 3
OVERLAY_CLASSES = 5  # more classes overlaid in one histogram are unreadable: pooled instead
BAND = (0.1, 0.9)
COLUMNS = 4
IMAGE_COLUMNS = 5


def distribution_style(data: TaskData) -> str | None:
    """"images", "sequences", or None for tables and vectors (their samples figure already
    draws a histogram per feature)."""
    if data.kind == "image" or data.image_shape:
        return "images"
    return "sequences" if data.kind == "sequence" else None


def _values(data: TaskData) -> np.ndarray:
    """(N, C, ...) as loaded: sequences (N, C, T), images (N, C, H, W)."""
    return as_images(data) if distribution_style(data) == "images" else np.asarray(data.x)


def subsample(data: TaskData) -> np.ndarray:
    """Sorted row indices of at most MAX_SAMPLES rows (fewer for big samples), drawn with a
    fixed seed so the figure is the same every run; every row when there are few enough."""
    count = len(data.y)
    per_sample = max(1, int(np.prod(np.shape(data.x)[1:])))
    keep = min(count, MAX_SAMPLES, max(50, MAX_VALUES // per_sample))
    if keep == count:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, keep, replace=False))


def _groups(data: TaskData, rows: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(title, indices into the subsample) per class or target quarter, empty ones dropped."""
    position = np.full(len(data.y), -1)
    position[rows] = np.arange(len(rows))
    groups = [(title, position[indices]) for title, indices in row_groups(data, MAX_CLASSES)]
    return [(title, index[index >= 0]) for title, index in groups if (index >= 0).any()]


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def group_means(x: np.ndarray, groups: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """The mean sample of each group, NaN ignored: (C, T) or (C, H, W) each."""
    with warnings.catch_warnings():  # an all-NaN time step stays NaN: a gap in the line
        warnings.simplefilter("ignore", RuntimeWarning)
        return [np.nanmean(_as_float(x[index]), axis=0) for _, index in groups]


def _bins(values: np.ndarray) -> np.ndarray:
    """50 equal bins; whole-number values (pixels 0-255, digits' 0-16) get bins of a whole
    width centred on the integers, else some bins catch one more integer than the next."""
    low, high = float(values.min()), float(values.max())
    if np.array_equal(values, np.round(values)):
        step = max(1, int(np.ceil((high - low + 1) / 64)))
        return np.arange(low - 0.5, high + step, step)
    return np.histogram_bin_edges(values, bins=50)


def _histogram(ax, series: list[tuple[str, np.ndarray]]) -> None:
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


def _channel_values(x: np.ndarray, channel: int, rng: np.random.Generator) -> np.ndarray:
    values = _as_float(x[:, channel]).ravel()
    if values.size > MAX_HISTOGRAM_VALUES:  # random, not strided: a stride aliases with rows
        values = values[rng.choice(values.size, MAX_HISTOGRAM_VALUES, replace=False)]
    return values


def _channel_note(num_channels: int) -> str:
    if num_channels <= MAX_CHANNELS:
        return "1 channel" if num_channels == 1 else f"all {num_channels} channels"
    return f"channels 0-{MAX_CHANNELS - 1} of {num_channels}"


def _figure(columns: int, column_width: float, heights: list[float], hspace: float = 0.6):
    """A Figure at least 7.5 inches wide (room for the title) and its GridSpec, with fixed
    margins in inches: layout="constrained" doubles the drawing time (~1 s a figure)."""
    width, height = max(7.5, column_width * columns + 0.6), sum(heights) + 0.9
    figure = Figure(figsize=(width, height))
    grid = figure.add_gridspec(len(heights), columns, left=0.6 / width, right=0.98,
                               bottom=0.4 / height, top=1 - 0.5 / height, wspace=0.3,
                               hspace=hspace, height_ratios=heights)
    return figure, grid


def sequence_figure(data: TaskData) -> Figure:
    """A panel per class (the first MAX_CLASSES): per channel shown, the mean at each time
    step and the 10-90% band of the samples, on one y-scale; then a histogram of all values
    per channel."""
    rows = subsample(data)
    x = np.asarray(data.x)[rows]  # (n, C, T)
    groups, channels = _groups(data, rows), range(min(x.shape[1], MAX_CHANNELS))
    num_panels = len(groups) + len(channels)
    columns = min(COLUMNS, num_panels)
    figure, grid = _figure(columns, 2.6, [1.9] * -(-num_panels // columns))
    figure.suptitle(f"{data.name}: mean and {BAND[0]:.0%}-{BAND[1]:.0%} band per time step, "
                    f"{_channel_note(x.shape[1])}, {len(rows)} of {len(data.y)} samples",
                    fontsize=10)
    first = None
    for panel, ((title, index), mean) in enumerate(zip(groups, group_means(x, groups),
                                                       strict=True)):
        ax = figure.add_subplot(grid[divmod(panel, columns)], sharey=first)
        first = first or ax
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(_as_float(x[index]), BAND, axis=0)  # (C, T) each
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
        _histogram(ax, [("", _channel_values(x, channel, rng))])
        ax.set_title(f"channel {channel}: all values", fontsize=8)
        ax.set_ylabel("count (log)", fontsize=7)
    return figure


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
    groups = _groups(data, rows)
    columns = min(IMAGE_COLUMNS, len(groups))
    image_rows = -(-len(groups) // columns)
    figure, grid = _figure(columns, 1.5, [1.5] * (2 * image_rows) + [2.0], hspace=0.35)
    per = "class" if data.task == "classification" else "quarter of the target"
    figure.suptitle(f"{data.name}: mean image per {per} and pixel values, "
                    f"{_channel_note(x.shape[1])}, {len(rows)} of {len(data.y)} images",
                    fontsize=10)
    means = group_means(x, groups)
    _image_row_pair(figure, grid, groups, means, group_means(x, [("all", np.arange(len(x)))])[0])
    channels = range(min(x.shape[1], MAX_CHANNELS))
    row = grid[-1, :].subgridspec(1, len(channels), wspace=0.35)
    rng = np.random.default_rng(0)
    by_class = len(groups) <= OVERLAY_CLASSES
    for channel in channels:
        ax = figure.add_subplot(row[0, channel])
        series = [(group_label(title), _channel_values(x[index], channel, rng))
                  for title, index in groups] if by_class else \
            [("", _channel_values(x, channel, rng))]
        _histogram(ax, series)
        ax.set_title(f"channel {channel}: pixel values" + (f" by {per.split()[0]}"
                                                            if by_class else ""), fontsize=8)
        if channel == 0:  # beside every panel it runs into the tick labels of the previous one
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
    channels = _channel_note(int(np.shape(_values(data))[1]))
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
