"""Look first: typical samples and per-feature distributions as PNG figures, before training."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # a Figure object, not pyplot: no global state, no GUI

from trainwise.data.feature_pick import Picked, pick_features
from trainwise.data.task import TaskData

LINES_PER_CLASS = 4
MAX_PANELS = 12  # classes drawn as sequence panels, or features drawn as histograms
# flagged features take at most half the histograms: missing_values and constant_features
# each name up to 10 columns, which filled all 12 and left no room for the F test's pick
# (review s15 VE6); the caption names the flagged ones left out
MAX_FLAGGED = MAX_PANELS // 2
COLUMNS = 4
IMAGES_PER_CLASS = 6


def _grid(num_panels: int, title: str, sharey: bool = False) -> tuple[Figure, list]:
    rows = math.ceil(num_panels / COLUMNS)
    columns = min(COLUMNS, num_panels)
    height = 1.9 * rows + 0.4 + 0.3 * sharey  # room for the shared axis labels
    figure = Figure(figsize=(2.6 * columns, height))
    # fixed margins, not layout="constrained": that doubles the drawing time (~1 s a figure)
    figure.subplots_adjust(left=0.07 if sharey else 0.06, right=0.98,
                           bottom=(0.3 + 0.3 * sharey) / height, top=1 - 0.55 / height,
                           wspace=0.3, hspace=0.55)
    axes = figure.subplots(rows, columns, squeeze=False, sharey=sharey).ravel().tolist()
    for unused in axes[num_panels:]:
        unused.set_axis_off()
    figure.suptitle(title, fontsize=10)
    return figure, axes[:num_panels]


def _class_label(data: TaskData, label: int) -> str:
    return data.class_names[label] if label < len(data.class_names) else str(label)


def row_groups(data: TaskData, limit: int = MAX_PANELS) -> list[tuple[str, np.ndarray]]:
    """(title, row indices in order) per class, the first `limit` classes; for regression,
    per quarter of the target range, its number in the title: a figure that drops an empty
    quarter (a zero-inflated target) still names the others rightly (group_label). The
    samples and the distribution figures group alike."""
    if data.task == "classification":
        return [(f"class {_class_label(data, int(c))}", np.flatnonzero(data.y == c))
                for c in np.unique(data.y)[:limit]]
    edges = np.quantile(data.y, [0, 0.25, 0.5, 0.75, 1.0])
    bins = np.clip(np.searchsorted(edges, data.y, side="right") - 1, 0, 3)
    return [(f"quarter {b + 1}: target in [{edges[b]:.3g}, {edges[b + 1]:.3g}]",
             np.flatnonzero(bins == b)) for b in range(4)]


def group_label(title: str) -> str:
    """A row_groups title made short for a legend: the class name, or "quarter 2" (the
    target ranges crowd a legend)."""
    return title.removeprefix("class ").split(": target in")[0]


def _sequence_panels(data: TaskData) -> Figure:
    x = np.asarray(data.x)  # (N, C, T): channel 0 is drawn, one line per sample
    channel_note = f", channel 0 of {x.shape[1]}" if x.shape[1] > 1 else ""
    groups = row_groups(data)  # regression: the first samples in each quarter of the target
    titles = [title for title, _ in groups]
    rows = [indices[:LINES_PER_CLASS] for _, indices in groups]
    # one y-scale for every panel: classes are compared by their amplitude as well as shape
    figure, axes = _grid(len(rows), f"{data.name}: first {LINES_PER_CLASS} sequences per "
                                    f"{'class' if data.task == 'classification' else 'bin'}"
                                    f"{channel_note}", sharey=True)
    for ax, indices, title in zip(axes, rows, titles, strict=True):
        for index in indices:
            ax.plot(x[index, 0], linewidth=1)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    figure.supxlabel("time step", fontsize=8)
    figure.supylabel("value (channel 0, as loaded)", fontsize=8)
    return figure


def _names(data: TaskData, num_features: int) -> list[str]:
    return data.feature_names if len(data.feature_names) == num_features else \
        [f"x{i}" for i in range(num_features)]


def picked(data: TaskData, train_rows: np.ndarray | None,
           flagged: Mapping[str, str] | None = None) -> Picked | None:
    """The features a wide table's histograms show: those the audit flagged (`flagged`:
    {feature: why}, flagged_features) first, then the ones that tell the classes apart most
    on `train_rows` (after the split), or before it the first others in file order. None
    when every feature fits (all are shown), or before the split with nothing flagged.
    One F test over every column: the split stage calls it once and hands the pick to
    samples_figure and samples_caption (review s11 VD10: it ran 3 times on the same rows)."""
    x = np.asarray(data.x).reshape(len(data.x), -1)
    if x.shape[1] <= MAX_PANELS or _style(data) != "histograms":
        return None
    names = _names(data, x.shape[1])
    every = {names.index(name): why for name, why in (flagged or {}).items() if name in names}
    first = dict(list(every.items())[:MAX_FLAGGED])
    if train_rows is not None and data.task in ("classification", "regression"):
        ranked = pick_features(x[train_rows], np.asarray(data.y)[train_rows], data.task,
                               x.shape[1])
    elif first:
        ranked = Picked(np.arange(x.shape[1]), 0, 0, x.shape[1], data.task, scored=False)
    else:
        return None
    rest = [int(i) for i in ranked.features if int(i) not in first]
    features = np.array([*first, *rest][:MAX_PANELS])
    # flagged past the first MAX_FLAGGED that the F test did not draw either (review s15 VF2)
    more = tuple(names[i] for i in every if i not in set(features.tolist()))
    return replace(ranked, features=features, flagged=first, more_flagged=more,
                   rows=train_rows if ranked.scored else None)


def _feature_panels(data: TaskData, chosen: Picked | None = None) -> Figure:
    x = np.asarray(data.x).reshape(len(data.x), -1)  # (N, D)
    y = np.asarray(data.y)
    names = _names(data, x.shape[1])
    features = list(range(min(MAX_PANELS, x.shape[1])))
    if chosen is not None:
        features = chosen.features.tolist()
        if chosen.rows is not None:  # drawn from the rows they were picked on: train only
            x, y = x[chosen.rows], y[chosen.rows]
    per_class = data.task == "classification" and len(np.unique(y)) <= 10
    more = " in file order (the split redraws the most telling)" \
        if x.shape[1] > len(features) else ""
    what = chosen.title() if chosen is not None else \
        f"the first {len(features)} of {x.shape[1]} features{more}"
    comma = "," if chosen is not None and chosen.flagged else ""  # "...others, by class"
    figure, axes = _grid(len(features), f"{data.name}: distributions of {what}"
                         + (f"{comma} by class" if per_class else ""))
    for feature, ax in zip(features, axes, strict=True):
        column = x[:, feature]
        finite = np.isfinite(column)
        bins = np.histogram_bin_edges(column[finite], bins=30) if finite.any() else 10
        if per_class:
            for label in np.unique(y):
                values = column[finite & (y == label)]
                ax.hist(values, bins=bins, alpha=0.45, histtype="stepfilled",
                        label=_class_label(data, int(label)))
        else:
            ax.hist(column[finite], bins=bins, histtype="stepfilled")
        why = chosen.flagged.get(feature) if chosen is not None else None
        ax.set_title(names[feature] + (f" ({why})" if why else ""), fontsize=8,
                     color="firebrick" if why else "black")
        ax.tick_params(labelsize=6)
    if per_class and axes:
        axes[0].legend(fontsize=6, title="class", title_fontsize=6)
    return figure


def displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W[, 3]) in [0, 1] for imshow; float images are min-max scaled."""
    image = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return scaled[0] if scaled.shape[0] == 1 else scaled[:3].transpose(1, 2, 0)


