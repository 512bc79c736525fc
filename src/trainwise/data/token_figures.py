"""Look first, drawn for token ids: row lengths, the most frequent ids, and per class the ids
most over-represented in it (token_stats.py counts them). A histogram of the id at each
position, as for features, says nothing: id 17 is not "more" than id 3."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from trainwise.data.figures import group_label, row_groups
from trainwise.data.task import TaskData
from trainwise.data.token_stats import (
    counted_rows,
    full_rows,
    length_summary,
    over_represented,
    row_lengths,
    rows_holding,
)

NUM_FREQUENT = 20  # ids in the overall frequency panel
NUM_SPECIFIC = 8  # ids per class panel
MAX_CLASSES = 8
OVERLAY_CLASSES = 5  # length histograms overlaid per class; more are unreadable: pooled
COLUMNS = 4


def _lengths_panel(ax, data: TaskData, groups: list[tuple[str, np.ndarray]]) -> None:
    """Histogram of tokens per row, one bin per length 0..T, per class when few; a dashed
    line at T (rows that reach it were cut there, or probably were for a user's ids) and the
    empty rows at 0."""
    lengths, width = row_lengths(data.x), np.shape(data.x)[1]
    bins = np.arange(-0.5, width + 1.5)
    if 1 < len(groups) <= OVERLAY_CLASSES:
        for title, index in groups:
            ax.hist(lengths[index], bins=bins, histtype="step", linewidth=1.2,
                    label=group_label(title))
        ax.legend(fontsize=6)
    else:
        ax.hist(lengths, bins=bins, histtype="stepfilled")
    ax.axvline(width, color="k", linestyle="--", linewidth=1)
    share = data.tokeniser.get("cut_share")  # known when trainwise tokenised the text
    cut = "(cut?)" if share is None else "(cut)" if share else ""
    ax.annotate(f"T = {width}\n{cut}", (width, 1), xycoords=("data", "axes fraction"),
                xytext=(-8, -4), textcoords="offset points", fontsize=6, va="top", ha="right")
    s = length_summary(data.x)
    ax.set_title(f"tokens per row (not padding): {s['num_empty']} empty, {s['num_full']} "
                 f"fill all {width}", fontsize=8)
    ax.set_xlabel("tokens in the row", fontsize=7)
    ax.set_ylabel("rows", fontsize=7)
    ax.tick_params(labelsize=6)


def _frequent_panel(ax, ids: np.ndarray) -> None:
    """The NUM_FREQUENT most frequent ids and how often each occurs, most frequent on top."""
    counts = np.bincount(ids.ravel(), minlength=1)
    counts[0] = 0  # padding is no word
    top = [k for k in np.argsort(-counts, kind="stable")[:NUM_FREQUENT] if counts[k] > 0]
    ax.barh(np.arange(len(top)), counts[top], color="C0")
    ax.set_yticks(np.arange(len(top)), [f"id {k}" for k in top], fontsize=6)
    ax.invert_yaxis()
    used = int((counts > 0).sum())
    ax.set_title(f"the {len(top)} most frequent of {used} ids used", fontsize=8)
    ax.set_xlabel("occurrences", fontsize=7)
    ax.tick_params(labelsize=6)


def _specific_panel(ax, title: str, specific: list[tuple[int, float, float, float]],
                    size: int) -> None:
    """Per id, the share of this class's rows holding it (colour) beside the share of the
    other rows (grey); the label says what share of its rows are in this class."""
    place = np.arange(len(specific))
    ax.barh(place - 0.2, [s[1] for s in specific], height=0.4, color="C1")
    ax.barh(place + 0.2, [s[2] for s in specific], height=0.4, color="0.6")
    ax.set_yticks(place, [f"id {k} ({purity:.0%})" for k, _, _, purity in specific],
                  fontsize=6)
    ax.set_ylim(NUM_SPECIFIC - 0.5, -0.5)  # fixed slots, most specific on top: one id is
    # one thin bar, not a block filling the panel
    # up to the longest bar, not 1: a 5% share must still show; the labels carry the numbers
    ax.set_xlim(0, max([0.05] + [max(s[1], s[2]) for s in specific]) * 1.1)
    ax.set_title(f"{title} (n={size})", fontsize=8)
    ax.set_xlabel("share of rows holding the id:\norange this one, grey the rest", fontsize=6)
    ax.tick_params(labelsize=6)
    if not specific:
        ax.text(0.5, 0.5, "no id is much more\ncommon here than\nin the other rows",
                ha="center", va="center", fontsize=7, transform=ax.transAxes)


def token_figure(data: TaskData) -> Figure:
    """Row lengths and the most frequent ids on top; below, a panel per class (the first
    MAX_CLASSES) of the ids most over-represented in it against the other rows."""
    ids = np.asarray(data.x)
    groups = row_groups(data, MAX_CLASSES)
    rows = counted_rows(len(ids))
    position = np.full(len(ids), -1)
    position[rows] = np.arange(len(rows))
    counted = [position[index][position[index] >= 0] for _, index in groups]
    per_group, overall = rows_holding(ids[rows], counted)
    sizes = np.array([len(index) for index in counted])
    class_rows = -(-len(groups) // COLUMNS)
    width, height = 10.5, 2.6 + 2.0 * class_rows + 0.8
    figure = Figure(figsize=(width, height))
    grid = figure.add_gridspec(1 + class_rows, COLUMNS, left=0.09, right=0.98,
                               bottom=0.45 / height, top=1 - 0.5 / height, wspace=0.55,
                               hspace=0.75, height_ratios=[2.6] + [2.0] * class_rows)
    per = "class" if data.task == "classification" else "quarter of the target"
    figure.suptitle(f"{data.name}: token ids ({len(ids)} rows of T = {ids.shape[1]}): lengths, "
                    f"frequent ids, and the ids most over-represented per {per}", fontsize=10)
    _lengths_panel(figure.add_subplot(grid[0, :2]), data, groups)
    _frequent_panel(figure.add_subplot(grid[0, 2:]), ids[rows])
    for number, (title, _) in enumerate(groups):
        ax = figure.add_subplot(grid[1 + number // COLUMNS, number % COLUMNS])
        specific = over_represented(per_group, overall, sizes, number, NUM_SPECIFIC)
        _specific_panel(ax, title, specific, int(sizes[number]))
    return figure


def token_caption(data: TaskData) -> str:
    """What the token figure draws and what to look for."""
    s = length_summary(data.x)
    per = "class" if data.task == "classification" else "quarter of the target range"
    classes = "" if data.task != "classification" or data.num_classes <= MAX_CLASSES else \
        f" (the first {MAX_CLASSES} of {data.num_classes} classes)"
    empty = (f"{s['num_empty']} rows are empty (all padding) and cannot be classified"
             if s["num_empty"] else "no row is empty")
    full = f"{full_rows(s, len(data.x), data.tokeniser.get('cut_share'))} (dashed line: T)"
    return (f"Top left: tokens per row (padding 0 not counted), by {per} when "
            f"{OVERLAY_CLASSES} or fewer; {empty}, and {full}. Top right: the "
            f"{NUM_FREQUENT} most frequent ids. Below, per {per}{classes}: the ids whose share "
            "of rows holding them most exceeds their share in the other rows (orange this "
            "one, grey the rest; the percentage is how many of the rows holding the id are "
            "in this one). Look for lengths that differ by class (a model can count instead "
            "of read), many rows at T (a larger T keeps their ends), and an id in most of "
            "one class's rows and almost none elsewhere, near 100%: a shortcut such as the "
            "label word left in the text or a template one source adds. Decode such ids with "
            "your vocabulary.")
