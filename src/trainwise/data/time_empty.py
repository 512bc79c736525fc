"""Why a time split left a part empty, in the terms of the setting that did it: the cut, the
gap, the fraction held out, or the number of folds. timesplit.py raises with these words, so
an error never blames a cut or a gap nobody set."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainwise.data.errors import DataError
from trainwise.data.group_count import fewer_folds

MAX_FRACTION = 0.5  # config: val_fraction and test_fraction lie below 0.5


@dataclass(frozen=True)
class Timeline:
    """What the explanations need of the rows a time split saw."""

    axis: np.ndarray  # (N,) times on one axis; whole groups: each row's group start
    groups: np.ndarray  # (N,) series (or whole-group) codes 0..G-1
    whole_groups: bool
    held_out: str  # the later part's name: "validation", or "test" while carving it
    span: str  # the times' range as 'first to last', for the message

    @property
    def num_groups(self) -> int:
        return int(self.groups.max()) + 1 if len(self.groups) else 0

    def most_times(self) -> int:
        """Distinct times in the longest series: rows that share a time stay together."""
        pairs = np.unique(np.stack([self.groups.astype(np.float64), self.axis]), axis=1)
        return int(np.bincount(pairs[0].astype(np.int64)).max())


def fraction_setting(held_out: str) -> str:
    return "split.test_fraction" if held_out == "test" else "split.val_fraction"


def raise_empty(timeline: Timeline, side: str, why: str) -> None:
    raise DataError(f"the time split leaves the {side} part empty: {why} Then rerun the split "
                    "stage.")


def by_cut(timeline: Timeline, side: str, cut: object, duration: bool) -> str:
    what = "group starts" if timeline.whole_groups else "times"
    where = "at or after" if side == timeline.held_out else "before"
    back = " (counted back from each series' last time)" if duration else ""
    return (f"no {what[:-1]} falls {where} split.cut = {cut!r}{back}, and the {what} run from "
            f"{timeline.span}. Move split.cut inside that range.")


def by_gap(timeline: Timeline, num_train: int, gap: object) -> str:
    after = ("the first held-out group start" if timeline.whole_groups else
             f"the first {timeline.held_out} time of its series")
    return (f"split.gap = {gap!r} drops all {num_train} training rows, as each lies within the "
            f"gap before {after} (times from {timeline.span}). Shorten split.gap.")


def by_fraction(timeline: Timeline, side: str, fraction: float, positions: np.ndarray) -> str:
    setting, last = fraction_setting(timeline.held_out), f"the last {fraction:.0%} of rows"
    if not timeline.whole_groups:
        limit = (f"the {timeline.num_groups} series have at most {timeline.most_times()} "
                 "distinct times (rows that share a time stay together)")
        if side == timeline.held_out:
            return (f"no series has a row in {last} of its own: {limit}. Raise {setting}, or "
                    "give each series more rows.")
        return f"every row lies in {last} of its series: {limit}. Lower {setting}."
    num_groups = timeline.num_groups
    if side != timeline.held_out:
        return (f"all {num_groups} groups, kept whole, lie in {last}. Lower {setting}, or add "
                "groups.")
    need = 1.0 - float(positions.max())  # the latest group is held out once f >= 1 - its middle
    suggest = math.ceil(need * 100) / 100  # rounded up, so it still holds the group out
    raise_it = (f"Raise {setting} to at least {suggest:.2f}, add groups"
                if suggest < MAX_FRACTION else "Add groups")
    return (f"each group stays whole and is held out when its middle row lies in {last} "
            f"(groups in order of start), but the {num_groups} groups are too few or too large "
            f"for that: the latest-starting one holds {2 * need:.0%} of the rows. {raise_it}, "
            "or, if the rows of one group are independent, set split.group_column = \"none\".")


def by_fold(timeline: Timeline, side: str, fold: int, num_folds: int) -> str:
    """`fold` counts from 0, as the folds list, split.npz ('fold0_train') and the split
    finding do; it validates on block fold + 1 of blocks 0..num_folds."""
    block = fold + 1
    blocks = f"the blocks before block {block}" if side == "training" else f"block {block}"
    if timeline.whole_groups:
        num_groups = timeline.num_groups
        fewer = fewer_folds(min(num_folds - 1, num_groups - 1))
        return (f"{num_folds} folds cut the {num_groups} groups, kept whole and in order of "
                f"start, into {num_folds + 1} blocks (0 to {num_folds}) of about equal rows, "
                f"and fold {fold}'s {side} part ({blocks}) holds no group: the groups are too "
                f"few or too unequal. {fewer[0].upper()}{fewer[1:]}, or add groups.")
    most = timeline.most_times()  # a sort of every row: once
    fewer = fewer_folds(min(num_folds - 1, most - 1))
    return (f"{num_folds} folds cut each series' rows into {num_folds + 1} blocks (0 to "
            f"{num_folds}), and fold {fold}'s {side} part ({blocks}) holds no row: the "
            f"{timeline.num_groups} series have at most {most} distinct times. "
            f"{fewer[0].upper()}{fewer[1:]}, or give each series more rows.")
