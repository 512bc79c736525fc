"""The split as a picture: each row at its time, one line per group (groups in order of first
time), coloured by part, so a reader sees which periods and subjects each score covers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # a Figure object, not pyplot: no global state, no GUI

from trainwise.data.figures import save_png

COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
MAX_POINTS = 20_000  # rows drawn; more only blur into one another (drawn evenly, not at random)


def _lines(groups: np.ndarray | None, times: np.ndarray | None,
           rows: np.ndarray) -> np.ndarray:
    """Each row's line: groups ranked by first time (or by code without times); no groups:
    all rows on line 0."""
    if groups is None:
        return np.zeros(len(rows))
    codes = pd.factorize(np.asarray(groups), sort=True)[0]
    if times is None:
        return codes[rows].astype(np.float64)
    first = pd.Series(times).groupby(codes).min()
    rank = first.rank(method="first").to_numpy() - 1  # 0 = the group that starts first
    return rank[codes[rows]]


def plot_split_timeline(parts: dict[str, np.ndarray | None], groups: np.ndarray | None,
                        times: np.ndarray | None, path: str | Path) -> Path | None:
    """Write the timeline PNG at `path`; None when there are neither groups nor times."""
    if groups is None and times is None:
        return None
    figure = Figure(figsize=(7.0, 3.2 if groups is not None else 1.8), layout="constrained")
    ax = figure.subplots()
    for name, rows in parts.items():
        if rows is None or not len(rows):
            continue
        rows = rows[:: max(1, len(rows) // MAX_POINTS)]
        x = times[rows] if times is not None else rows
        ax.scatter(x, _lines(groups, times, rows), s=4, marker="|" if groups is None else "o",
                   color=COLOURS.get(name), label=f"{name} ({len(parts[name])} rows)")
    ax.set_xlabel("time" if times is not None else "row")
    ax.set_ylabel("group (by first time)" if groups is not None else "")
    if groups is None:
        ax.set_yticks([])
    ax.set_title("Which rows went to which part", fontsize=10)
    ax.legend(fontsize=7, markerscale=3)
    return save_png(figure, path)
