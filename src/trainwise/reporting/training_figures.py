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
Draw = Callable[..., Figure]  # draw(ax=None): on the axes given, else on a figure of its own
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
    """The panels there is data for: the report's curves (curve_panels), then confidence."""
    panels: list[Panel] = [
        draw for _, draw in curve_panels(steps, epochs, findings, num_classes).values()]
    if has(epochs, CONFIDENCE_KEY):
        panels.append(lambda ax: confidence_figure(epochs, ax=ax))
    return panels


CONFIDENCE_KEY = "val_confidence_hist"  # the confidence figure's rows (a classifier's)


def curve_panels(steps: Sequence[Row], epochs: Sequence[Row],
                 findings: Sequence[Finding] = (), num_classes: int | None = None,
                 **loss_options: Any) -> dict[str, tuple[str, Draw]]:
    """name -> (title, draw) for the training curves there is data for, in report order: the
    one table report.html (html.figure_builders) and history_figure both draw from (review s16
    VN10: two copies of these conditions had drifted apart). `loss_options`: loss_figure's
    train_class_counts and standardised_target."""
    panels: dict[str, tuple[str, Draw]] = {}
    if has(steps, "loss") or has(epochs, "train_loss") or has(epochs, "val_loss"):
        panels["loss"] = ("Loss", lambda ax=None: loss_figure(
            steps, epochs, findings, num_classes, ax=ax, **loss_options))
    if has(steps, "grad_norm"):
        panels["grad_norm"] = ("Gradient norm",
                               lambda ax=None: grad_norm_figure(steps, findings, ax=ax))
    if has(steps, "lr"):
        panels["learning_rate"] = ("Learning rate",
                                   lambda ax=None: learning_rate_figure(steps, ax=ax))
    return panels


def has(rows: Sequence[Row], key: str) -> bool:
    """Some row holds `key` (not None): there is data to draw it from."""
    return any(row.get(key) is not None for row in rows)
