"""Drift between the split's parts (audit s12 K2): do the validation and test rows look like
the training rows? Per numeric feature, per text column and for the label (the tests and
their thresholds: shifts.py). deepchecks' train_test_validation runs the same three checks
(FeatureDrift, NewCategoryTrainTest, LabelDrift); a time split on trending data is exactly
where the validation score stops describing the future. This module picks the rows and
columns tested, and words the one warning and its fix by how the split was made.

Tables larger than MAX_ROWS per part are compared on a seeded sample of that many rows; a
table wider than MAX_COLUMNS tests every text column and its first numbers (the message says
how many were left out); a feature vector that wide is not tested.
Pure: no state, one seeded generator for the row cap."""

from __future__ import annotations

import numpy as np

from trainwise.data.periods import GROUPED_KFOLD_FIX
from trainwise.data.shifts import (
    ALPHA,
    LARGE,
    NUM_LISTED,
    Column,
    Shift,
    flagged_shifts,
    shift_tests,
    table_columns,
)
from trainwise.data.split import PART_WORDS, TIMED
from trainwise.data.task import TaskData
from trainwise.findings import Finding, info, warning

MAX_ROWS = 20_000  # per part: at 20k rows a KS of ~0.05 already has p < 1e-6, so every shift
# above shifts.LARGE is found, and 200 columns x 2 parts take ~11 s (100k rows: ~52 s, measured)
MAX_COLUMNS = 200  # columns tested: a 784-pixel vector is not a table with trends (skipped)
NUM_LEFT_OUT_LISTED = 20  # untested columns named in the evidence (a 5000-wide table: 4800)


def _cap(rows: np.ndarray, seed: int) -> np.ndarray:
    if len(rows) <= MAX_ROWS:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_ROWS, replace=False))


def _fix(strategy: str, shifts: list[Shift], same_period: bool = False) -> str:
    """Advice by why the parts differ: a time split (the usual case) measures a later period,
    a group split other subjects; a random split should not drift (the rule's false-alarm
    rate is ~0), so there the rows themselves need a look. `same_period`: a group_time split
    whose held-out groups span training's period (audit s13 F8: one held-out store over the
    same days was told to drop the oldest rows), advised as a group split."""
    if strategy in TIMED and not (strategy == "group_time" and same_period):
        return _timed_fix(*_kinds(shifts))
    if strategy == "group_time":
        return ("The held-out groups differ from the training groups; they cover the same "
                "period as training, so this is not time but the groups themselves: the "
                "scores describe groups like those. Hold out more groups (raise "
                f"split.val_fraction / split.test_fraction), or cross-validate over groups: "
                f"{GROUPED_KFOLD_FIX}. Consider features that describe each group; then "
                "rerun from the split stage.")
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
        steps.append("The label's mix or rate changes with time (the shares per part above): "
                     "the model learns the training period's rate and is scored on another, "
                     "which moves its calibration and a threshold picked on validation; judge "
                     "it by scores that do not hang on the rate (balanced accuracy, average "
                     "precision). Check how the label relates to the "
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
            if s.test not in ("new levels", "class share") else s.detail for s in found) + ")")
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
                   label_told: bool = False, same_period: bool = False) -> list[Finding]:
    """One warning naming the columns (and the label) whose validation or test rows differ
    from the training rows, largest shift first; an info `no_drift` counting the tests when
    nothing is large and significant; none when no test could be made. `x`, `y`: {part:
    rows}, each part capped to MAX_ROWS rows by the caller.
    `label_told`: classes_missing_from_split already tells the label changing with time
    (label_over_time), so the label is not tested here: one cause, one finding, one fix
    (review s12 VD4). `same_period`: see _fix."""
    columns, left_out = capped_columns(columns)
    done = shift_tests(x, y, columns, task, class_names, with_label=not label_told)
    shifts = flagged_shifts(done)
    if not done:
        return []
    if not shifts:
        return [_no_drift(done, columns, left_out, label_told)]
    sizes = ", ".join(f"{PART_WORDS.get(p, p)} {len(rows)}" for p, rows in y.items())
    capped = f" (a seeded sample of {MAX_ROWS:,} rows per larger part)" if any(
        len(rows) == MAX_ROWS for rows in y.values()) else ""
    return [warning(
        "split", "drift",
        f"The validation/test rows differ from the training rows ({sizes} rows{capped}): "
        f"{_listed(shifts)}. {_consequence(shifts)}{_left_out_text(left_out, len(columns))}",
        _fix(strategy, shifts, same_period),
        shifts=[{"column": s.column, "part": s.part, "test": s.test,
                 "statistic": round(s.statistic, 4), "p_value": float(f"{s.p_value:.3g}"),
                 "detail": s.detail} for s in shifts], strategy=strategy,
        same_period=same_period,
        num_columns_left_out=len(left_out), columns_left_out=left_out[:NUM_LEFT_OUT_LISTED])]


