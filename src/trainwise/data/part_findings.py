"""Findings about the parts a split made: too small to score on, classes missing from a part,
folds made unequal by one large group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.periods import (
    GROUPED_KFOLD_FIX,
    SAME_PERIOD_WHY,
    groups_share_period,
    held_out_pairs,
)
from trainwise.data.split import PART_WORDS, SplitIndices, min_stratified_fraction
from trainwise.data.timesplit import format_time
from trainwise.findings import Finding, Severity, info, warning

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


def small_parts(sizes: dict[str, int], task: str = "classification",
                groups: dict[str, int] | None = None,
                fractions: dict[str, float] | None = None, num_folds: int = 1) -> list[Finding]:
    """A warning when the val or test part is too small to score on (MIN_SCORED_ROWS).
    `groups`: groups per part when rows are grouped (a subject's rows are alike, so the score
    rests on its groups more than on its rows). `fractions`: split.val_fraction (and
    test_fraction for a carved test part), so the fix advises from the values in use.
    `num_folds` > 1: validation is one fold (val_fraction unused), so the fix advises fewer
    folds instead (review s11 VD4)."""
    groups = groups or {}
    small = {part: n for part, n in sizes.items() if part in ("val", "test") and
             0 < n < MIN_SCORED_ROWS}
    if not small:
        return []
    listed = ", ".join(f"{part} {n} rows{_from_groups(groups.get(part))} ({_noise(n, task)})"
                       for part, n in small.items())
    grouped = (" Rows of one group are alike, so a score rests on its groups more than its "
               "rows: the interval is wider than these row counts say."
               if any(part in groups for part in small) else "")
    return [warning(
        "split", "small_scored_parts",
        f"Scores on these parts are mostly noise: {listed}. Early stopping and the short runs "
        f"read the validation loss, and the test score is one draw.{grouped}",
        _small_parts_fix(sizes, small, groups, fractions or {}, task, num_folds),
        **{f"num_{part}": n for part, n in small.items()},
        **{f"num_{part}_groups": groups[part] for part in small if part in groups})]


def _from_groups(num_groups: int | None) -> str:
    if num_groups is None:
        return ""
    return f" from {num_groups} group{'s' * (num_groups != 1)}"


ROWS_ENOUGH = 96  # (98 / 10)^2: a part this big scores accuracy within +-10 points (an
# RMSE within +-14%)
MAX_ADVISED_FRACTION = 0.3  # a larger val or test share starves training on a small table


def _spread(n: int, task: str) -> str:
    return f"+-{196 / (2 * n) ** 0.5:.0f}%" if task == "regression" else \
        f"+-{98 / n ** 0.5:.0f} points"


def _base(counts: dict[str, int], part: str) -> int:
    """What a part's fraction is taken of: validation of train + val, test of everything."""
    return counts.get("train", 0) + counts.get("val", 0) + (
        counts.get("test", 0) if part == "test" else 0)


def _small_parts_fix(sizes: dict[str, int], small: dict[str, int], groups: dict[str, int],
                     fractions: dict[str, float], task: str, num_folds: int = 1) -> str:
    """Advice from the settings in use: what the next step up gives, never the value already
    set (audit s11 M9: 'raise split.val_fraction (e.g. 0.2)' at 0.2), and cross-validation
    unless the run already cross-validates."""
    steps = []
    for part, n in small.items():
        if part == "val" and num_folds > 1:
            steps.append(_fewer_folds(n, _base(sizes, part), num_folds, task))
        elif fractions.get(part) is not None:
            steps.append(_larger_fraction(part, n, fractions[part], sizes, groups, task))
    raise_text = f"{'; '.join(steps)}. " if steps else (
        "Raise split.val_fraction (or split.test_fraction for a carved test part). ")
    more_data = "collect more rows" if num_folds > 1 else (
        "collect more rows, or on small data cross-validate (split.num_folds = 5: each row is "
        "validated once, and the folds' spread shows the noise)")
    return (f"{raise_text}A part needs ~{ROWS_ENOUGH} rows for {_spread(ROWS_ENOUGH, task)}: "
            f"{more_data}. Then rerun from the split stage; meanwhile read small scores with "
            "their interval.")


def _larger_fraction(part: str, n: int, now: float, sizes: dict[str, int],
                     groups: dict[str, int], task: str) -> str:
    key = f"split.{part}_fraction"
    if now + 0.1 > MAX_ADVISED_FRACTION + 1e-9:
        return f"{key} is {now:g} already: a larger share would starve training"
    if part in groups:  # whole groups move
        more = max(1, round((now + 0.1) * _base(groups, part)))
        return f"{key} is {now:g} ({groups[part]} groups); {now + 0.1:g} gives ~{more} groups"
    more = max(1, round((now + 0.1) * _base(sizes, part)))
    return (f"{key} is {now:g} ({n} rows); {now + 0.1:g} gives ~{more} rows "
            f"({_spread(more, task)})")


