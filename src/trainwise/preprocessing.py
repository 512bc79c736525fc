"""What the split stage fitted, saved in the run folder as preprocess.npz: the input
normalisation (training rows' mean and spread), the regression target's mean and scale, the
class names and the inputs' shape and kind. A model trained by a run reads inputs so
normalised and answers standardised values or class codes 0..K-1; trainwise.predict needs
these to score new rows in the user's own units.

Data, not code: plain arrays in an .npz, read back with allow_pickle=False.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from trainwise.data.task import TaskData
from trainwise.data.tensors import Normaliser
from trainwise.findings import TrainwiseError
from trainwise.safe_write import replacing

FILE_NAME = "preprocess.npz"


@dataclass
class Preprocessing:
    kind: str  # table, vector, sequence, image, tokens
    task: str  # classification or regression
    input_shape: tuple[int, ...]  # one row's shape, e.g. (F,) or (C, H, W)
    input_dtype: str  # the inputs as loaded: float32, uint8 pixels, int64 token ids
    feature_names: list[str] = field(default_factory=list)  # a table's encoded columns
    class_names: list[str] = field(default_factory=list)  # code k -> class_names[k]
    mean: np.ndarray | None = None  # (F,) or (C,): None when inputs are not normalised
    std: np.ndarray | None = None  # (tokens keep their ids)
    target_mean: float = 0.0  # regression: prediction = output * target_scale + target_mean
    target_scale: float = 1.0
    # data.target_transform = "log": "log" (exp undoes it) or "log1p" (expm1); "" for none, or
    # a run folder written before it was saved (those trained on log1p: see target_function)
    target_log: str = ""
    vocab_size: int = 0  # token ids: the embedding's rows (largest id + 1)
    # a table's one-hot features: (feature, column, level, role) with role level / other /
    # missing, so that predict encodes a raw table's text as the run did (empty: older runs)
    one_hot: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (F,) missing cells per feature in the rows the run loaded; None: not counted (older
    # runs, or inputs other than (N, F) rows). predict warns of NaN where there were none
    feature_missing: np.ndarray | None = None
    # text tokenised by trainwise: the word of id i + FIRST_WORD_ID, the text columns joined
    # in order, the length T rows were cut to (token_length, saved for older readers: it is
    # always input_shape[0], which predict reads) and the id of words not in it (empty: token
    # ids given, or a run written before it was saved), so that predict tokenises new text
    # the same way
    vocabulary: list[str] = field(default_factory=list)
    text_columns: list[str] = field(default_factory=list)
    token_length: int = 0
    unknown_id: int = 1

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """`x` as the model saw the training rows: the training split's statistics."""
        if self.mean is None or self.std is None:
            return np.asarray(x)
        return Normaliser().load_state_dict({"mean": self.mean, "std": self.std}).transform(x)

    def save(self, run_path: Path) -> None:
        normalised = self.mean is not None and self.std is not None
        # through a fresh temporary file: a received folder's preprocess.npz linking to a
        # file of the user's is replaced, not overwritten, by a --resume (review VS1)
        with replacing(Path(run_path) / FILE_NAME, "wb") as handle:
            self._savez(handle, normalised)

    def _savez(self, handle: IO[bytes], normalised: bool) -> None:
        np.savez(handle, kind=np.str_(self.kind), task=np.str_(self.task),
                 input_shape=np.asarray(self.input_shape, dtype=np.int64),
                 input_dtype=np.str_(self.input_dtype),
                 feature_names=np.asarray(self.feature_names, dtype=str),
                 class_names=np.asarray(self.class_names, dtype=str),
                 normalised=np.bool_(normalised),
                 mean=self.mean if normalised else np.zeros(0),
                 std=self.std if normalised else np.zeros(0),
                 target_mean=np.float64(self.target_mean),
                 target_scale=np.float64(self.target_scale),
                 vocab_size=np.int64(self.vocab_size), **_encoding_arrays(self),
                 **({"target_log": np.str_(self.target_log)} if self.target_log else {}))

    @classmethod
    def load(cls, run_path: Path) -> Preprocessing:
        path = Path(run_path) / FILE_NAME
        if not path.is_file():
            raise TrainwiseError(
                f"'{path}' is missing: the run stopped before its split stage, or an earlier "
                "trainwise version made it (it did not save the normalisation the model "
                "expects). Write it into this folder without retraining: trainwise run "
                f"--resume {run_path} (it reloads the data and the saved split, writes "
                f"{FILE_NAME} and keeps checkpoints/best.pt); for a run of your own module, "
                "trainwise.run(resume=run_dir, model=net).")
        with np.load(path, allow_pickle=False) as saved:
            normalised = bool(saved["normalised"])
            return cls(kind=str(saved["kind"]), task=str(saved["task"]),
                       input_shape=tuple(int(n) for n in saved["input_shape"]),
                       input_dtype=str(saved["input_dtype"]),
                       feature_names=[str(n) for n in saved["feature_names"]],
                       class_names=[str(n) for n in saved["class_names"]],
                       mean=saved["mean"] if normalised else None,
                       std=saved["std"] if normalised else None,
                       target_mean=float(saved["target_mean"]),
                       target_scale=float(saved["target_scale"]),
                       vocab_size=int(saved["vocab_size"]), **_encoding_fields(saved),
                       target_log=str(saved["target_log"]) if "target_log" in saved.files
                       else "")

    def target_function(self, target_transform: str) -> str:
        """The log to undo on the model's outputs (trained_log)."""
        return trained_log(self.target_log, target_transform, self.task == "classification")