def as_images(data: TaskData) -> np.ndarray:
    """(N, C, H, W): image data as loaded, flat rows of a known image shape as (N, 1, H, W)."""
    x = np.asarray(data.x)
    if data.kind != "image" and data.image_shape:
        return x.reshape(len(x), 1, *data.image_shape[-2:])
    return x


def _image_panels(data: TaskData) -> Figure:
    """A row per class (up to MAX_PANELS), IMAGES_PER_CLASS typical images each: the first
    ones in file order, so the grid is the same every run."""
    images = as_images(data)
    groups = [(title, index[:IMAGES_PER_CLASS]) for title, index in row_groups(data)
              if len(index)]
    height = 1.3 * len(groups) + 0.5
    figure = Figure(figsize=(1.3 * IMAGES_PER_CLASS + 1.2, height))
    # the default margins leave ~3 inches blank above and below a grid of 10 rows
    figure.subplots_adjust(left=0.12, right=0.98, bottom=0.15 / height, top=1 - 0.45 / height)
    figure.suptitle(f"{data.name}: first {IMAGES_PER_CLASS} images per class", fontsize=10)
    axes = figure.subplots(len(groups), IMAGES_PER_CLASS, squeeze=False)
    for row, (title, indices) in enumerate(groups):
        for column, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if column < len(indices):
                ax.imshow(displayable(images[indices[column]]), cmap="gray",
                          interpolation="nearest")
            else:
                ax.set_axis_off()
        axes[row][0].set_ylabel(group_label(title), fontsize=8)
    return figure


