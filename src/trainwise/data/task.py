"""TaskData: what every later stage needs to know about the data, as arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xxhash

from trainwise.findings import Finding

Kind = Literal["sequence", "table", "vector", "image", "tokens"]
Task = Literal["classification", "regression"]
Role = Literal["group", "time"]


@dataclass(frozen=True)
class Key:
    """A column that says which rows belong together (a patient, a series) or when a row was
    observed. `declared` keys come from the config or the file itself; inferred ones from
    names and values (keys.py), and the split warns before relying on them."""

    column: str
    role: Role
    declared: bool
    reason: str = ""


@dataclass
class TaskData:
    """A data set as float32 features and targets.

    `x`/`y` is the pool that training and validation are drawn from; `x_test`/`y_test` is the
    held-out part, touched once at the end (None when the source has none: the split makes it).
    Sequences are (N, C, T); tables and vectors are (N, F); images are (N, C, H, W) uint8, the
    decoded pixels (4x smaller than float32; the split normalises them to float32).
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
    times: np.ndarray | None = None  # one time per row of x: datetime64[ns] or float
    keys: list[Key] = field(default_factory=list)  # where groups / times came from
    files: list[str] = field(default_factory=list)  # one path per row, for image folders
    test_files: list[str] = field(default_factory=list)  # one path per row of x_test: a
    # shipped test/ folder's copies and suspect labels are named by file, as the pool's are
    stored_shapes: np.ndarray | None = None  # (N, 3) each pool image's (C, H, W) as stored,
    # before the loader made channels and sizes uniform: the audit ties those changes to files
    # and classes (a gray-only class is a shortcut; a 4:1 image squashed to 1:1)
    findings: list[Finding] = field(default_factory=list)  # what loading found that the user
    # must act on (text in a number column, a saved index dropped); audit() reports them
    image_shape: tuple[int, ...] | None = None  # (H, W) when each flat row of x is a picture
    # (digits: 64 pixel features of an 8x8 image), so the samples figure draws it as one
    content_hashes: np.ndarray | None = None  # (N,) uint64 per row of the source when x
    # loses content: token ids give every once-seen word one id, so 600 distinct tickets that
    # differ only in an order number became 3 "exact copies"; duplicates and splits read these
    unknown_id: int | None = None  # a token id that stands for many words (tokenise's
    # UNKNOWN_ID): the near-copy check never counts it as a word two rows share
    tokeniser: dict = field(default_factory=dict)  # text tokenised by trainwise (tokenise.py):
    # words (word of id i + FIRST_WORD_ID), columns, length T, unknown_id, cut_share; saved
    # for predict
    source_rows: np.ndarray | None = None  # (N,) each row's 0-based position in the source
    # (the file's data rows, the DataFrame's rows) when rows were dropped or sampled since; None
    # when it equals the position: findings and label_issues.csv name rows the user can find
    row_ids: dict[str, np.ndarray] = field(default_factory=dict)  # identifier column -> (N,)
    # values (a patient_id set aside as a row id), written beside the rows named to the user
    columns: list[dict[str, str]] = field(default_factory=list)  # tables: how each column of
    # the file was treated ({column, read_as, treatment}), for meta.json and the report
    one_hot: list[tuple[str, str, str, str]] = field(default_factory=list)  # tables: per
    # one-hot feature (feature, column, level, role), saved for trainwise.predict
    text_missing: dict[str, np.ndarray] = field(default_factory=dict)  # tables: text feature
    # column -> (N,) bool, its missing cells (a one-hot level of their own), for the audit
    _hashes: tuple | None = field(default=None, repr=False, compare=False)  # (key, hashes)

    def row_hashes(self) -> np.ndarray:
        """(N,) xxh3-64 per row of x, computed once per content of x: the audit and the
        split's proof both need them, and hashing 1M rows row by row costs ~0.3 s, while the
        whole-buffer xxh3 that detects an in-place edit costs ~10 ms. The source content's
        hashes (content_hashes) when x is a lossy encoding of it."""
        if self.content_hashes is not None:
            return self.content_hashes
        contiguous = np.ascontiguousarray(self.x)
        key = (self.x.shape, self.x.dtype.str, xxhash.xxh3_64_intdigest(contiguous))
        if self._hashes is None or self._hashes[0] != key:
            from trainwise.data.leakage import row_hashes

            self._hashes = (key, row_hashes(contiguous))
        return self._hashes[1]

    def text_missing_counts(self) -> dict[str, int]:
        """Missing cells per text feature column (tables), for the missing_values check."""
        return {name: int(mask.sum()) for name, mask in self.text_missing.items()}

    def key(self, role: Role) -> Key | None:
        return next((k for k in self.keys if k.role == role), None)

    def subset(self, rows: np.ndarray) -> None:
        """Keep only `rows` of the pool (x, y and every per-row key), in place."""
        self.x, self.y = self.x[rows], self.y[rows]
        self.groups = self.groups[rows] if self.groups is not None else None
        self.times = self.times[rows] if self.times is not None else None
        self.files = [self.files[i] for i in rows] if self.files else []
        if self.stored_shapes is not None:
            self.stored_shapes = self.stored_shapes[rows]
        if self.content_hashes is not None:
            self.content_hashes = self.content_hashes[rows]
        self.source_rows = self.source(rows)
        self.row_ids = {name: values[rows] for name, values in self.row_ids.items()}
        self.text_missing = {name: mask[rows] for name, mask in self.text_missing.items()}

    def source(self, rows: np.ndarray) -> np.ndarray:
        """The 0-based source position (file data row, DataFrame row) of each of `rows`,
        positions in x."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows if self.source_rows is None else self.source_rows[rows]

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
