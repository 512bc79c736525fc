"""Findings about the parts a split made: too small to score on, classes missing from a part,
folds made unequal by one large group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.split import SplitIndices
from trainwise.data.timesplit import format_time
from trainwise.findings import Finding, info, warning

NUM_LISTED = 5  # classes named in a finding's message; the evidence lists them all
MIN_SCORED_ROWS = 30  # a val or test part below this is mostly noise: one row moves accuracy
# by > 3 points and a score's 95% interval spans up to +-98/sqrt(n) points (+-18 at 30)


def _noise(n: int, task: str) -> str:
    """How much one score on n rows can move. Accuracy: one row is 100/n points and a 95%
    interval spans up to +-98/sqrt(n) points (p = 0.5). Regression: an RMSE from n normal
    errors has a 95% interval of about +-1.96/sqrt(2n) of itself (chi-square, large n)."""
    if task == "regression":
        return f"an RMSE from {n} rows is uncertain by about +-{196 / (2 * n) ** 0.5:.0f}%"
    return (f"one row = {100 / n:.0f} points of accuracy, 95% interval up to "
            f"+-{98 / n ** 0.5:.0f} points")


def uneven_folds(folds: list[SplitIndices], groups: np.ndarray | None,
                 pool: np.ndarray) -> list[Finding]:
    """A warning when whole groups make the folds' validation parts very unequal (one group
    holding most rows): their scores then weigh different amounts of data."""
    sizes = [len(f.val) for f in folds]
    if groups is None or not sizes or max(sizes) <= 1.5 * sum(sizes) / len(sizes):
        return []
    keys, counts = np.unique(np.asarray(groups)[pool], return_counts=True)
    big = int(np.argmax(counts))
    return [warning(
        "split", "uneven_folds",
        f"The {len(folds)} folds validate on {min(sizes)} to {max(sizes)} rows, not "
        f"~{sum(sizes) / len(sizes):.0f} each: groups stay whole, and group '{keys[big]}' holds "
        f"{counts[big]} of {len(pool)} rows, so fold scores weigh very different data.",
        "If that group is not one unit, give its parts their own group keys; otherwise use "
        "fewer folds (split.num_folds) or read each fold's score with its size. Then rerun "
        "the split stage.", val_sizes=sizes, largest_group=str(keys[big]),
        largest_group_rows=int(counts[big]))]


def small_parts(sizes: dict[str, int], task: str = "classification") -> list[Finding]:
    """A warning when the val or test part is too small to score on (MIN_SCORED_ROWS)."""
    small = {part: n for part, n in sizes.items() if part in ("val", "test") and
             0 < n < MIN_SCORED_ROWS}
    if not small:
        return []
    listed = ", ".join(f"{part} {n} rows ({_noise(n, task)})" for part, n in small.items())
    return [warning(
        "split", "small_scored_parts",
        f"Scores on these parts are mostly noise: {listed}. Early stopping and the short runs "
        "read the validation loss, and the test score is one draw.",
        "Collect more rows, or raise split.val_fraction (e.g. 0.2; and test_fraction for a "
        "carved test part), then rerun from the split stage; read small scores with their "
        "interval.", **{f"num_{part}": n for part, n in small.items()})]


def missing_classes(counts: dict[str, list[int]], class_names: list[str],
                    strategy: str = "") -> list[Finding]:
    """A warning naming the classes with no row in some part ({part: per-class counts}): a
    score never measures a class its part lacks, whatever the split strategy promised. Under
    a stratified split it also names the classes kept in train on purpose (one row left for
    train and validation; split.stratified_split), so nobody reads it as bad luck."""
    totals = np.sum([counts[part] for part in counts], axis=0)
    absent = [(name, [part for part in counts if counts[part][k] == 0], int(totals[k]))
              for k, name in enumerate(class_names)
              if totals[k] and any(counts[part][k] == 0 for part in counts)]
    if not absent:
        return []
    listed = "; ".join(f"'{name}' ({total} row{'s' * (total != 1)}) has none in "
                       f"{', '.join(parts)}" for name, parts, total in absent[:NUM_LISTED])
    more = f" (and {len(absent) - NUM_LISTED} more)" if len(absent) > NUM_LISTED else ""
    kept = _kept_in_train(counts, class_names) if strategy == "stratified" else []
    return [warning(
        "split", "classes_missing_from_split",
        f"Some classes have no rows in a part: {listed}{more}. A part's score never "
        f"measures the classes it lacks.{_kept_text(kept)}",
        "Collect more rows of these classes (2 or more per part lets the split place them "
        "everywhere), or merge each into a related class or drop it before splitting; when "
        "the part itself is tiny, raise split.val_fraction (or test_fraction) instead. Then "
        "rerun the split stage.",
        classes={name: parts for name, parts, _ in absent}, kept_in_train=kept)]


def _kept_in_train(counts: dict[str, list[int]], class_names: list[str]) -> list[str]:
    return [name for k, name in enumerate(class_names)
            if counts["train"][k] == 1 and "val" in counts and counts["val"][k] == 0]


def _kept_text(kept: list[str]) -> str:
    if not kept:
        return ""
    names = ", ".join(f"'{name}'" for name in kept[:NUM_LISTED])
    more = f" (and {len(kept) - NUM_LISTED} more)" if len(kept) > NUM_LISTED else ""
    return (f" The split kept {names}{more} in train on purpose: one row left for train and "
            "validation cannot be on both sides, so it goes where the model at least sees it, "
            "and every other class stays stratified (keeps its share in every part).")


PART_WORDS = {"train": "train", "val": "validation", "test": "test"}


def part_extents(parts: dict[str, np.ndarray | None], groups: np.ndarray | None,
                 times: np.ndarray | None) -> list[Finding]:
    """What went where: per part its rows, groups and first..last time, so a reader sees which
    subjects and periods each score covers without opening split.npz."""
    if groups is None and times is None:
        return []
    words, evidence = [], {}
    for name, rows in parts.items():
        if rows is None or not len(rows):
            continue
        entry: dict[str, object] = {"rows": len(rows)}
        if groups is not None:
            entry["groups"] = len(pd.unique(np.asarray(groups)[rows]))
        if times is not None:
            entry["first"], entry["last"] = (format_time(np.min(times[rows])),
                                             format_time(np.max(times[rows])))
        evidence[name] = entry
        words.append(f"{PART_WORDS.get(name, name)} {len(rows)} rows"
                     + (f", {entry['groups']} group{'s' * (entry['groups'] != 1)}"
                        if "groups" in entry else "")
                     + (f", {entry['first']} to {entry['last']}" if "first" in entry else ""))
    return [info("split", "split_parts", f"What went where: {'; '.join(words)}.",
                 parts=evidence)]