def _no_drift(done: list[Shift], columns: list[Column], left_out: list[str],
              label_told: bool) -> Finding:
    """A clean result with its proof, as no_leakage gives its own (audit s16 D4: nothing told
    "no drift" from "not tested"): the tests made and the largest KS or Cramér's V (both
    0..1 with one bar, LARGE; the class-share ratio and new-level share are on other scales)."""
    held = " and ".join(PART_WORDS[p] for p in dict.fromkeys(s.part for s in done))
    texts = sum(bool(c.levels) for c in columns)
    what = ", ".join([f"{len(columns) - texts} numeric column{'s' * (len(columns) - texts != 1)}"
                      " by KS"] * (len(columns) > texts)
                     + [f"{texts} text column{'s' * (texts != 1)} by Cramér's V and new "
                        "levels"] * bool(texts)
                     + ["the label"] * (not label_told))
    scaled = [s for s in done if s.test in ("KS", "Cramér's V")]
    top = max(scaled, key=lambda s: s.statistic, default=None)
    largest = (f"; the largest is {top.test} {top.statistic:.2f} ({top.column}, "
               f"{PART_WORDS[top.part]})" if top else "")
    return info("split", "no_drift",
                f"No drift: {held} compared with training in {len(done)} tests ({what})"
                f"{largest}; none is both large (above {LARGE:g}) and significant (p < "
                f"{ALPHA:g} / {len(done)}, Bonferroni over the tests)."
                f"{_left_out_text(left_out, len(columns))}",
                num_tests=len(done), label_tested=not label_told,
                largest=None if top is None else {
                    "column": top.column, "part": top.part, "test": top.test,
                    "statistic": round(top.statistic, 4)},
                num_columns_left_out=len(left_out))


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
                seed: int = 0, label_told: bool = False,
                same_period: bool = False) -> list[Finding]:
    """drift_findings for a TaskData's parts (row indices into data.x; test None: the
    source's own x_test): tables, and feature vectors up to MAX_COLUMNS wide, each part
    capped to MAX_ROWS. `label_told`: see drift_findings; `same_period`: the split stage's
    verdict that the groups span one period (periods.py, meta split.same_period)."""
    if not len(parts["train"]):
        return []
    if data.kind not in ("table", "vector") or data.x.ndim != 2 or (
            data.kind == "vector" and data.x.shape[1] > MAX_COLUMNS):
        return [_not_tested(data)]  # pixels or embedding dimensions: their first 200 were
        # tested (image border, mostly constant; review s12 VD8), and no reader acts on the KS
        # of pixel 412
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
                          data.class_names, strategy, label_told, same_period)


NOT_TESTED = {"image": "images (pixels)", "sequence": "sequences (values over time steps)",
              "tokens": "token ids"}


def _not_tested(data: TaskData) -> Finding:
    """Why the parts were not compared, so a clean split stage is not read as "no drift"
    (audit s16 D4: images and embeddings were skipped silently)."""
    width = int(np.prod(data.x.shape[1:]))  # (N, F) vectors; an image's (N, C, H, W) too
    what = NOT_TESTED.get(data.kind, f"{width} features per row (pixels or embedding "
                                     f"dimensions, over {MAX_COLUMNS})")
    counts = (" and the class counts per part (meta.json data.class_counts)"
              if data.task == "classification" else "")
    return info("split", "drift_not_tested",
                f"Drift between the parts was not tested: the rows are {what}, where a test "
                "per position names nothing a reader can act on. If the parts were collected "
                f"apart (other days, sites or devices), compare a few rows of each{counts}.",
                kind=data.kind)
