"""Report figure: the learning-rate range test (loss against lr), with the rates that mattered.

Two rates are drawn apart because they differ whenever short runs ran: the range test's point
(lr_range.json "lr") and the rate training used (tune.json "chosen_lr", which the short runs
pick; in wine 0.035 against 0.188). The band spans every rate the short runs tried, widened
rounds included, so no candidate lies outside the "tried" region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from trainwise.findings import Finding
from trainwise.reporting.figures import PALETTE, finite, legend, new_axes, styled
from trainwise.tune.lr_rule import rule_level

POINT_COLOR, USED_COLOR, TRIED_COLOR = "#222222", PALETTE[3], "#888888"
SAME_LR = 0.01  # relative: closer than this, the range-test point IS the rate used
RAW_MEDIAN_STEPS = 5  # the raw floor is a running median: one lucky batch does not set it


def used_lr(tune: dict[str, Any] | None, findings: Sequence[Finding] = ()) -> float | None:
    """The peak lr training used (or, after `trainwise tune`, would use): tune.json's
    chosen_lr, else the lr_chosen finding's evidence; None when neither names a finite one."""
    for value in [(tune or {}).get("chosen_lr"),
                  *(f.evidence.get("lr") for f in findings if f.code == "lr_chosen")]:
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def tried_lrs(tune: dict[str, Any] | None) -> list[tuple[float, bool]]:
    """(lr, widened) for each short run, by lr; widened: added in a later round."""
    candidates = (tune or {}).get("candidates") or []
    return sorted((float(c["lr"]), bool(c.get("round", 0))) for c in candidates
                  if isinstance(c.get("lr"), int | float) and c["lr"] > 0)


@styled
def lr_range_figure(lr_range: dict[str, Any], tune: dict[str, Any] | None = None,
                    used: float | None = None, trained: bool = True,
                    ax: Axes | None = None) -> Figure:
    """Loss vs learning rate (log x): raw faint, the level the rule reads bold, per seed; the band
    the short runs tried (else the test's range), the test's point and the rate `used`. Drawn
    on `ax` when given (LrRangeResult.plot in a notebook), else on a new figure."""
    title = f"Learning-rate range test ({lr_range.get('rule', 'rule unknown')})"
    if ax is None:
        fig, ax = new_axes(title)
    else:
        fig = ax.get_figure()
        ax.set_title(title, loc="left")
    curves = lr_range.get("curves", [])
    for i, curve in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        ax.plot(finite(curve["lrs"]), finite(curve["losses"]), color=color, alpha=0.25,
                linewidth=1)
        lrs, level = level_read(curve)
        if level.size:
            ax.plot(lrs, level, color=color, linewidth=2,
                    label=f"seed {curve.get('seed', i)} (level the rule reads)")
    _shade_tried(ax, lr_range, tried_lrs(tune))
    _mark_rates(ax, lr_range.get("lr"), used, "used for training" if trained
                else "chosen for training")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    _useful_limits(ax, curves)
    legend(ax, loc="lower left")  # the range-test curve starts high and ends high
    return fig


