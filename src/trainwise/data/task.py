"""TaskData: what every later stage needs to know about the data, as arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xxhash

Kind = Literal["sequence", "table", "vector"]
Task = Literal["classification", "regression"]


@dataclass
class TaskData:
    """A data set as float32 features and targets.

    `x`/`y` is the pool that training and validation are drawn from; `x_test`/`y_test` is the
    held-out part, touched once at the end (None when the source has none: the split makes it).
    Sequences are (N, C, T); tables and vectors are (N, F).
    """

    name: str
    kind: Kind
    task: Task
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None  # one key per row of x, e.g. a patient id
    notes: list[str] = field(default_factory=list)  # what loading did (rows dropped, encoded...)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.task == "classification" else 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def fingerprint(self) -> str:
        """xxh64 of features and targets, so a run records exactly which data it saw."""
        digest = xxhash.xxh64()
        for array in (self.x, self.y, self.x_test, self.y_test):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()
