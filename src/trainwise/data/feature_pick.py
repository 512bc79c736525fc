"""Which features a wide table's histograms show: the ones that separate the classes most
(ANOVA F) or follow a regression target most (F of the correlation), scored on the training
rows only, so the figure a person reads before training never looks at validation or test.

The first 12 columns of a 500-column table are the right ones only by luck (audit s11 M14:
with the signal in columns 300-305 the figure would have shown noise); the F tests are
scikit-learn's (f_classif, f_regression), one pass over the columns, no model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

SIGNIFICANCE = 0.05  # uncorrected: the caption says how many such hits chance alone gives


@dataclass(frozen=True)
class Picked:
    features: np.ndarray  # column indices, most telling first
    num_rows: int  # training rows they were scored on
    num_significant: int  # columns with p < SIGNIFICANCE (uncorrected)
    num_features: int
    task: str
    rows: np.ndarray | None = field(default=None, compare=False)  # the rows (into data.x)
    # they were scored on, set by figures.picked: the histograms draw those rows

    def title(self) -> str:
        what = "separate the classes" if self.task == "classification" else \
            "follow the target"
        return (f"the {len(self.features)} of {self.num_features} features that {what} most "
                f"(F test on the {self.num_rows} training rows)")

    def caption(self) -> str:
        expected = SIGNIFICANCE * self.num_features
        differ = "differ between the classes" if self.task == "classification" else \
            "correlate with the target"
        return (f"The {len(self.features)} features with the largest F statistic on the "
                f"{self.num_rows} training rows only (validation and test unseen). "
                f"{self.num_significant} of {self.num_features} features {differ} at p < "
                f"{SIGNIFICANCE:g} (uncorrected; about {expected:.0f} would by chance alone).")


def pick_features(x: np.ndarray, y: np.ndarray, task: str, count: int) -> Picked:
    """The `count` columns of `x` (N, D) with the largest F statistic against `y` (N,): the
    training rows, given by the caller."""
    from sklearn.feature_selection import f_classif, f_regression

    test = f_classif if task == "classification" else f_regression
    with warnings.catch_warnings():  # constant or all-missing columns: F = nan, no warning
        warnings.simplefilter("ignore")
        present = np.where(np.isfinite(x), x, np.nan)
        finite = np.nan_to_num(np.where(np.isfinite(x), x, np.nanmean(present, axis=0)))
        scores, p_values = test(finite, y)  # a missing value counts as its column's mean
    scores = np.nan_to_num(scores, nan=-1.0)
    order = np.argsort(-scores, kind="stable")[:count]
    return Picked(order, len(y), int(np.sum(np.nan_to_num(p_values, nan=1.0) < SIGNIFICANCE)),
                  x.shape[1], task)
