"""Two figures of rows, drawn the same way (images as a grid, sequences as lines), each panel
named by its file (or part and row): the held-out rows whose label looks wrong, titled with the
given label and the class the model gives it, and the most confident wrong test predictions,
titled with the true label and the predicted class (stages_labels.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from trainwise.data.figures import displayable, save_png
from trainwise.data.task import TaskData

if TYPE_CHECKING:
    from trainwise.train.label_issues import Suspect

MAX_SUSPECTS = 16
COLUMNS = 8
MAX_PATH = 28  # characters of a file's path in a panel title: about what a 1.6-inch panel
# holds at 6.5 pt; a longer path loses its left end, the folders every panel shares


def _row(data: TaskData, suspect: Suspect) -> np.ndarray:
    """The suspect's row as loaded (before normalisation): (C, H, W), (H, W) or (C, T)."""
    x = data.x_test if suspect.part == "test (own)" and data.x_test is not None else data.x
    row = np.asarray(x[suspect.row])
    if data.kind != "image" and data.image_shape:  # digits: 64 features of an 8x8 picture
        return row.reshape(1, *data.image_shape[-2:])
    return row


def panel_name(suspect: Suspect, root: str = "") -> str:
    """The file to open, as its path under `root` (a/img0.png, test/a/4.png): class folders
    reuse names (0001.jpg in every class), so the name alone is ambiguous (review s13 VA6).
    Shortened from the left to MAX_PATH; a row without a file is named by part and row."""
    if not suspect.file:
        return f"{suspect.part} {suspect.named_row}"
    path = Path(suspect.file)
    try:
        shown = path.relative_to(root).as_posix() if root else path.as_posix()
    except ValueError:  # not under root: the whole path
        shown = path.as_posix()
    return shown if len(shown) <= MAX_PATH else "..." + shown[-(MAX_PATH - 3):]


SUSPECTS_TITLE = "The {} most suspect held-out rows: the given label, then what the model says"
MISTAKES_TITLE = ("The {} most confident wrong test predictions: the true label, then what the "
                  "model says and its probability")


def suspects_figure(data: TaskData, found: list[Suspect], title: str = SUSPECTS_TITLE,
                    root: str = "") -> Figure | None:
    """None for tables, vectors and token ids: a row of numbers says little as a picture, the
    report's table lists them. `title`: '{}' takes the number drawn; `root`: the image folder
    (data.source) the panels name files from."""
    images = data.kind == "image" or bool(data.image_shape)
    if not found or not (images or data.kind == "sequence"):
        return None
    shown = found[:MAX_SUSPECTS]
    rows, columns = math.ceil(len(shown) / COLUMNS), min(COLUMNS, len(shown))
    height = 1.75 * rows + 0.7
    figure = Figure(figsize=(1.6 * columns + 0.4, height))
    figure.subplots_adjust(left=0.03, right=0.97, bottom=0.1 / height, top=1 - 0.75 / height,
                           wspace=0.15, hspace=0.6)
    figure.suptitle(title.format(len(shown)), fontsize=9)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, suspect in zip(axes, shown, strict=False):
        row = _row(data, suspect)
        if images:
            ax.imshow(displayable(row), cmap="gray", interpolation="nearest")
        else:
            ax.plot(row[0], linewidth=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{panel_name(suspect, root)}\n'{suspect.given}' -> "
                     f"'{suspect.suggested}' {suspect.p_suggested:.2f}", fontsize=6.5)
    for unused in axes[len(shown):]:
        unused.set_axis_off()
    return figure


def plot_suspects(data: TaskData, found: list[Suspect], path: str | Path,
                  title: str = SUSPECTS_TITLE, root: str = "") -> Path | None:
    """Write suspects_figure as a PNG at `path`; None (nothing written) when it draws none."""
    figure = suspects_figure(data, found, title, root)
    if figure is None:
        return None
    return save_png(figure, path)