def level_read(curve: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(lrs, level) of lr_rule.rule_level: the curve the point and the range came from, not
    the EMA (beta 0.98) that only stops the test at a divergence; empty when the curve has
    under 5 finite points."""
    losses = finite(curve.get("losses") or [])
    if not losses.size or not np.isfinite(losses[0]):
        return np.empty(0), np.empty(0)
    return rule_level(finite(curve["lrs"]), losses)


def _shade_tried(ax: Axes, lr_range: dict[str, Any], tried: list[tuple[float, bool]]) -> None:
    if not tried:  # no short runs (find-lr): the range they would have tried
        low, high = lr_range.get("lr_low"), lr_range.get("lr_high")
        if low and high:
            ax.axvspan(low, high, color=TRIED_COLOR, alpha=0.12,
                       label=f"range test's range {low:.2g}–{high:.2g}")
        return
    lrs = [lr for lr, _ in tried]
    ax.axvspan(min(lrs), max(lrs), color=TRIED_COLOR, alpha=0.12,
               label=f"short runs tried {min(lrs):.2g}–{max(lrs):.2g}")
    # a tick on the bottom edge per short run: the band alone hides how many and where
    style = {"transform": ax.get_xaxis_transform(), "linestyle": "none", "marker": "^",
             "markersize": 7, "color": TRIED_COLOR, "clip_on": False, "zorder": 4}
    first = [lr for lr, widened in tried if not widened]
    later = [lr for lr, widened in tried if widened]
    if first:
        ax.plot(first, [0.0] * len(first), label="short run", **style)
    if later:
        ax.plot(later, [0.0] * len(later), markerfacecolor="white",
                label="short run added when the range widened", **style)


def same_rate(point: float | None, used: float | None) -> bool:
    """The range-test point IS the rate used (within SAME_LR): one mark, one caption."""
    return bool(point and used and abs(used / point - 1) < SAME_LR)


def _mark_rates(ax: Axes, point: float | None, used: float | None, used_text: str) -> None:
    """Vertical lines with a flag on the top edge: a dot on a smoothed curve would state a
    loss the raw curve never had at that lr."""
    top = {"transform": ax.get_xaxis_transform(), "linestyle": "none", "clip_on": False,
           "zorder": 5, "markersize": 7}
    same = same_rate(point, used)
    if point:
        label = f"range-test point {point:.3g}" + (f", {used_text}" if same else "")
        ax.axvline(point, color=POINT_COLOR, linewidth=1, linestyle=":")
        ax.plot([point], [1.0], marker="o", color=POINT_COLOR, label=label, **top)
    if used and not same:
        ax.axvline(used, color=USED_COLOR, linewidth=1.2, linestyle="--")
        ax.plot([used], [1.0], marker="D", color=USED_COLOR, label=f"{used_text} {used:.3g}",
                **top)


def _running_median(values: np.ndarray, width: int) -> np.ndarray:
    if values.size < width:
        return values
    return np.median(np.lib.stride_tricks.sliding_window_view(values, width), axis=1)


def _finite_prefix(values: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    return values[: bad[0]] if bad.size else values


def _useful_limits(ax: Axes, curves: list[dict[str, Any]]) -> None:
    """Keep the useful part in view: the range test ends by diverging on purpose, so the top
    is the start level plus half the fall; the bottom takes the raw curves' floor too (their
    5-step running median), which a smoothed level rarely reaches."""
    bold = [level_read(c)[1] for c in curves]
    raw = [_running_median(_finite_prefix(finite(c["losses"])), RAW_MEDIAN_STEPS)
           for c in curves]
    bold = [v[np.isfinite(v)] for v in bold if np.isfinite(v).any()]
    raw = [v for v in raw if v.size]
    if not bold:
        return
    start = float(np.median([v[0] for v in bold]))
    lowest = float(min(v.min() for v in bold + raw))
    top = start + 0.5 * max(start - lowest, 0.1 * abs(start), 1e-3)
    ax.set_ylim(lowest - 0.05 * (top - lowest), top)


def lr_range_caption(lr_range: dict[str, Any], tune: dict[str, Any] | None,
                     used: float | None, trained: bool = True) -> str:
    """What each mark is; the bold curve is the level the rule reads its range off."""
    rule = lr_range.get("rule", "trainwise")
    read = ("the rule reads the point and the range off it" if rule == "trainwise" else
            f"the range is read off it; the point is the pick of rule '{rule}', from its own "
            "smoothing of the raw losses")
    band = ("the rates the short runs tried (a triangle each; hollow: added when the range "
            "widened)" if tried_lrs(tune) else "the range test's range")
    point = lr_range.get("lr")
    used_text = ""
    if used and point and not same_rate(point, used):
        used_text = f"; dashed: the rate {'used' if trained else 'chosen'} for training, {used:.3g}"
    return ("Loss against learning rate (log scale), one colour per seed. Faint: each step's "
            "raw loss. Bold: the level the rule reads, a local-linear smoothing of the raw "
            "losses that ignores single bad batches and does not lag, drawn up to where the "
            f"rule cut the divergence; {read}. Shaded: {band}. Dotted: the range test's "
            f"point{used_text}.")
