"""Whole groups must fill every part of a split: counted before splitting, so an error names
the groups and the settings, not a later symptom ('only 1 group', 'move split.cut')."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from trainwise.data.errors import DataError
from trainwise.data.task import TaskData

_Drawn = TypeVar("_Drawn")


def fewer_folds(max_folds: int) -> str:
    """The one 'fewer folds' advice (lower case, to follow a comma): the most folds that fit,
    or one split when not even two do."""
    return (f"lower split.num_folds to {max_folds} or fewer" if max_folds >= 2 else
            "use one split (split.num_folds = 1)")


@dataclass(frozen=True)
class GroupCount:
    """Whole groups must fill every part: train and val (or k folds; time folds need k + 1
    blocks) and a carved test part. The one counter of the recipe (plan_split, counted before
    splitting, so the error names the groups and the settings, not a later symptom such as
    'only 1 group' or 'move split.cut') and of the API (kfold_indices)."""

    source: str  # "column 'patient_id'", "the `groups` array"; "" when unknown
    num_groups: int
    pool_needs: int  # groups train/val or the folds need
    fills: str  # what the pool's groups fill, in words
    blocks: int  # 1 for time folds: k + 1 blocks, so one group more than folds
    num_sets: int  # groups once exact copies across groups join them (else num_groups)

    @staticmethod
    def counting(num_groups: int, num_folds: int, timed: bool, source: str = "",
                 num_sets: int | None = None) -> GroupCount:
        """The count for `num_folds` (1: one train/val split) of whole groups; `timed`: time
        folds, expanding windows over the groups in order of start."""
        k, blocks = num_folds, int(timed)
        pool_needs, fills = ((k + blocks, f"{k} {'time ' * blocks}folds") if k > 1 else
                             (2, "train and validation"))
        return GroupCount(source, num_groups, pool_needs, fills, blocks,
                          num_groups if num_sets is None else num_sets)

    @staticmethod
    def of(data: TaskData, groups: np.ndarray | None, times: np.ndarray | None,
           num_folds: int, whole: bool) -> GroupCount:
        """Count the groups and raise if they cannot fill the parts; `whole`: the strategy
        keeps groups whole (not "time", which splits each group's own timeline)."""
        if groups is None or not whole:
            return GroupCount("", 0, 0, "", 0, 0)
        key = next((k for k in data.keys if k.role == "group"), None)
        source = "the group key" if key is None else key.reason if key.declared and \
            key.reason else f"column '{key.column}'"
        count = GroupCount.counting(len(pd.unique(np.asarray(groups))), num_folds,
                                    times is not None, source)
        count.check(int(data.x_test is None))
        return count

    @staticmethod
    def check_folds(num_folds: int, codes: np.ndarray, timed: bool,
                 joined: np.ndarray | None = None) -> None:
        """kfold_indices' check: raise if the group codes 0..G-1 (`joined`: after copies
        join groups) cannot fill the folds."""
        num_sets = None if joined is None else int(joined.max()) + 1
        GroupCount.counting(int(codes.max()) + 1, num_folds, timed,
                            num_sets=num_sets).check(0)

    def _fixes(self, available: int, ship_test: bool) -> str:
        """Advice from the groups `available` to the pool: train/val or the folds."""
        folds = self.fills.endswith("folds")
        fewer = f", {fewer_folds(available - self.blocks)}" if folds else ""
        test = ", ship a test part (a .npz's X_test and y_test)" if ship_test else ""
        return (f"Add groups{fewer}{test}, or, if the rows of one group are independent, set "
                "split.group_column = \"none\"; then rerun the split stage.")

    def _counted(self) -> str:
        """'6 groups (column 'id')', with the sets exact copies join them into."""
        source = f" ({self.source})" if self.source else ""
        joined = "" if self.num_sets == self.num_groups else (
            f", which exact copies of rows across groups join them into {self.num_sets} sets "
            "that must stay whole,")
        return f"{self.num_groups} groups{source}{joined}"

    def check(self, carved: int) -> None:
        needs = self.pool_needs + carved
        if self.num_sets >= needs:
            return
        parts = self.fills if not carved else "train, validation and test" if \
            self.fills.startswith("train") else f"{self.fills} and a test part"
        unit = "groups" if self.num_sets == self.num_groups else "sets"
        blocks = "" if not self.blocks else (
            f", and time folds cut the groups, in order of start, into {self.pool_needs} "
            "blocks (each fold trains on the blocks before its validation block)")
        raise DataError(f"{self._counted()} cannot fill {parts}: each group stays whole in one "
                        f"part{blocks}, so this needs at least {needs} {unit} (in practice "
                        f"dozens). {self._fixes(self.num_sets - carved, bool(carved))}")

    def check_pool(self, pool_groups: np.ndarray | None, test_fraction: float) -> None:
        """After the test cut: the groups it left must still fill train/val or the folds; the
        advice counts those groups, not the file's."""
        if not self.pool_needs or pool_groups is None:
            return
        left = len(pd.unique(np.asarray(pool_groups)))
        if left >= self.pool_needs:
            return
        fixes = self._fixes(left, ship_test=False)
        raise DataError(f"the test part (split.test_fraction = {test_fraction:g}) took "
                        f"{self.num_groups - left} of the {self.num_groups} groups "
                        f"({self.source}), each kept whole, and left {left} for "
                        f"{self.fills}, which need {self.pool_needs}. Lower "
                        f"split.test_fraction, or {fixes[0].lower()}{fixes[1:]}")


def after_test(draw: Callable[[], _Drawn], pool: np.ndarray, test: np.ndarray | None,
                groups: np.ndarray | None) -> _Drawn:
    """Draw train/val (or folds) from the pool; an error there counts the pool's rows, which
    differ from the file's once a test part was carved."""
    try:
        return draw()
    except DataError as err:
        if test is None:
            raise
        kept = "" if groups is None else f" ({len(pd.unique(np.asarray(groups)[pool]))} groups)"
        raise DataError(f"{err} (Train and validation are drawn from the {len(pool)} rows"
                        f"{kept} left after the {len(test)}-row test part.)") from None
