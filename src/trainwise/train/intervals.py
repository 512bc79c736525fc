"""How far a score read off a finite split can be trusted: a 95% interval for an accuracy.

Wilson's score interval (scipy's binomtest, method "wilson", the same numbers as statsmodels'
proportion_confint): unlike the textbook p +- 1.96 sqrt(p(1-p)/n) it stays inside 0-100% and
keeps a width at 0% or 100% (wine's 36 of 36 right: 90.4-100%, where that one gives 100-100%).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95


@dataclass(frozen=True)
class AccuracyInterval:
    low: float
    high: float
    num_correct: int
    num_rows: int

    def text(self) -> str:
        """'95% CI 96.7-98.6%, 1000 rows' (plain ASCII: the console prints it too)."""
        return (f"{CONFIDENCE:.0%} CI {percent(self.low)}-{percent(self.high)}%, "
                f"{self.num_rows} rows")


def percent(fraction: float) -> str:
    """One decimal, but the bounds 0 and 1 as '0' and '100' (a bound, not a rounding)."""
    if fraction in (0.0, 1.0):
        return f"{100 * fraction:.0f}"
    return f"{100 * fraction:.1f}"


def accuracy_interval(num_correct: int, num_rows: int) -> AccuracyInterval | None:
    """The 95% Wilson interval of num_correct / num_rows; None for an empty split."""
    if num_rows <= 0 or not 0 <= num_correct <= num_rows:
        return None
    ci = binomtest(int(num_correct), int(num_rows)).proportion_ci(CONFIDENCE, method="wilson")
    return AccuracyInterval(float(ci.low), float(ci.high), int(num_correct), int(num_rows))


def split_accuracy_interval(row: dict[str, Any], prefix: str = "test") -> AccuracyInterval | None:
    """From a metrics row's confusion matrix (rows true, columns predicted): its sum is the
    split's rows, its diagonal the right answers. None when the row has no matrix (a Monitor
    row, a regression)."""
    matrix = row.get(f"{prefix}_confusion")
    if not isinstance(matrix, list) or not matrix:
        return None
    try:
        counts = np.asarray(matrix, dtype=np.int64)
    except (TypeError, ValueError):
        return None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return None
    return accuracy_interval(int(np.trace(counts)), int(counts.sum()))
