"""Drift between the split's parts (audit s12 K2): do the validation and test rows look like
the training rows? Per numeric feature a two-sample KS test, per text column (its one-hot
group) Cramér's V and the rows whose level training never saw, and the label (class shares,
or the target's KS). deepchecks' train_test_validation runs the same three checks
(FeatureDrift, NewCategoryTrainTest, LabelDrift); a time split on trending data is exactly
where the validation score stops describing the future.

A column is flagged only when the effect is large (KS or Cramér's V > 0.2, deepchecks'
default; a new level in > 1% of a part's rows) AND significant for the rows at hand (p < 0.001
after a Bonferroni correction over every test made), so a 15-row validation part does not
fire on noise. False alarms measured (tests/test_drift.py reruns half): random and stratified
splits (val 0.1, test 0.2) of scikit-learn's iris, wine and breast_cancer, random ones of
diabetes, 20 split seeds each: 0 warnings in 140 splits (1 at p < 0.01, see ALPHA).
Tables larger than MAX_ROWS per part are compared on a seeded sample of that many rows; a
table wider than MAX_COLUMNS tests every text column and its first numbers (the message says
how many were left out); a feature vector that wide is not tested.
Pure: no state, one seeded generator for the row cap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2_contingency, hypergeom, ks_2samp

from trainwise.data.split import PART_WORDS, TIMED
from trainwise.data.task import TaskData
from trainwise.data.timesplit import format_time
from trainwise.findings import Finding, warning

LARGE = 0.2  # KS or Cramér's V above this is a large shift (deepchecks' default threshold)
NEW_LEVEL_SHARE = 0.01  # a level training never saw in > 1% of a part's rows
ALPHA = 0.001  # family-wise, before the Bonferroni correction over every test made: 0.01
# gave 1 alarm in 140 random splits of the bundled tables (wine seed 9, KS 0.38 on 36 rows,
# p 3e-4), as a 1% rate should; 0.001 keeps a split clean 999 times in 1000, and real drift
# (KS 0.62 over 400 test rows) has p ~ 1e-113
MAX_ROWS = 20_000  # per part: at 20k rows a KS of ~0.05 already has p < 1e-6, so every shift
# above LARGE is found, and 200 columns x 2 parts take ~11 s (100k rows: ~52 s, measured)
MAX_COLUMNS = 200  # columns tested: a 784-pixel vector is not a table with trends (skipped)
NUM_LISTED = 3  # columns named in the message; the evidence holds every one flagged
NUM_LEFT_OUT_LISTED = 20  # untested columns named in the evidence (a 5000-wide table: 4800)


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
    """Group one-hot features back into their text column (tables.py names them
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


def _cap(rows: np.ndarray, seed: int) -> np.ndarray:
    if len(rows) <= MAX_ROWS:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_ROWS, replace=False))


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
    return [_cramers_v("the label", p, y["train"].astype(np.int64), y[p].astype(np.int64),
                       names) for p in parts]


def _flagged(shift: Shift, alpha: float) -> bool:
    large = shift.statistic > (NEW_LEVEL_SHARE if shift.test == "new levels" else LARGE)
    return large and shift.p_value < alpha


def find_shifts(x: dict[str, np.ndarray], y: dict[str, np.ndarray], columns: list[Column],
                task: str, class_names: list[str], with_label: bool = True) -> list[Shift]:
    """The large, significant shifts from train to each other part ({part: (N, F) rows} and
    {part: (N,) labels}, "train" among them), largest first."""
    x = {p: rows for p, rows in x.items() if len(rows)}
    tests = [s for c in columns for s in _column_shifts(x, c)]
    if with_label:
        tests += _label_shifts({p: y[p] for p in x}, task, class_names)
    done = [s for s in tests if s is not None]
    alpha = ALPHA / max(1, len(done))  # Bonferroni over every test made
    return sorted((s for s in done if _flagged(s, alpha)), key=lambda s: -s.statistic)


def _fix(strategy: str, shifts: list[Shift]) -> str:
    """Advice by why the parts differ: a time split (the usual case) measures a later period,
    a group split other subjects; a random split should not drift (the rule's false-alarm
    rate is ~0), so there the rows themselves need a look."""
    if strategy in TIMED:
        return _timed_fix(*_kinds(shifts))
    if "group" in strategy:  # group, stratified_group
        return ("The held-out groups differ from the training groups: the scores describe "
                "groups like those. If they should be alike, check how groups were collected "
                "or raise split.val_fraction / split.test_fraction so each part holds more "
                "groups; then rerun from the split stage.")
    return (f"A random split should not differ this much by chance (p < {ALPHA:g} after a "
            "correction for every column tested): check for rows that belong together (give "
            "them split.group_column) or an order the split should follow "
            "(split.time_column), then rerun from the split stage.")


