"""Report figures, part 1: shared style, PNG encoding, the data figure and finding marks.

Every figure is a pure function from run-folder data to a `matplotlib.figure.Figure`.
We build `Figure` objects directly (never pyplot): pyplot keeps a global registry of open
figures, which leaks memory across reports and is not safe when two reports render at once.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

import numpy as np
from cycler import cycler
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from trainwise.findings import Finding, Severity

# Muted, colour-blind-friendly palette (seaborn "deep"): one colour per seed / split.
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3",
           "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")
TRAIN_COLOR, VAL_COLOR, TEST_COLOR = PALETTE[0], PALETTE[1], PALETTE[2]
SEVERITY_COLORS = {"info": "#5B7A99", "warning": "#C98A00", "error": "#C0392B"}
FIGSIZE = (7.0, 3.5)  # inches; 700x350 px at 100 dpi keeps each inlined PNG ~20-40 kB
DPI = 100

STYLE: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#999999",
    "axes.labelcolor": "#333333", "xtick.color": "#555555", "ytick.color": "#555555",
    "axes.grid": True, "grid.color": "#E6E6E6", "grid.linewidth": 0.6,
    "legend.frameon": False, "axes.prop_cycle": cycler(color=PALETTE),
    "figure.facecolor": "white", "savefig.facecolor": "white",
}

P = ParamSpec("P")


def styled(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Apply STYLE while a figure is built, without touching the global rcParams."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def new_axes(title: str, figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left")
    return fig, ax


def titled_axes(title: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """new_axes, or `ax` titled when given: one panel of a figure of several (TrainState.plot)."""
    if ax is None:
        return new_axes(title)
    ax.set_title(title, loc="left")
    return ax.get_figure(), ax  # type: ignore[return-value]  # the caller's Figure


def legend(ax: Axes, **kwargs: Any) -> None:
    """A legend only when something is labelled (an empty one draws a stray box and warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def figure_png(fig: Figure) -> bytes:
    """Encode a figure as PNG bytes; metadata dropped so the bytes depend on the data only."""
    buffer = io.BytesIO()
    with rc_context(STYLE):  # ticks added at draw time must match the style they were built in
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}"


