"""Doubts about a table's target column, said out loud: a task guessed from whole numbers, and
labels that differ only in case or surrounding spaces (which become separate classes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.findings import Finding, warning

# infer_task counts whole-number targets with <= 20 values as classes. Up to 10 that is
# rarely wrong (0/1 flags, digits, star ratings); from 11 to 100 values they may as well be
# counts (days_left 0..14: 15 "classes" whose order the loss ignores) or class codes; above
# 100 whole numbers are amounts (whole dollars), and regression is no guess.
CLEAR_CLASSES = 10
CLEAR_AMOUNTS = 100
NUM_SHOWN = 5  # look-alike groups named in the message


def _whole_numbers(target: pd.Series) -> pd.Series | None:
    """The target's values when they are all whole numbers (ints, or floats like 3.0)."""
    if target.dtype.kind == "b" or not pd.api.types.is_numeric_dtype(target):
        return None
    values = target.dropna()
    whole = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    return values if whole and len(values) else None


def task_findings(target: pd.Series, task: str, column: str) -> list[Finding]:
    """A warning when `task` was inferred from whole numbers whose meaning is unclear."""
    values = _whole_numbers(target)
    if values is None:
        return []
    distinct = int(values.nunique())
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


def lookalike_label_findings(target: pd.Series, column: str) -> list[Finding]:
    """A warning per target whose text labels differ only in case or surrounding spaces
    ('yes', 'Yes '): they are kept apart, since only the user knows whether they mean one
    class."""
    if pd.api.types.is_numeric_dtype(target) or target.dtype.kind == "b":
        return []
    counts = target.dropna().astype(str).value_counts()
    folded = pd.Series(counts.index, index=counts.index).str.strip().str.casefold()
    groups = [list(members) for _, members in counts.groupby(folded.to_numpy()).groups.items()
              if len(members) > 1]
    if not groups:
        return []
    shown = "; ".join(" / ".join(f"{label!r} x{counts[label]}" for label in group)
                      for group in groups[:NUM_SHOWN])
    return [warning(
        "data", "lookalike_labels",
        f"target '{column}' has labels that differ only in case or surrounding spaces "
        f"({shown}): each is a separate class.",
        "If they mean the same class, clean the target column in the file (strip spaces, one "
        "case); if they are different classes, rename them so they differ in more than case.",
        groups=[[str(label) for label in group] for group in groups[:NUM_SHOWN]],
        counts={str(label): int(counts[label]) for group in groups for label in group})]
