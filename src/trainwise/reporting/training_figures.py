"""One history's training curves in a single figure, for a notebook: `TrainState.plot()` after
`trainwise.fit`, `history_figure(monitor.history)` after a Monitor loop (audit s16 N10: neither
had a figure, and `trainwise.report` needs a run folder, which fit() does not write).

The panels are the report's own figures (curves.py, confidence.py) drawn on one figure's axes,
so a notebook shows the curves report.html shows: METHOD.md section 3's signals (training vs
validation loss, the gradient norm, the prediction confidence) and the learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from trainwise.findings import Finding, TrainwiseError
from trainwise.reporting.confidence import confidence_figure
from trainwise.reporting.curves import grad_norm_figure, learning_rate_figure, loss_figure
from trainwise.reporting.figures import FIGSIZE, styled

Row = dict[str, Any]
Panel = Callable[[Axes], Any]
PANEL_HEIGHT = 3.0  # inches per panel at FIGSIZE's 7-inch width: 4 panels, 7 x 12 in


@styled
def history_figure(history: Sequence[Row], num_classes: int | None = None,
                   findings: Sequence[Finding] = ()) -> Figure:
    """The training curves of `history` (TrainState.history, Monitor.history: step rows and
    epoch rows), one panel each, top to bottom: training vs validation loss per epoch over the
    faint per-step loss, the gradient norm per step (log scale), the learning rate, and the
    validation confidence histogram when the epochs carry one. `num_classes` draws the loss
    of the uniform guess, ln C; `findings` (trainwise.diagnose(history)) ring where each began.
    A matplotlib Figure, built without pyplot: shown when it ends a notebook cell,
    `.savefig("curves.png")` writes it."""
    steps = [row for row in history if row.get("kind", "step") == "step"]
    epochs = [row for row in history if row.get("kind") == "epoch"]
    panels = _panels(steps, epochs, num_classes, findings)
    if not panels:
        raise TrainwiseError(
            f"Nothing to plot: the history's {len(history)} row(s) carry no loss, gradient "
            "norm or learning rate. Expected the rows of a training: plot after fit() or a "
            "Monitor loop has run at least one step (monitor.step(loss, model, optimizer)).")
    fig = Figure(figsize=(FIGSIZE[0], PANEL_HEIGHT * len(panels)), layout="constrained")
    for ax, draw in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels, strict=True):
        draw(ax)
    return fig


def _panels(steps: list[Row], epochs: list[Row], num_classes: int | None,
            findings: Sequence[Finding]) -> list[Panel]:
    """The panels there is data for, in the conditions report.html draws each under."""
    panels: list[Panel] = []
    if _has(steps, "loss") or _has(epochs, "train_loss") or _has(epochs, "val_loss"):
        panels.append(lambda ax: loss_figure(steps, epochs, findings, num_classes, ax=ax))
    if _has(steps, "grad_norm"):
        panels.append(lambda ax: grad_norm_figure(steps, findings, ax=ax))
    if _has(steps, "lr"):
        panels.append(lambda ax: learning_rate_figure(steps, ax=ax))
    if _has(epochs, "val_confidence_hist"):
        panels.append(lambda ax: confidence_figure(epochs, ax=ax))
    return panels


def _has(rows: list[Row], key: str) -> bool:
    return any(row.get(key) is not None for row in rows)
