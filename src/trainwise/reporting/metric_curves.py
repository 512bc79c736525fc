"""Report figures: the per-epoch metric curves (accuracy and mean confidence for
classification, MAE/RMSE for regression).

Separate from curves.py, whose figures run along the training step: these run along the epoch,
so the findings marked on them are first moved from their step to the epoch it ends in
(`at_epochs`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from trainwise.findings import Finding
from trainwise.reporting.curves import Row, column, integer_x
from trainwise.reporting.figures import (
    PALETTE,
    TRAIN_COLOR,
    VAL_COLOR,
    legend,
    mark_findings,
    new_axes,
    styled,
)


@styled
def metric_figure(epochs: Sequence[Row], keys: Sequence[str], title: str,
                  findings: Sequence[Finding] = ()) -> Figure:
    """One metric family per epoch: accuracy and mean confidence (classification) or MAE/RMSE
    (regression); findings that fired on these curves are marked at their epoch."""
    fig, ax = new_axes(title)
    # Train keeps the train colour; validation metrics take the validation colour, then others.
    colors = iter((VAL_COLOR, PALETTE[4], PALETTE[5], PALETTE[6]))
    markers = iter(MARKERS)
    drawn = {}
    for key in keys:
        x, y = column(epochs, "epoch", key)
        if len(x):
            color = TRAIN_COLOR if key.startswith("train") else next(colors, "#555555")
            ax.plot(x, y, color=color, label=key.replace("_", " "),
                    **_metric_style(key, next(markers, "o")))
            drawn[key] = (x, y)
    mark_findings(ax, at_epochs(findings, epochs), drawn)
    integer_x(ax, "epoch")
    ax.set_ylabel(_metric_label(list(drawn)))
    legend(ax, loc="best")
    return fig


MARKERS = ("o", "s", "^", "D", "v")  # one per line: a curve drawn over another still shows


def _metric_style(key: str, marker: str) -> dict[str, Any]:
    """Line style per metric, so two metrics that coincide both stay visible: on balanced
    data balanced accuracy lies exactly on accuracy and hid it (audit s7 #18); it is drawn
    thinner and dotted with hollow markers, over the solid line."""
    if "balanced" in key:
        return {"linestyle": ":", "linewidth": 1.5, "marker": marker, "markersize": 5,
                "markerfacecolor": "none", "zorder": 3}
    return {"linestyle": "--" if "confidence" in key else "-", "linewidth": 2,
            "marker": marker, "markersize": 3}


def _metric_label(keys: Sequence[str]) -> str:
    if any("accuracy" in k or "confidence" in k for k in keys):
        return "accuracy / mean confidence (0–1)"
    if any(k.endswith(("_mae", "_rmse")) for k in keys):
        return "error (target units)"
    return ", ".join(k.replace("_", " ") for k in keys)


def at_epochs(findings: Sequence[Finding], epochs: Sequence[Row]) -> list[Finding]:
    """The findings with their step turned into the epoch that step ends (or falls in), for
    figures whose x axis is the epoch."""
    ends = sorted((r["step"], r["epoch"]) for r in epochs
                  if r.get("step") is not None and r.get("epoch") is not None)
    moved = []
    for finding in findings:
        epoch = next((e for step, e in ends if finding.step is not None and step >= finding.step),
                     None)
        if epoch is not None:
            moved.append(dataclasses.replace(finding, step=epoch))
    return moved
