"""The statistics behind drift.py (audit s12 K2): per numeric feature a two-sample KS test,
per text column (its one-hot group) Cramér's V and the rows whose level training never saw,
and the label (class shares, or the target's KS), each as a Shift from train to one part.

A shift is flagged only when the effect is large (KS or Cramér's V > 0.2, deepchecks'
default; a new level in > 1% of a part's rows; a class 2x as common or rare, >= 5 rows
expected: V stays under 0.2 for a rare class however its rate moves) AND significant for
the rows at hand (p < 0.001 after a Bonferroni correction over every test made), so a 15-row
validation part does not fire on noise. False alarms measured (tests/test_drift.py reruns
half): random and stratified splits (val 0.1, test 0.2) of scikit-learn's iris, wine and
breast_cancer, random ones of diabetes, 20 split seeds each: 0 warnings in 140 splits (1 at
p < 0.01, see ALPHA); with the class-share rule (audit s13 F7) 0 in 180, digits added,
and 0 in 50 random splits of 5000 rows with a 1% class.
Pure: no state, no random draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2 as chi2_dist
from scipy.stats import chi2_contingency, hypergeom, ks_2samp

from trainwise.data.split import PART_WORDS

LARGE = 0.2  # KS or Cramér's V above this is a large shift (deepchecks' default threshold)
SHARE_RATIO = 2.0  # a class twice (or half) as common in a part as in train: the label moved
MIN_EXPECTED = 5  # rows of the class expected in each part at its pooled share: fewer, and
# a ratio is a row or two (and the chi-square's approximation fails)
NEW_LEVEL_SHARE = 0.01  # a level training never saw in > 1% of a part's rows
ALPHA = 0.001  # family-wise, before the Bonferroni correction over every test made: 0.01
# gave 1 alarm in 140 random splits of the bundled tables (wine seed 9, KS 0.38 on 36 rows,
# p 3e-4), as a 1% rate should; 0.001 keeps a split clean 999 times in 1000, and real drift
# (KS 0.62 over 400 test rows) has p ~ 1e-113
NUM_LISTED = 3  # columns named in the message; the evidence holds every one flagged


@dataclass(frozen=True)
class Column:
    """One column of the file as it reaches the model: a number (one feature) or a text
    column (its one-hot features, one per level, `levels` their names)."""

    name: str
    features: tuple[int, ...]
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shift:
    column: str
    part: str
    test: str  # "KS", "Cramér's V" or "new levels"
    statistic: float
    p_value: float
    detail: str


def table_columns(feature_names: list[str], columns: list[dict[str, str]]) -> list[Column]:
    """Group one-hot features back into their text column (table_features.py names them
    '<column>_<level>'; the longest matching prefix wins, so 'cat' and 'cat_x' stay apart);
    every other feature is a number."""
    one_hot = sorted((str(c["column"]) for c in columns
                      if str(c.get("treatment", "")).startswith("one-hot")), key=len,
                     reverse=True)
    kept = {str(c["column"]) for c in columns} - set(one_hot)  # a number named 'cat_n'
    groups: dict[str, list[int]] = {}
    numbers = []
    for j, name in enumerate(feature_names):
        owner = None if name in kept else next(
            (c for c in one_hot if name.startswith(f"{c}_")), None)
        if owner is None:
            numbers.append(Column(name, (j,)))
        else:
            groups.setdefault(owner, []).append(j)
    texts = [Column(c, tuple(js), tuple(feature_names[j][len(c) + 1:] for j in js))
             for c, js in groups.items()]
    return numbers + texts  # drift_findings caps them (capped_columns)


def _codes(x: np.ndarray, column: Column) -> np.ndarray:
    """Each row's level index in the one-hot group; len(levels) for a row with none set (a
    level dropped as constant)."""
    block = np.nan_to_num(x[:, list(column.features)])
    return np.where(block.max(axis=1) > 0, block.argmax(axis=1), len(column.features))


def _ks(name: str, part: str, a: np.ndarray, b: np.ndarray) -> Shift | None:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    result = ks_2samp(a, b)
    return Shift(name, part, "KS", float(result.statistic), float(result.pvalue),
                 f"median {np.median(a):.3g} in train, {np.median(b):.3g} in "
                 f"{PART_WORDS[part]}")


def _cramers_v(name: str, part: str, a: np.ndarray, b: np.ndarray,
               levels: list[str]) -> Shift | None:
    """Cramér's V of part x level (2 parts: sqrt(chi2 / n)), and the level whose share moved
    most, in words."""
    size = len(levels)
    table = np.stack([np.bincount(a, minlength=size), np.bincount(b, minlength=size)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return None
    chi2, p_value = chi2_contingency(table, correction=False)[:2]
    share_a, share_b = (np.bincount(c, minlength=size) / len(c) for c in (a, b))
    k = int(np.argmax(np.abs(share_b - share_a)))
    return Shift(name, part, "Cramér's V", float(np.sqrt(chi2 / table.sum())), float(p_value),
                 f"'{levels[k]}' {share_a[k]:.0%} of train, {share_b[k]:.0%} of "
                 f"{PART_WORDS[part]}")


def _new_levels(name: str, part: str, a: np.ndarray, b: np.ndarray,
                levels: list[str]) -> Shift | None:
    """Rows of `b` whose level never occurs in `a`. p: the chance that all k rows of those
    levels land outside training were the parts drawn at random, C(m, k) / C(n + m, k)."""
    new = np.setdiff1d(np.unique(b), np.unique(a))
    k = int(np.isin(b, new).sum())
    if not k:
        return None
    p_value = float(hypergeom.pmf(k, len(a) + len(b), k, len(b)))
    names = ", ".join(f"'{levels[c]}'" for c in new[:NUM_LISTED])
    return Shift(name, part, "new levels", k / len(b), p_value,
                 f"{names} in {k} of {len(b)} {PART_WORDS[part]} rows ({k / len(b):.1%}), "
                 "never in training")


def _column_shifts(x: dict[str, np.ndarray], column: Column) -> list[Shift | None]:
    parts = [p for p in x if p != "train"]
    if not column.levels:
        j = column.features[0]
        return [_ks(column.name, p, x["train"][:, j], x[p][:, j]) for p in parts]
    levels = [*column.levels, "(none)"]
    codes = {p: _codes(x[p], column) for p in x}
    return [test(column.name, p, codes["train"], codes[p], levels)
            for p in parts for test in (_cramers_v, _new_levels)]


def _label_shifts(y: dict[str, np.ndarray], task: str, class_names: list[str]
                  ) -> list[Shift | None]:
    parts = [p for p in y if p != "train"]
    if task == "regression":
        return [_ks("the label", p, y["train"].astype(float), y[p].astype(float))
                for p in parts]
    size = int(max(v.max() for v in y.values())) + 1  # integer codes 0..K-1
    names = [str(c) for c in class_names] or [str(k) for k in range(size)]
    codes = {p: v.astype(np.int64) for p, v in y.items()}
    return [test("the label", p, codes["train"], codes[p], names)
            for p in parts for test in (_cramers_v, _class_share)]


def _class_share(name: str, part: str, a: np.ndarray, b: np.ndarray,
                 levels: list[str]) -> Shift | None:
    """The class whose share in `b` is furthest from its share in `a` as a ratio, among those
    with >= MIN_EXPECTED rows expected in either part at their pooled share (audit s13 F7:
    Cramér's V stays under 0.2 for a rare class, so a failure rate going 1.2% -> 5.7% passed).
    p: a 2x2 chi-square (this class vs the rest, train vs part), times the classes tested."""
    counts = np.stack([np.bincount(a, minlength=len(levels)),
                       np.bincount(b, minlength=len(levels))]).astype(float)  # (2, K)
    sizes = counts.sum(axis=1, keepdims=True)
    expected = sizes * counts.sum(axis=0) / sizes.sum()  # (2, K) at the pooled share
    tested = np.flatnonzero(expected.min(axis=0) >= MIN_EXPECTED)
    if not len(tested):
        return None
    share = counts[:, tested] / sizes  # (2, T)
    ratio = np.maximum(share[0], share[1]) / np.maximum(np.minimum(share[0], share[1]),
                                                        0.5 / sizes.min())  # 0 rows: 1/2
    rest = expected[:, tested] * (sizes.sum() - counts[:, tested].sum(axis=0)) \
        / counts[:, tested].sum(axis=0)  # (2, T) expected rows of the other classes
    chi2 = ((counts[:, tested] - expected[:, tested]) ** 2
            * (1 / expected[:, tested] + 1 / rest)).sum(axis=0)
    k = int(np.argmax(ratio))
    p_value = min(1.0, float(chi2_dist.sf(chi2[k], 1)) * len(tested))
    c = tested[k]
    return Shift(name, part, "class share", float(ratio[k]), p_value,
                 f"'{levels[c]}' {share[0, k]:.2%} of train ({int(counts[0, c])} of "
                 f"{int(sizes[0, 0])} rows), {share[1, k]:.2%} of {PART_WORDS[part]} "
                 f"({int(counts[1, c])} of {int(sizes[1, 0])}), a {ratio[k]:.1f}x change")


def _one_label_test(shifts: list[Shift]) -> list[Shift]:
    """The class-share shift of the label where one is flagged for a part, else its
    Cramér's V: one line per part for one cause."""
    shared = {s.part for s in shifts if s.test == "class share"}
    return [s for s in shifts if not (s.column == "the label" and s.test == "Cramér's V"
                                      and s.part in shared)]


def _flagged(shift: Shift, alpha: float) -> bool:
    large = shift.statistic > {"new levels": NEW_LEVEL_SHARE}.get(shift.test, LARGE) \
        if shift.test != "class share" else shift.statistic >= SHARE_RATIO
    return large and shift.p_value < alpha


def shift_tests(x: dict[str, np.ndarray], y: dict[str, np.ndarray], columns: list[Column],
                task: str, class_names: list[str], with_label: bool = True) -> list[Shift]:
    """Every test made, flagged or not: drift.py's proof of a clean result counts them."""
    x = {p: rows for p, rows in x.items() if len(rows)}
    tests = [s for c in columns for s in _column_shifts(x, c)]
    if with_label:
        tests += _label_shifts({p: y[p] for p in x}, task, class_names)
    return [s for s in tests if s is not None]


def flagged_shifts(done: list[Shift]) -> list[Shift]:
    """The large, significant ones of `done`, largest first."""
    alpha = ALPHA / max(1, len(done))  # Bonferroni over every test made
    return _one_label_test(sorted((s for s in done if _flagged(s, alpha)),
                                  key=lambda s: -s.statistic))
