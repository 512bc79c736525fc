"""Which features a wide table's histograms show: the ones that separate the classes most
(ANOVA F) or follow a regression target most (F of the correlation), scored on the training
rows only, so the figure a person reads before training never looks at validation or test.

The first 12 columns of a 500-column table are the right ones only by luck (audit s11 M14:
with the signal in columns 300-305 the figure would have shown noise); the F tests are
scikit-learn's (f_classif, f_regression), one pass over the columns, no model.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from trainwise.findings import Finding

SIGNIFICANCE = 0.05  # uncorrected: the caption says how many such hits chance alone gives
# the audit findings whose columns are drawn first, the evidence key naming them, and why:
# an F test ranks by class relation only, so a column with typos x1000 and no class relation
# was never drawn (audit s15 M8: breast_cancer showed its first 12 of 30 features)
FLAGS = {"target_leak": ("columns", "leak suspect"),
         "extreme_values": ("columns", "extreme values"),
         "missing_values": ("top_features", "missing values"),
         "constant_features": ("features", "constant")}


@dataclass(frozen=True)
class Picked:
    features: np.ndarray  # column indices, most telling first
    num_rows: int  # training rows they were scored on
    num_significant: int  # columns with p < SIGNIFICANCE (uncorrected)
    num_features: int
    task: str
    rows: np.ndarray | None = field(default=None, compare=False)  # the rows (into data.x)
    # they were scored on, set by figures.picked: the histograms draw those rows
    flagged: dict[int, str] = field(default_factory=dict, compare=False)  # {column: why}
    # drawn first (flagged_features); the rest follow by F, or in file order unless scored
    scored: bool = True  # False: before the split, no rows to score on
    more_flagged: tuple[str, ...] = ()  # flagged past figures.MAX_FLAGGED: named, not drawn

    def _flagged(self) -> str:
        reasons = ", ".join(dict.fromkeys(self.flagged.values()))
        return f"{len(self.flagged)} flagged ({reasons}), then "

    def title(self) -> str:
        what = "separate the classes" if self.task == "classification" else \
            "follow the target"
        rest = len(self.features) - len(self.flagged)
        if not self.flagged:
            return (f"the {rest} of {self.num_features} features that {what} most "
                    f"(F test on the {self.num_rows} training rows)")
        # short: the figure's one-line title is ~140 characters wide
        others = f"the {rest} most telling ({self.num_rows} training rows)" if self.scored \
            else f"the first {rest} others"
        return f"{len(self.features)} of {self.num_features} features: {self._flagged()}{others}"

    def caption(self) -> str:
        """Flagged features take at most half the panels (figures.MAX_FLAGGED), so `rest`, the
        panels left to the F test or file order, is never 0 on a table of over 12 columns."""
        rest = len(self.features) - len(self.flagged)
        reasons = ", ".join(dict.fromkeys(self.flagged.values()))
        lead = f"The {len(self.flagged)} features the audit flagged ({reasons}) first" \
            f"{self._more()}, then t" if self.flagged else "T"
        if not self.scored:
            return (f"{lead}he first {rest} others of {self.num_features} in file order (the "
                    "split stage redraws them by how much they tell the classes apart on its "
                    "training rows).")
        expected = SIGNIFICANCE * self.num_features
        differ = "differ between the classes" if self.task == "classification" else \
            "correlate with the target"
        return (f"{lead}he {rest} features with the "
                f"largest F statistic on the {self.num_rows} training rows only (validation "
                f"and test unseen). {self.num_significant} of {self.num_features} features "
                f"{differ} at p < {SIGNIFICANCE:g} (uncorrected; about {expected:.0f} would "
                "by chance alone).")

    def _more(self) -> str:
        """' (3 more flagged, not drawn: g21, g22, g23)'."""
        if not self.more_flagged:
            return ""
        shown = ", ".join(self.more_flagged[:8]) + (" ..." if len(self.more_flagged) > 8
                                                    else "")
        return f" ({len(self.more_flagged)} more flagged, not drawn: {shown})"


def flagged_features(findings: Iterable[Finding], names: list[str]) -> dict[str, str]:
    """{feature: why} for the features of `names` the audit's findings name, in FLAGS'
    order (leaks first), the first reason for each."""
    known, flagged = set(names), {}
    ranked = sorted((f for f in findings if f.code in FLAGS), key=lambda f: list(FLAGS).index(
        f.code))
    for finding in ranked:
        key, why = FLAGS[finding.code]
        for name in finding.evidence.get(key, ()):
            if name in known:
                flagged.setdefault(name, why)
    return flagged


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