def trained_log(saved: str, target_transform: str, classification: bool) -> str:
    """The log a run trained its target on: the saved choice ("log", or "log1p" for a target
    with 0s), else log1p for a run folder written before the log was chosen per target (all
    trained on log1p); "" when none. One rule for predict and the report (review s14 VD9)."""
    if target_transform != "log" or classification:
        return ""
    return saved or "log1p"


def fitted_preprocessing(data: TaskData, normaliser: Normaliser | None, target_mean: float,
                         target_scale: float, target_log: str = "") -> Preprocessing:
    """What _make_arrays fitted on the training rows, ready to save."""
    return Preprocessing(
        kind=data.kind, task=data.task, input_shape=tuple(data.input_shape),
        input_dtype=data.x.dtype.str, feature_names=list(data.feature_names),
        class_names=list(data.class_names) if data.task == "classification" else [],
        mean=None if normaliser is None else normaliser.mean,
        std=None if normaliser is None else normaliser.std,
        target_mean=target_mean, target_scale=target_scale, target_log=target_log,
        vocab_size=_vocab_size(data),
        one_hot=list(data.one_hot), feature_missing=_missing_per_feature(data.x),
        **_tokeniser_fields(data.tokeniser))


def _tokeniser_fields(tokeniser: dict) -> dict:
    """tokenise.py's vocabulary and length as Preprocessing fields (none for token ids)."""
    if not tokeniser:
        return {}
    return {"vocabulary": list(tokeniser["words"]), "text_columns": list(tokeniser["columns"]),
            "token_length": int(tokeniser["length"]),
            "unknown_id": int(tokeniser["unknown_id"])}


def _missing_per_feature(x: np.ndarray) -> np.ndarray | None:
    """(F,) NaN cells per column of (N, F) float rows; None for other inputs."""
    if x.ndim != 2 or x.dtype.kind != "f":
        return None
    return np.isnan(x).sum(axis=0).astype(np.int64)


def _encoding_arrays(prep: Preprocessing) -> dict[str, np.ndarray]:
    """The one-hot meanings as four parallel string arrays (loadable with
    allow_pickle=False), and the missing counts."""
    arrays = {f"one_hot_{part}": np.asarray([m[k] for m in prep.one_hot], dtype=str)
              for k, part in enumerate(("features", "columns", "levels", "roles"))}
    if prep.feature_missing is not None:
        arrays["feature_missing"] = np.asarray(prep.feature_missing, dtype=np.int64)
    if prep.vocabulary:
        arrays.update(vocabulary=np.asarray(prep.vocabulary, dtype=str),
                      text_columns=np.asarray(prep.text_columns, dtype=str),
                      token_length=np.int64(prep.token_length),
                      unknown_id=np.int64(prep.unknown_id))
    return arrays


def _encoding_fields(saved: np.lib.npyio.NpzFile) -> dict:
    """What _encoding_arrays saved; empty for a run folder written before it existed."""
    fields: dict = {}
    if "one_hot_features" in saved.files:
        parts = [[str(v) for v in saved[f"one_hot_{part}"]]
                 for part in ("features", "columns", "levels", "roles")]
        fields["one_hot"] = list(zip(*parts, strict=True))
    if "feature_missing" in saved.files:
        fields["feature_missing"] = saved["feature_missing"]
    if "vocabulary" in saved.files:
        fields.update(vocabulary=[str(w) for w in saved["vocabulary"]],
                      text_columns=[str(c) for c in saved["text_columns"]],
                      token_length=int(saved["token_length"]),
                      unknown_id=int(saved["unknown_id"]))
    return fields


def _vocab_size(data: TaskData) -> int:
    """As model.baselines.vocab_size sizes embedding_pool; 0 where it does not apply (or for
    negative ids, which the model stage reports)."""
    if data.kind != "tokens":
        return 0
    from trainwise.model.baselines import ModelError, vocab_size

    try:
        return vocab_size(data)
    except ModelError:
        return 0