def finite(values: Sequence[Any]) -> np.ndarray:
    """Float array with None/inf turned into NaN, so matplotlib breaks the line there."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    array[~np.isfinite(array)] = np.nan
    return array


# The curve each diagnosis fires on (train/diagnose*.py): the one its evidence is read off.
# A code not listed (another stage's, or a rule added later) goes on both step curves, so no
# finding with a step is left undrawn.
Curve = tuple[np.ndarray, np.ndarray]  # (x, y) as plotted
STEP_CURVES = ("loss", "grad_norm")
FINDING_CURVES: dict[str, tuple[str, ...]] = {
    "divergence": ("loss", "grad_norm"),  # the first non-finite value of either
    "loss_exploding": ("loss",),
    "ordered_batches": ("loss",),
    "lr_too_low": ("loss",),
    "plateau": ("loss",),
    "overfitting": ("val_loss",),  # at the best epoch
    "validation_leak": ("val_loss",),  # the first epoch judged
    "healthy": ("val_loss",),
    "gradient_spike": ("grad_norm",),
    "vanishing_gradients": ("grad_norm",),
    "gradient_dip": ("loss", "grad_norm"),  # both collapse to ~0
    "loss_scaler_skips": ("grad_norm",),  # the first skipped step (its norm is not finite)
    "overconfidence": ("val_mean_confidence",),  # against accuracy, per epoch
    "underconfidence": ("val_mean_confidence",),
    "confusion": ("val_accuracy",),
    "too_good": ("val_loss",),  # at the best epoch, whose score was perfect
    # at the best epoch, on the accuracy figure that also draws balanced accuracy
    "collapse": ("val_accuracy",),
    "missed_classes": ("val_accuracy",),
    "still_improving": ("val_loss",),  # at the last epoch, still the best
    "target_scale": ("val_loss",),  # at the last epoch, whose R^2 is below 0
    "loss_rising": ("loss",),  # at the epoch of the lowest training loss
    # the first epoch of the run of epochs whose training loss sat above validation
    "heavy_regularisation": ("loss", "val_loss"),
    "systematically_wrong": ("val_accuracy",),  # the first epoch below chance
}


# A finding's step is where it began; these are drawn where the event itself is, read from
# the evidence: an explosion's step is the minimum the loss rose from (step 51 of the lr=5
# audit run), its event the peak 370 steps later (audit s7 #8). The rise between is shaded.
EVENT_STEPS = {"loss_exploding": "peak_step"}


def mark_findings(ax: Axes, findings: Sequence[Finding], curves: dict[str, Curve]) -> None:
    """Draw each finding that fired on one of `curves` (name -> the (x, y) plotted on these
    axes; x in the axes' units) as a labelled vertical line at its step and a ring on that
    curve at the step. Info findings are not drawn: a dashed line reads as an event, and an
    info ("healthy", the loss scaler's normal first skips) reports none."""
    for finding in findings:
        names = [n for n in FINDING_CURVES.get(finding.code, STEP_CURVES) if n in curves]
        if finding.step is None or not names or finding.severity is Severity.INFO:
            continue
        _draw_event(ax, finding, finding.step, curves[names[0]])


def _draw_event(ax: Axes, finding: Finding, onset: float, curve: Curve) -> None:
    color = SEVERITY_COLORS.get(finding.severity.value, "#555555")
    event = finding.evidence.get(EVENT_STEPS.get(finding.code, ""), onset)
    if not isinstance(event, int | float) or event == onset:
        event = onset
    else:  # both ends: the onset ringed, the way up shaded
        ax.axvspan(onset, event, color=color, alpha=0.08, linewidth=0)
        _ring(ax, onset, curve, color)
    ax.axvline(event, color=color, linestyle="--", linewidth=1, alpha=0.8)
    ax.annotate(finding.code, xy=(event, 1), xycoords=("data", "axes fraction"),
                xytext=(3, -3), textcoords="offset points", rotation=90, va="top",
                fontsize=7, color=color)
    _ring(ax, event, curve, color)


def _ring(ax: Axes, x: float, curve: Curve, color: str) -> None:
    xs, ys = curve
    at = np.flatnonzero(xs == x)
    if not len(at):
        return
    y = float(ys[at[0]])
    style = {"marker": "o", "markersize": 9, "markerfacecolor": "none", "markeredgewidth": 1.5,
             "color": color, "linestyle": "none", "zorder": 5}
    if np.isfinite(y) and (y > 0 or ax.get_yscale() != "log"):
        ax.plot([x], [y], **style)
    else:  # NaN/inf at the top edge (where curves.py puts its "x"), zero on a log axis at the
        # bottom edge, where the curve drops out of view
        edge = 0.02 if np.isfinite(y) else 0.98
        ax.plot([x], [edge], transform=ax.get_xaxis_transform(), **style)


SORTED_FROM = 12  # classes: beyond this the bars are drawn most rows first (audit s14 C14)
LOG_FROM = 50  # largest over smallest non-zero share: beyond it a linear axis flattens the tail
MAX_LABELS = 40  # class names under the bars; beyond it every k-th and the rarest few


@styled
def class_balance_figure(class_counts: dict[str, Sequence[int]],
                         class_names: Sequence[str] | None = None,
                         title: str = "Class balance per split") -> Figure:
    """Grouped bars: each class's share of each split, so a stratified split shows equal bars
    (before the split: of the whole data set, `class_counts` {"all rows": ...}).

    Shares rather than counts because the splits differ in size (e.g. 3600/400/1000): counts
    would hide whether validation is drawn the same way as training. Many classes are drawn
    most rows first on a log axis when the tail is small, so the rare classes (the ones a
    long-tail user looks for) are visible and named at the right end.
    """
    splits = [s for s in ("train", "val", "test") if s in class_counts]
    splits += [s for s in class_counts if s not in splits]
    num_classes = max(len(class_counts[s]) for s in splits)
    names = list(class_names or [])[:num_classes]
    names += [str(i) for i in range(len(names), num_classes)]
    counts = np.zeros((len(splits), num_classes))
    for i, split in enumerate(splits):
        counts[i, : len(class_counts[split])] = class_counts[split]
    order = np.arange(num_classes)
    if num_classes > SORTED_FROM:  # by the first split's rows (training's), ties in class order
        order = np.argsort(-counts[0], kind="stable")
        counts, names = counts[:, order], [names[k] for k in order]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = new_axes(title)
    width = 0.8 / len(splits)
    positions = np.arange(num_classes)
    for i, split in enumerate(splits):
        ax.bar(positions + (i - (len(splits) - 1) / 2) * width, shares[i], width,
               label=f"{split} (n={int(counts[i].sum()):,})", color=PALETTE[i % len(PALETTE)])
    positive = shares[shares > 0]
    if len(positive) and positive.max() / positive.min() > LOG_FROM:
        ax.set_yscale("log")  # a class of 2 rows beside one of 1,674 is a visible bar
        ax.set_ylabel("share of rows (log scale)")
    else:
        ax.set_ylabel("share of rows")
    ax.set_xlabel("class, most rows first" if num_classes > SORTED_FROM else "class")
    _class_ticks(ax, positions, names)
    # Above the axes, beside the title: inside, it would cover the bars it explains.
    legend(ax, loc="lower right", bbox_to_anchor=(1, 1), ncols=len(splits))
    ax.grid(axis="x", visible=False)
    return fig


def _class_ticks(ax: Axes, positions: np.ndarray, names: list[str]) -> None:
    """Every class named up to MAX_LABELS; beyond, the labels would overlap into a black bar,
    so every k-th class and the 5 at the right end (the rarest, when sorted) are named."""
    if len(names) > MAX_LABELS:
        step = int(np.ceil(len(names) / (MAX_LABELS - 5)))
        shown = sorted(set(range(0, len(names) - 5, step)) | set(range(len(names) - 5,
                                                                       len(names))))
        ax.set_xticks(positions[shown], [names[k] for k in shown], rotation=90, fontsize=6)
        return
    ax.set_xticks(positions, names, rotation=45 if len(names) > 12 else 0,
                  ha="right" if len(names) > 12 else "center")
