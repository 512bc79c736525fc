"""Doubts about a target, said out loud: a task guessed from whole numbers, classification
forced on a target that looks continuous, labels that differ only in case or surrounding spaces
(which become separate classes), and targets of more than one column per row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.errors import DataError
from trainwise.data.markers import case_groups, case_groups_shown
from trainwise.findings import Finding, Severity, warning

# infer_task counts whole-number targets with <= MAX_WHOLE_CLASSES values as classes. Up to
# 10 that is rarely wrong (0/1 flags, digits, star ratings); from 11 to 100 values they may be
# counts (days_left 0..14: 15 "classes" whose order the loss ignores) or class codes; above
# 100 whole numbers are amounts (whole dollars), and regression is no guess.
MAX_WHOLE_CLASSES = 20
CLEAR_CLASSES = 10
CLEAR_AMOUNTS = 100
NUM_SHOWN = 5  # look-alike groups named in the message
# Above CLEAR_AMOUNTS, whole numbers that fill a range (every id from low to high present) and
# repeat this often on average read like class ids (0..999, ~20 rows each), not amounts.
ID_ROWS_PER_VALUE = 10
# Classification forced on a numeric target with more than CLEAR_CLASSES classes of which at
# least this share have under SPARSE_ROWS rows: a class seen once or twice cannot be learnt and
# lands on one side of the split only (diabetes + noise: 442 "classes" of one row each).
SPARSE_ROWS, SPARSE_SHARE = 3, 0.5
# A target of non-whole numbers is inferred as regression; with at most MAX_WHOLE_CLASSES
# values (the whole-number class limit), each on LEVEL_ROWS rows or more on average, it reads
# like levels or codes (ratings in half steps: 3 values on 200 rows trained as a regression
# without a word, audit s14 Z6), while a measured quantity repeats far less (200 prices: ~200).
LEVEL_ROWS = 10


def whole_numbers(target: pd.Series) -> pd.Series | None:
    """The target's values when they are all whole numbers (ints, or floats like 3.0)."""
    if target.dtype.kind == "b" or not pd.api.types.is_numeric_dtype(target):
        return None
    values = target.dropna()
    whole = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    return values if whole and len(values) else None


def target_findings(target: pd.Series, requested: str, task: str, column: str
                    ) -> list[Finding]:
    """The doubts a target gets, in both loaders (tables, arrays): with data.task `requested`
    "auto", a `task` inferred from whole numbers of unclear meaning; with "classification",
    a target that looks continuous."""
    if requested == "auto":
        return task_findings(target, task, column)
    return continuous_class_findings(target, column) if requested == "classification" else []


def task_findings(target: pd.Series, task: str, column: str) -> list[Finding]:
    """A warning when `task` was inferred from whole numbers whose meaning is unclear."""
    values = whole_numbers(target)
    if values is None:
        return _few_levels_findings(target, task, column)
    distinct = int(values.nunique())
    if distinct > CLEAR_AMOUNTS and task == "regression":
        return _class_id_findings(values, distinct, column)
    if not CLEAR_CLASSES < distinct <= CLEAR_AMOUNTS:
        return []
    low, high = values.min(), values.max()
    span = f"{distinct} distinct whole numbers from {low:g} to {high:g}"
    if task == "classification":
        message = (f"target '{column}' holds {span}: inferred as classification with "
                   f"{distinct} classes, whose order the loss ignores. If they are counts or "
                   "amounts (days, items), regression fits them better.")
        other = "regression"
    else:
        message = (f"target '{column}' holds {span}: inferred as regression (more than 20 "
                   "values). If they are class codes, each is a class of its own.")
        other = "classification"
    return [warning("data", "task_inferred", message,
                    f"Set the task: --set data.task={other} (task = \"{other}\" in [data]), or "
                    f"data.task = \"{task}\" to keep this choice without this warning.",
                    task=task, num_values=distinct, low=float(low), high=float(high))]


def _few_levels_findings(target: pd.Series, task: str, column: str) -> list[Finding]:
    """A warning when a regression was inferred from few non-whole values, each on many rows."""
    if task != "regression" or target.dtype.kind not in "f":
        return []
    values = target.dropna()
    levels = np.unique(values.to_numpy()) + 0.0  # -0.0 and 0.0 are one value, shown 0
    if len(levels) > MAX_WHOLE_CLASSES or len(values) < LEVEL_ROWS * len(levels):
        return []
    shown = ", ".join(f"{v:g}" for v in levels[:NUM_SHOWN]) + (
        ", ..." if len(levels) > NUM_SHOWN else "")
    return [warning(
        "data", "task_inferred",
        f"target '{column}' holds only {len(levels)} distinct values ({shown}) on "
        f"{len(values)} rows, not whole numbers: inferred as regression. If they are classes "
        "(levels, codes), classification fits them; if they are steps of a measure (ratings "
        "in half steps), regression is right.",
        "If they are classes: --set data.task=classification (task = \"classification\" in "
        "[data]); set data.task = \"regression\" to keep this choice without this warning.",
        task=task, num_values=len(levels), low=float(levels[0]), high=float(levels[-1]))]