def _fewer_folds(n: int, pool: int, num_folds: int, task: str) -> str:
    """k folds validate on pool / k rows each, expanding time folds on pool / (k + 1) (k + 1
    blocks): pool / n tells which, and k - 2 folds (at least 2) then give pool / (k - 2 + that
    extra block). 67 rows in 5 folds: 13 each; 3 folds: ~22."""
    if num_folds <= 2:
        return (f"split.num_folds is {num_folds} ({n} rows per fold) already: fewer folds "
                "would end cross-validation")
    extra = min(1, max(0, round(pool / n) - num_folds))  # 1 for expanding time folds
    fewer = max(2, num_folds - 2)
    more = max(1, round(pool / (fewer + extra)))
    return (f"split.num_folds is {num_folds} ({n} rows per fold); {fewer} gives ~{more} "
            f"validation rows per fold ({_spread(more, task)}), at the cost of training on "
            "fewer rows per fold")


def part_groups(parts: dict[str, np.ndarray | None],
                groups: np.ndarray | None) -> dict[str, int] | None:
    """Groups per part ({part: count}), or None when rows are not grouped."""
    if groups is None:
        return None
    keys = np.asarray(groups)
    return {name: len(pd.unique(keys[rows])) for name, rows in parts.items()
            if rows is not None and len(rows)}


def missing_classes(counts: dict[str, list[int]], class_names: list[str],
                    strategy: str = "", over_time: dict[str, str] | None = None
                    ) -> list[Finding]:
    """A warning naming the classes with no row in some part ({part: per-class counts}): a
    score never measures a class its part lacks, whatever the split strategy promised. Under
    a stratified split it also names the classes kept in train on purpose (one row left for
    train and validation; split.stratified_split), so nobody reads it as bad luck.
    `over_time` (a time split; label_over_time.label_over_time): classes too common to miss
    a part by chance, with when their rows end or start: the label changes with time, and
    collecting rows would not help (audit s12 K3)."""
    totals = np.sum([counts[part] for part in counts], axis=0)
    absent = [(name, [part for part in counts if counts[part][k] == 0], int(totals[k]))
              for k, name in enumerate(class_names)
              if totals[k] and any(counts[part][k] == 0 for part in counts)]
    if not absent:
        return []
    over_time = {name: when for name, when in (over_time or {}).items()
                 if name in {str(a[0]) for a in absent}}
    listed = "; ".join(f"'{name}' ({total} row{'s' * (total != 1)}) has none in "
                       f"{', '.join(parts)}" + (f": {over_time[str(name)]}"
                                                if str(name) in over_time else "")
                       for name, parts, total in absent[:NUM_LISTED])
    more = f" (and {len(absent) - NUM_LISTED} more)" if len(absent) > NUM_LISTED else ""
    kept = _kept_in_train(counts, class_names) if strategy == "stratified" else []
    return [warning(
        "split", "classes_missing_from_split",
        f"Some classes have no rows in a part: {listed}{more}. A part's score never "
        f"measures the classes it lacks.{_kept_text(kept)}{_drift_text(over_time)}",
        _missing_fix(over_time, len(over_time) < len(absent)),
        classes={name: parts for name, parts, _ in absent}, kept_in_train=kept,
        label_over_time=over_time)]


RARE_FIX = ("Collect more rows of these classes (2 or more per part lets the split place them "
            "everywhere), or merge each into a related class or drop it before splitting; when "
            "the part itself is tiny, raise split.val_fraction (or test_fraction) instead. Then "
            "rerun the split stage.")


def _drift_text(over_time: dict[str, str]) -> str:
    if not over_time:
        return ""
    names = ", ".join(f"'{name}'" for name in list(over_time)[:NUM_LISTED])
    return (f" {names} {'is' if len(over_time) == 1 else 'are'} not short of rows: the label "
            "changes with time (label drift), so a model validated on later rows meets "
            "another class mix than it trained on.")


def _missing_fix(over_time: dict[str, str], rare: bool) -> str:
    """Label drift over time: check the date/label relation before anything else; the rare
    classes' advice follows when some are rare too."""
    if not over_time:
        return RARE_FIX
    rest = f" For the other classes: {RARE_FIX[0].lower()}{RARE_FIX[1:]}" if rare else ""
    return ("Check how the label relates to the date (the class shares over time): if the "
            "task is forecasting, the later scores rightly show this change. If rows do not "
            "depend on when they were recorded, do not split by time past that date: `--set "
            "split.time_column=none` splits at random, stratified (each class keeps its share "
            f"in every part). Then rerun the split stage.{rest}")


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