def _style(data: TaskData) -> str:
    """How the samples are drawn: "images" (image data, or flat rows of a known image shape
    such as digits' 8x8), "tokens" (lengths and id counts), "sequences", or per-feature
    "histograms"."""
    if data.kind == "tokens":
        return "tokens"
    if (data.kind == "image" or data.image_shape) and data.task == "classification":
        return "images"
    return "sequences" if data.kind == "sequence" else "histograms"


def samples_figure(data: TaskData, chosen: Picked | None = None) -> Figure:
    """Sequences as lines (a panel per class), images as a grid (a row per class), token ids
    as lengths and id counts (token_figures.py), tables and vectors as per-feature histograms.

    Deterministic: the first samples of each class are drawn, no random choice. A table of
    more than MAX_PANELS features given `chosen` (picked(data, train_rows), after the split)
    shows the features that tell the classes apart most on those rows; else the first ones.
    """
    style = _style(data)
    if style == "images":
        return _image_panels(data)
    if style == "tokens":
        from trainwise.data.token_figures import token_figure  # it imports row_groups here

        return token_figure(data)
    return _sequence_panels(data) if style == "sequences" else \
        _feature_panels(data, chosen)


def samples_caption(data: TaskData, chosen: Picked | None = None) -> str:
    """The report's caption for samples_figure: what is drawn and what to look for."""
    style = _style(data)
    if style == "tokens":
        from trainwise.data.token_figures import token_caption

        return token_caption(data)
    if style == "images":
        return (f"The first {IMAGES_PER_CLASS} images of each class (a row each), as loaded, "
                "before normalisation. Look for mislabelled or blank images, and for a class "
                "told apart by something other than its content (a border, the brightness).")
    if style == "sequences":
        per = "class" if data.task == "classification" else "quarter of the target range"
        return (f"The first {LINES_PER_CLASS} sequences of each {per} (channel 0, as loaded), "
                "on one y-scale. Look for a shape that sets the classes apart, and for flat, "
                "clipped or wildly scaled rows.")
    num_features = int(np.prod(np.asarray(data.x).shape[1:]))
    shown = f"{chosen.caption()} Histograms of those" if chosen is not None else \
        f"Histograms of the first {min(MAX_PANELS, num_features)} of {num_features} features" + (
            " in file order (nothing flagged by the audit; the split stage redraws the ones "
            "that tell the classes apart most on its training rows)"
            if num_features > MAX_PANELS else "")
    return (f"{shown}, as loaded (by class when there are 10 or fewer classes). Look for "
            "constant features, extreme values, and which features set the classes apart.")


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG at `path` (its folder made): every stage figure alike."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)  # Agg is Figure's default canvas: no display needed
    return path


def plot_samples(data: TaskData, path: str | Path, chosen: Picked | None = None) -> Path:
    """Write samples_figure(data, chosen) as a PNG at `path`."""
    return save_png(samples_figure(data, chosen), path)
