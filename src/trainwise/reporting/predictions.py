"""Report figure: a regression's test predictions against the actual values, in the target's
units (from test_predictions.csv, which the evaluate stage wrote: nothing is predicted again
here), with the y = x line of a perfect model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from trainwise.amounts import amount
from trainwise.reporting.figures import TEST_COLOR, legend, new_axes, styled

LOG_FROM_DECADES = 2.0  # positive targets spanning 100x or more are drawn on log axes


def log_axes(actual: np.ndarray) -> bool:
    """Whether both axes go on a log scale: the actual values all positive and spanning at
    least two decades (prices of 8,500 to 11,000,000 crowd into one corner on linear axes)."""
    if not len(actual) or actual.min() <= 0:
        return False
    return bool(np.log10(actual.max() / actual.min()) >= LOG_FROM_DECADES)


@styled
def predicted_vs_actual_figure(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    """One dot per test row; the diagonal is a perfect prediction. Dots under it at the top
    and over it at the bottom: the model pulls its answers towards the mean."""
    fig, ax = new_axes("Test: predicted vs actual", figsize=(5.5, 5.0))
    ok = np.isfinite(actual) & np.isfinite(predicted)
    actual, predicted = actual[ok], predicted[ok]
    alpha = min(0.8, max(0.15, 40 / max(np.sqrt(len(actual)), 1)))  # thousands of rows: faint
    ax.scatter(actual, predicted, s=12, alpha=alpha, color=TEST_COLOR, edgecolors="none",
               label=f"test rows ({len(actual):,})")
    logarithmic = log_axes(actual)
    if logarithmic:  # the diagonal over the actual values; x = actual is all positive
        low, high = float(actual.min()), float(actual.max())
    else:
        low = float(min(actual.min(), predicted.min())) if len(actual) else 0.0
        high = float(max(actual.max(), predicted.max())) if len(actual) else 1.0
    ax.plot([low, high], [low, high], color="#555555", linestyle=":", linewidth=1.2,
            label="perfect: predicted = actual")
    if logarithmic:
        ax.set_xscale("log")
        if predicted.min() > 0:
            ax.set_yscale("log")
        else:  # a prediction at or below 0 stays on the figure: linear under the smallest
            ax.set_yscale("symlog", linthresh=low)  # actual value, log above it
    ticks = FuncFormatter(lambda value, _: amount(value))  # plain digits, as in the tables
    ax.xaxis.set_major_formatter(ticks)  # (128,400, not 1.284e5 or 10^5)
    ax.yaxis.set_major_formatter(ticks)
    ax.set_xlabel("actual (target's units)")
    ax.set_ylabel("predicted (target's units)")
    legend(ax, loc="upper left")
    return fig