def _kinds(shifts: list[Shift]) -> tuple[bool, bool]:
    """(an input column shifted, the label shifted)."""
    label = any(s.column == "the label" for s in shifts)
    return any(s.column != "the label" for s in shifts), label


def _timed_fix(inputs: bool, label: bool) -> str:
    """A time split: advice on inputs only when an input shifted (review s12 VD4: a label-only
    drift was told to find features that do not trend), on the label as
    part_findings._missing_fix words it (ask whether the label depends on the date)."""
    steps = ["The split is by time, so validation and test describe a later period."]
    if inputs:
        steps.append("Their inputs differ: expect the model to transfer poorly and read their "
                     "scores as that. Consider a more recent training window (drop the oldest "
                     "rows), features that do not trend (differences, ratios, rates), and "
                     "retraining as new data comes; a level first seen after training gets no "
                     "learned weight.")
    if label:
        steps.append("The label's mix changes with time: check how the label relates to the "
                     "date. If the task is forecasting, the later scores rightly show this "
                     "change; if rows do not depend on when they were recorded, split at random "
                     "instead (`--set split.time_column=none`).")
    return " ".join(steps) + (" Then rerun from the data stage." if inputs
                              else " Then rerun the split stage.")


def _listed(shifts: list[Shift]) -> str:
    by_column: dict[str, list[Shift]] = {}
    for shift in shifts:
        by_column.setdefault(shift.column, []).append(shift)
    words = []
    for column, found in list(by_column.items())[:NUM_LISTED]:
        words.append(f"{column} (" + "; ".join(
            f"{s.test} {s.statistic:.2f} in {PART_WORDS[s.part]}: {s.detail}"
            if s.test != "new levels" else s.detail for s in found) + ")")
    more = len(by_column) - NUM_LISTED
    return "; ".join(words) + (f"; and {more} more column{'s' * (more != 1)}" if more > 0
                               else "")


def _consequence(shifts: list[Shift]) -> str:
    inputs, label = _kinds(shifts)
    return " ".join(
        ["A model meets inputs unlike those it trained on."] * inputs
        + ["The label's mix differs (label drift): a score there weighs the classes (or "
           "target range) unlike training, and the model's learned prior is off."] * label)


def drift_findings(x: dict[str, np.ndarray], y: dict[str, np.ndarray], columns: list[Column],
                   task: str, class_names: list[str], strategy: str,
                   label_told: bool = False) -> list[Finding]:
    """One warning naming the columns (and the label) whose validation or test rows differ
    from the training rows, largest shift first; none when nothing is large and
    significant. `x`, `y`: {part: rows}, each part capped to MAX_ROWS rows by the caller.
    `label_told`: classes_missing_from_split already tells the label changing with time
    (label_over_time), so the label is not tested here: one cause, one finding, one fix
    (review s12 VD4)."""
    columns, left_out = capped_columns(columns)
    shifts = find_shifts(x, y, columns, task, class_names, with_label=not label_told)
    if not shifts:
        return []
    sizes = ", ".join(f"{PART_WORDS.get(p, p)} {len(rows)}" for p, rows in y.items())
    capped = f" (a seeded sample of {MAX_ROWS:,} rows per larger part)" if any(
        len(rows) == MAX_ROWS for rows in y.values()) else ""
    return [warning(
        "split", "drift",
        f"The validation/test rows differ from the training rows ({sizes} rows{capped}): "
        f"{_listed(shifts)}. {_consequence(shifts)}{_left_out_text(left_out, len(columns))}",
        _fix(strategy, shifts),
        shifts=[{"column": s.column, "part": s.part, "test": s.test,
                 "statistic": round(s.statistic, 4), "p_value": float(f"{s.p_value:.3g}"),
                 "detail": s.detail} for s in shifts], strategy=strategy,
        num_columns_left_out=len(left_out), columns_left_out=left_out[:NUM_LEFT_OUT_LISTED])]


def capped_columns(columns: list[Column]) -> tuple[list[Column], list[str]]:
    """At most MAX_COLUMNS columns: every text column (new levels show only there, and a
    wide table's numbers came first, so a plain [:200] dropped them all: review s12 VD8),
    then the numbers in file order; and the names of the numbers left out."""
    budget = max(0, MAX_COLUMNS - sum(bool(c.levels) for c in columns))
    numbers = [c for c in columns if not c.levels]
    dropped = set(numbers[budget:])
    return [c for c in columns if c not in dropped], [c.name for c in numbers[budget:]]