def part_extents(parts: dict[str, np.ndarray | None], num_groups: dict[str, int] | None,
                 times: np.ndarray | None) -> list[Finding]:
    """What went where: per part its rows, groups (`num_groups`: part_groups) and first..last
    time, so a reader sees which subjects and periods each score covers without opening
    split.npz."""
    if num_groups is None and times is None:
        return []
    words, evidence = [], {}
    for name, rows in parts.items():
        if rows is None or not len(rows):
            continue
        entry: dict[str, object] = {"rows": len(rows)}
        if num_groups is not None:
            entry["groups"] = num_groups[name]
        if times is not None:
            entry["first"], entry["last"] = (format_time(np.min(times[rows])),
                                             format_time(np.max(times[rows])))
        evidence[name] = entry
        words.append(f"{PART_WORDS.get(name, name)} {len(rows)} rows"
                     + (f", {entry['groups']} group{'s' * (entry['groups'] != 1)}"
                        if "groups" in entry else "")
                     + (f", {entry['first']} to {entry['last']}" if "first" in entry else ""))
    return [info("split", "split_parts", f"What went where: {'; '.join(words)}.",
                 parts=evidence)] + _few_groups(evidence, _overlap(parts, times))


def _overlap(parts: dict[str, np.ndarray | None], times: np.ndarray | None) -> bool:
    """Whether the groups share a period (periods.share_period: most training rows dated after
    a held-out part begins), so a time-ordered split of them is no forecast (audit s13 F5). A
    single later row is not enough: whole groups by start always leave some (review s13 VD4)."""
    train, val = parts.get("train"), parts.get("val")
    if times is None or train is None or val is None:
        return False
    return groups_share_period(times, held_out_pairs(train, val, parts.get("test")))


MAX_FEW_GROUPS = 2  # a val or test part of 1-2 groups scores those subjects, not the task


def _few_groups(parts: dict[str, dict], overlap: bool = False) -> list[Finding]:
    """A warning when a validation or test part holds 1-2 groups: early stopping, tuning or the
    test headline then read one or two subjects, whatever the row count (audit s11 M10: a test
    of 20 rows from 1 subject claimed a 95% interval of +-8 points)."""
    few = {name: entry["groups"] for name, entry in parts.items()
           if name in ("val", "test") and 0 < entry.get("groups", MAX_FEW_GROUPS + 1)
           <= MAX_FEW_GROUPS}
    if not few:
        return []
    listed = ", ".join(f"{PART_WORDS[name]} {n} group{'s' * (n != 1)} "
                       f"({parts[name]['rows']} rows)" for name, n in few.items())
    return [warning(
        "split", "few_groups_in_part",
        f"Some parts hold only one or two groups: {listed}. Their scores measure those "
        "groups, not new ones; rows of one group are alike, so their intervals are far too "
        "narrow.",
        f"Cross-validate over groups: {_no_time(overlap)} raise "
        "split.val_fraction / split.test_fraction so each part holds "
        "several groups; collecting more groups helps most. Then rerun from the split stage.",
        groups=few)]


def _no_time(overlap: bool) -> str:
    """With a time key, num_folds alone makes expanding windows of groups by start, where the
    groups that start first are never validated (audit s13 F5): name the setting that gives a
    grouped k-fold, when the groups span the same period (their time order is no forecast)."""
    if not overlap:
        return "set split.num_folds = 5 (grouped k-fold, each group validated once), or"
    return f"{GROUPED_KFOLD_FIX}; {SAME_PERIOD_WHY}. Or"


def stratify_fallback(y_pool: np.ndarray, num_val: int, val_fraction: float) -> list[Finding]:
    """Why split.strategy = "auto" drew validation at random on a classification task: too few
    validation rows for one of each class on both sides; and the val_fraction that allows it
    (audit s11 M7: 7 validation rows for 12 classes fell back without a word)."""
    num_classes = int((np.unique(y_pool, return_counts=True)[1] >= 2).sum())
    least = min_stratified_fraction(y_pool)
    fix = (f"Raise split.val_fraction to {least:g} or more (now {val_fraction:g}) to stratify, "
           "then rerun from the split stage." if least is not None else
           "Collect more rows (or merge rare classes), then rerun from the split stage.")
    return [Finding(
        "split", Severity.INFO, "stratify_not_possible",
        f"Stratified was not possible: {num_val} validation rows for {num_classes} classes "
        "(a stratified draw needs a row of each class on both sides), so validation was drawn "
        "at random and class shares differ between the parts.", {
            "num_val": num_val, "num_classes": num_classes, "min_val_fraction": least},
        fix)]
