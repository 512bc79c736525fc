"""Where data comes from: built-in sets (generated or shipped offline) and tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from trainwise.data.task import TaskData
from trainwise.findings import TrainwiseError


class DataError(TrainwiseError):
    """The data cannot be used as given; the message names the file or column and the fix."""


def load_mnist1d() -> TaskData:
    """MNIST-1D (Greydanus & Kobak): 4000 train / 1000 test sequences of length 40, 10 digits.

    Generated offline by `make_dataset`; `get_dataset` would try a download and write a pickle.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    return TaskData(
        name="mnist1d", kind="sequence", task="classification",
        x=raw["x"].astype(np.float32)[:, None, :],  # (N, 1, 40): one channel
        y=raw["y"].astype(np.int64),
        x_test=raw["x_test"].astype(np.float32)[:, None, :],
        y_test=raw["y_test"].astype(np.int64),
        class_names=[str(d) for d in range(10)],
        feature_names=[f"t{i}" for i in range(raw["x"].shape[1])],
    )


def _sklearn_set(loader_name: str) -> Callable[[], TaskData]:
    def load() -> TaskData:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{loader_name}")()
        return TaskData(
            name=loader_name, kind="vector", task="classification",
            x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int64),
            class_names=[str(c) for c in bunch.target_names],
            feature_names=[str(f) for f in getattr(bunch, "feature_names", [])]
            or [f"x{i}" for i in range(bunch.data.shape[1])],
        )

    return load


BUILT_IN: dict[str, Callable[[], TaskData]] = {
    "mnist1d": load_mnist1d,
    "digits": _sklearn_set("digits"),
    "breast_cancer": _sklearn_set("breast_cancer"),
    "wine": _sklearn_set("wine"),
}


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist. Check data.source in your config.")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file name
        raise DataError(f"could not read '{path}': {exc}. Is it a valid {path.suffix} file?") from None
    raise DataError(f"data file '{path}' has suffix '{path.suffix}'; expected .csv or .parquet.")


def _infer_task(target: pd.Series) -> str:
    if target.dtype.kind in "OUSbc" or str(target.dtype) == "category":
        return "classification"
    values = target.dropna()
    whole = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    return "classification" if whole and values.nunique() <= 20 else "regression"


def _encode_target(target: pd.Series, task: str, column: str) -> tuple[np.ndarray, list[str]]:
    if task == "regression":
        if target.dtype.kind not in "iuf":
            raise DataError(f"target column '{column}' is not numeric, so it cannot be regressed. "
                            "Set data.task = \"classification\" or choose a numeric column.")
        return target.to_numpy(np.float32), []
    kinds = {type(v).__name__ for v in target}
    if len(kinds) > 1:
        raise DataError(f"target column '{column}' mixes value types {sorted(kinds)}. "
                        "Make every label the same type (all text or all integers).")
    classes = sorted(target.unique().tolist())
    index = {c: i for i, c in enumerate(classes)}
    return target.map(index).to_numpy(np.int64), [str(c) for c in classes]


def _encode_features(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numbers stay (NaN kept, filled later from training statistics); text is one-hot."""
    categorical = [c for c in frame.columns if frame[c].dtype.kind in "OUSb"
                   or str(frame[c].dtype) == "category"]
    encoded = pd.get_dummies(frame, columns=categorical, dummy_na=True, dtype=np.float32)
    encoded = encoded.loc[:, encoded.nunique(dropna=False) > 1] if categorical else encoded
    return encoded.to_numpy(np.float32), [str(c) for c in encoded.columns]


def load_table(path: Path, target: str, task: str = "auto", group_column: str = "") -> TaskData:
    frame = read_table(path)
    if target not in frame.columns:
        raise DataError(f"target column '{target}' is not in '{path}' (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))}). Set data.target.")
    notes = []
    missing = frame[target].isna()
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} rows whose target '{target}' is missing")
        frame = frame.loc[~missing].reset_index(drop=True)
    task = _infer_task(frame[target]) if task == "auto" else task
    y, class_names = _encode_target(frame[target], task, target)
    if task == "classification" and len(class_names) < 2:
        raise DataError(f"target column '{target}' has a single class {class_names}; "
                        "classification needs at least two. Is this the right column?")
    groups = None
    dropped = [target]
    if group_column:
        if group_column not in frame.columns:
            raise DataError(f"group column '{group_column}' is not in '{path}'. "
                            "Set split.group_column to an existing column or leave it empty.")
        groups = frame[group_column].astype(str).to_numpy()
        dropped.append(group_column)
    x, feature_names = _encode_features(frame.drop(columns=dropped))
    if x.shape[1] == 0:
        raise DataError(f"'{path}' has no feature columns besides the target. Add features.")
    return TaskData(name=path.stem, kind="table", task=task, x=x, y=y,  # type: ignore[arg-type]
                    class_names=class_names, feature_names=feature_names, groups=groups,
                    notes=notes)


def load_data(source: str, target: str = "label", task: str = "auto",
              group_column: str = "") -> TaskData:
    """A built-in set by name, or a .csv / .parquet table."""
    if source in BUILT_IN:
        return BUILT_IN[source]()
    if source.endswith((".csv", ".parquet")):
        return load_table(Path(source), target, task, group_column)
    raise DataError(f"unknown data source '{source}'. Use one of {sorted(BUILT_IN)} "
                    "or the path of a .csv or .parquet file.")