def _left_out_text(left_out: list[str], num_tested: int) -> str:
    if not left_out:
        return ""
    return (f" Only {num_tested} of {num_tested + len(left_out)} columns were tested (every "
            f"text column, then numbers in file order up to {MAX_COLUMNS}); "
            f"{len(left_out)} numeric columns from '{left_out[0]}' on were not.")


def split_drift(data: TaskData, parts: dict[str, np.ndarray | None], strategy: str,
                seed: int = 0, label_told: bool = False) -> list[Finding]:
    """drift_findings for a TaskData's parts (row indices into data.x; test None: the
    source's own x_test): tables, and feature vectors up to MAX_COLUMNS wide, each part
    capped to MAX_ROWS. `label_told`: see drift_findings."""
    if data.kind not in ("table", "vector") or data.x.ndim != 2 or not len(parts["train"]):
        return []
    if data.kind == "vector" and data.x.shape[1] > MAX_COLUMNS:
        return []  # pixels or embedding dimensions: their first 200 were tested (image border,
        # mostly constant; review s12 VD8), and no reader acts on the KS of pixel 412
    names = data.feature_names or [f"x{j}" for j in range(data.x.shape[1])]
    x, y = {}, {}
    for part, rows in parts.items():
        if rows is None and part == "test" and data.x_test is not None:
            keep = _cap(np.arange(len(data.y_test)), seed)
            x[part], y[part] = data.x_test[keep], np.asarray(data.y_test)[keep]
        elif rows is not None and len(rows):
            keep = _cap(np.asarray(rows), seed)
            x[part], y[part] = data.x[keep], np.asarray(data.y)[keep]
    return drift_findings(x, y, table_columns(names, data.columns), data.task,
                          data.class_names, strategy, label_told)


MIN_EXPECTED = 5  # rows a class would have in a part at its overall share: 0 where 5 were
# expected has Poisson chance e^-5 < 1%, so it is no longer bad luck but the label moving


def label_over_time(y: np.ndarray, times: np.ndarray, parts: dict[str, np.ndarray | None],
                    class_names: list[str], counts: dict[str, list[int]] | None = None
                    ) -> dict[str, str]:
    """For a time split (row indices into y/times per part): each class missing from a part
    where its share would put >= MIN_EXPECTED rows, with when its rows end or start, e.g.
    {'0': "its last row is at 2023-02-11 08:00, before validation starts"}: the label
    changes with time (audit s12 K3: a class of 501 rows of 1000 was told to collect rows).
    `counts`: {part: per-class row counts}, as the split stage has them; only classes some
    part lacks are gathered (review s12 VD11: recounting all 1000 classes of 1M rows took
    3.1 s to find none)."""
    y, times = np.asarray(y), np.asarray(times)
    rows = {p: np.asarray(r) for p, r in parts.items() if r is not None and len(r)}
    if not rows:
        return {}
    if counts is None:
        counts = {p: np.bincount(y[r], minlength=len(class_names)).tolist()
                  for p, r in rows.items()}
    per_part = np.array([counts[p][:len(class_names)] for p in rows])  # (parts, classes)
    sizes = np.array([len(r) for r in rows.values()])
    expected = per_part.sum(axis=0) * sizes[:, None] / sizes.sum()  # at the class's share
    lacking = (per_part == 0) & (expected >= MIN_EXPECTED)
    names = list(rows)
    spans = {}
    for k in np.flatnonzero(lacking.any(axis=0)):
        when = times[np.concatenate([r[y[r] == k] for r in rows.values()])]
        spans[str(class_names[k])] = _when(when, {
            names[i]: times[rows[names[i]]] for i in np.flatnonzero(lacking[:, k])}, times)
    return spans


def _when(when: np.ndarray, lacking: dict[str, np.ndarray], times: np.ndarray) -> str:
    """Where a class's rows sit against the parts that lack it (`when`: its times;
    `lacking`: each such part's times)."""
    first, last = format_time(when.min(), times), format_time(when.max(), times)
    later = [p for p, t in lacking.items() if t.min() > when.max()]
    if later:
        return f"its last row is at {last}, before {PART_WORDS.get(later[0], later[0])} starts"
    if "train" in lacking and when.min() > lacking["train"].max():
        return f"its first row is at {first}, after training ends"
    return f"its rows run from {first} to {last}"