def _class_id_findings(values: pd.Series, distinct: int, column: str) -> list[Finding]:
    """An info when many whole numbers read like class ids: every value of the range present,
    each repeated often. Amounts (whole dollars) leave gaps; ids 0..K-1 do not."""
    low, high = values.min(), values.max()
    filled = distinct == int(high - low) + 1
    if not filled or len(values) < ID_ROWS_PER_VALUE * distinct:
        return []
    return [Finding(
        "data", Severity.INFO, "task_inferred",
        f"target '{column}' holds {distinct} distinct whole numbers, every one from {low:g} to "
        f"{high:g}, about {len(values) // distinct} rows each: inferred as regression (more "
        "than 100 values). If they are class ids, each is a class of its own.",
        {"task": "regression", "num_values": distinct, "low": float(low), "high": float(high)},
        "If they are class ids: --set data.task=classification (task = \"classification\" in "
        "[data]); set data.task = \"regression\" to keep this choice without this note.")]


def continuous_class_findings(target: pd.Series, column: str) -> list[Finding]:
    """A warning when classification was asked of a numeric target whose classes mostly hold
    one or two rows: it looks continuous, and such classes can be neither learnt nor tested."""
    if target.dtype.kind == "b" or not pd.api.types.is_numeric_dtype(target):
        return []
    counts = target.value_counts(dropna=True)
    sparse = int((counts < SPARSE_ROWS).sum())
    if len(counts) <= CLEAR_CLASSES or sparse < SPARSE_SHARE * len(counts):
        return []
    whole = whole_numbers(target) is not None
    kind = "whole numbers" if whole else "values, not whole numbers"
    return [warning(
        "data", "target_looks_continuous",
        f"target '{column}' is set to classification, but its {len(counts)} classes are "
        f"distinct {kind}, and {sparse} of them have fewer than {SPARSE_ROWS} rows (median "
        f"{counts.median():g}): the target looks continuous. A class seen once or twice cannot "
        "be learnt, and the split puts it on one side only, so accuracy is near zero.",
        "Set data.task = \"regression\" (--set data.task=regression) and rerun from the data "
        "stage; keep classification only if these are class codes, and then gather more rows "
        "per class or merge rare classes.",
        num_classes=len(counts), sparse_classes=sparse, median_rows=float(counts.median()))]


def one_target_per_row(y: np.ndarray, rows: int) -> tuple[np.ndarray, str | None]:
    """y as (rows,), and a note when it came as one column (rows, 1). More columns are refused
    by what they look like: `trainwise run` trains one class or one number per row."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape == (rows, 1):
        return y[:, 0], (f"y of shape ({rows}, 1) was read as one target per row, flattened to "
                         f"({rows},).")
    if y.ndim == 1 and len(y) == rows:
        return y, None
    if y.ndim == 2 and len(y) == rows:
        raise DataError(_columns_message(y))
    raise DataError(f"y has shape {y.shape} for {rows} rows of X; expected ({rows},): one label "
                    "or value per row. Check that X and y hold the same rows, in order.")


def _columns_message(y: np.ndarray) -> str:
    """Why an (N, K) target is refused and what to do, for one-hot, multi-hot and floats."""
    rows, width = y.shape
    binary = y.dtype.kind in "biuf" and bool(np.isin(y, (0, 1)).all())
    unsupported = ("trainwise run trains one target per row (one class, or one number), so "
                   "multi-label and multi-output targets are not supported")
    if binary and bool((y.sum(axis=1) == 1).all()):
        return (f"y has shape {y.shape}: each row has exactly one 1, a one-hot encoding of "
                f"{width} classes. Pass the class index instead: y.argmax(axis=1).")
    if binary:
        return (f"y has shape {y.shape}: {width} columns of 0/1 per row, a multi-label target; "
                f"{unsupported}. Train one run per label, with y[:, k] as a binary target, or "
                "keep your own training loop and add trainwise.Monitor to it.")
    return (f"y has shape {y.shape}: {width} values per row, a multi-output target; "
            f"{unsupported}. Train one run per output, with y[:, k] as the target, or keep your "
            "own training loop and add trainwise.Monitor to it, which handles multi-output "
            "regression.")


def lookalike_label_findings(target: pd.Series, column: str) -> list[Finding]:
    """A warning per target whose text labels differ only in case or surrounding spaces
    ('yes', 'Yes '): they are kept apart, since only the user knows whether they mean one
    class."""
    if pd.api.types.is_numeric_dtype(target) or target.dtype.kind == "b":
        return []
    counts = target.dropna().astype(str).value_counts()
    groups = case_groups(counts)
    if not groups:
        return []
    shown = case_groups_shown(groups, counts)
    return [warning(
        "data", "lookalike_labels",
        f"target '{column}' has labels that differ only in case or surrounding spaces "
        f"({shown}): each is a separate class.",
        "If they mean the same class, clean the target column in the file (strip spaces, one "
        "case); if they are different classes, rename them so they differ in more than case.",
        groups=groups[:NUM_SHOWN],
        counts={str(label): int(counts[label]) for group in groups for label in group})]
