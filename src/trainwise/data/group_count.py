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


@dataclass(frozen=True)
class GroupCount:
    """Whole groups must fill every part: train and val (or k folds; time folds need k + 1
    blocks) and a carved test part. Counted before splitting, so the error names the groups
    and the settings, not a later symptom ('only 1 group', 'move split.cut')."""

    source: str  # "column 'patient_id'", "the `groups` array"
    num_groups: int
    pool_needs: int  # groups train/val or the folds need
    fills: str  # what the pool's groups fill, in words
    max_folds: int  # the most folds these groups allow (k-fold only)

    @staticmethod
    def of(data: TaskData, groups: np.ndarray | None, times: np.ndarray | None,
           num_folds: int, whole: bool) -> GroupCount:
        """Count the groups and raise if they cannot fill the parts; `whole`: the strategy
        keeps groups whole (not "time", which splits each group's own timeline)."""
        if groups is None or not whole:
            return GroupCount("", 0, 0, "", 0)
        key = next((k for k in data.keys if k.role == "group"), None)
        source = "the group key" if key is None else key.reason if key.declared and \
            key.reason else f"column '{key.column}'"
        num_groups, k = len(pd.unique(np.asarray(groups))), num_folds
        carved = int(data.x_test is None)
        blocks = int(times is not None)  # time folds: k + 1 blocks, one group each at least
        pool_needs, fills = ((k + blocks, f"{k} {'time ' * blocks}folds") if k > 1 else
                             (2, "train and validation"))
        count = GroupCount(source, num_groups, pool_needs, fills,
                            num_groups - carved - blocks)
        count.check(carved)
        return count

    def _fixes(self, carved: bool) -> str:
        folds = self.fills.endswith("folds")
        fewer = (f", lower split.num_folds to {self.max_folds} or fewer" if folds and
                 self.max_folds >= 2 else ", use one split (split.num_folds = 1)" if folds else "")
        test = ", ship a test part (a .npz's X_test and y_test)" if carved else ""
        return (f"Add groups{fewer}{test}, or, if the rows of one group are independent, set "
                "split.group_column = \"none\"; then rerun the split stage.")

    def check(self, carved: int) -> None:
        needs = self.pool_needs + carved
        if self.num_groups >= needs:
            return
        parts = self.fills if not carved else "train, validation and test" if \
            self.fills.startswith("train") else f"{self.fills} and a test part"
        raise DataError(f"{self.num_groups} groups ({self.source}) cannot fill {parts}: each "
                        f"group stays whole in one part, so this needs at least {needs} groups "
                        f"(in practice dozens). {self._fixes(bool(carved))}")

    def check_pool(self, pool_groups: np.ndarray | None, test_fraction: float) -> None:
        if not self.pool_needs or pool_groups is None:
            return
        left = len(pd.unique(np.asarray(pool_groups)))
        if left >= self.pool_needs:
            return
        raise DataError(f"the test part (split.test_fraction = {test_fraction:g}) took "
                        f"{self.num_groups - left} of the {self.num_groups} groups "
                        f"({self.source}), each kept whole, and left {left} for "
                        f"{self.fills}, which need {self.pool_needs}. Lower "
                        f"split.test_fraction, or {self._fixes(True)[0].lower()}"
                        f"{self._fixes(True)[1:]}")


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
