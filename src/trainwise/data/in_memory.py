"""Data handed to `trainwise.run(data=...)` from a notebook: written once to a file under
run.out_dir, and run from there like any other source.

Why a file and not a reference: config.toml must rerun the run (`trainwise run
RUN/config.toml`), a resumed run must reload the very same rows (its fingerprint is checked),
and under DDP every process must read one source. A file named by its content gives all three;
the same arrays passed again reuse it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.config import DataConfig
from trainwise.data.frame_cells import as_csv_table, refuse_bad_names
from trainwise.data.targets import one_target_per_row
from trainwise.data.task import TaskData
from trainwise.data.token_ids import ragged_error, ragged_lengths
from trainwise.findings import TrainwiseError

NPZ_NAMES = ("X", "y", "X_test", "y_test", "groups", "times", "classes")  # what load_npz reads
PAIR_TARGET = DataConfig.model_fields["target"].default  # y's column when X is a DataFrame
IN_MEMORY_SOURCE = "the DataFrame passed as data="  # how run()'s messages name a frame
DIGEST_LENGTH = 16  # hex characters of sha256 naming the folder a frame or arrays are saved in


def save_in_memory(data: Any, out_dir: str | Path) -> Path:
    """A DataFrame -> `<out_dir>/data/<digest>/table.parquet`; `(x, y)` arrays or
    tensors, or a dict named as a .npz's (X, y, X_test, y_test, groups, times) ->
    `.../arrays.npz` (a pandas Categorical y's categories as `classes`, its class order).
    The file's stem names the run folder (unless run.name does).
    A TensorDataset is its (x, y) tensors; `(X_df, y)` a table (see _unpacked)."""
    data, _ = _unpacked(data)
    if isinstance(data, pd.DataFrame):
        refuse_bad_names(data, IN_MEMORY_SOURCE)  # before _index_as_columns looks names up
        payload, suffix = as_csv_table(_index_as_columns(data), IN_MEMORY_SOURCE), ".parquet"
        # dtypes too: an int column and its Categorical hash alike (R5), and a file of the
        # one must not be reused for the other
        digest = _digest([pd.util.hash_pandas_object(payload, index=False).to_numpy(),
                          np.array(list(payload.columns)),
                          np.array([str(dtype) for dtype in payload.dtypes])])
    else:
        payload, suffix = _arrays(data), ".npz"
        digest = _digest([v for key in sorted(payload) for v in (np.array(key), payload[key])])
    path = Path(out_dir) / "data" / digest / f"{_default_name(suffix)}{suffix}"
    if not path.exists():
        _write_once(path, payload)
    return path


def as_task_data(data: Any, target: str = "", verb: str = "audit") -> TaskData:
    """What run(data=...) takes, read by the loaders its saved file goes through (table_data,
    array_data), without writing the file: for the stage verbs, which are pure.
    A TaskData passes through; a DataFrame needs `target`, as run() needs data.target."""
    from trainwise.data.arrays import array_data, attach_test  # the loaders: only when needed
    from trainwise.data.tables import table_data

    if isinstance(data, TaskData):
        return data
    data, implied = _unpacked(data)
    target = target or implied
    if isinstance(data, pd.DataFrame):
        where = f"the DataFrame passed to {verb}()"
        refuse_bad_names(data, where)  # a MultiIndex's advice looped (Z4)
        if not target or target not in data.columns:  # table_data's advice is for run()
            raise TrainwiseError(_target_message(data, target, verb))
        return table_data(_index_as_columns(data), target, source=where)  # as_csv_table there
    arrays = _arrays(data, verb)
    task_data = array_data(arrays["X"], arrays["y"], groups=arrays.get("groups"),
                           times=arrays.get("times"), classes=arrays.get("classes"))
    attach_test(task_data, arrays.get("X_test"), arrays.get("y_test"), "the arrays passed")
    return task_data


def _target_message(frame: pd.DataFrame, target: str, verb: str) -> str:
    """The verb's own call: audit(df, target="label") on a frame without 'label' was told to
    set data.target in a run() config or with --set, neither of which the user had called."""
    guess = str(frame.columns[-1])  # a target is most often the last column
    columns = ", ".join(map(str, frame.columns[:20])) + (", ..." if frame.shape[1] > 20 else "")
    what = (f"target column '{target}' is not in the DataFrame (columns: {columns}). Name "
            "the column that holds the labels" if target
            else f"{verb}(df) needs the name of the target column")
    return (f"{what}: trainwise.{verb}(df, target=\"{guess}\"), or "
            f"trainwise.{verb}(trainwise.table_data(df, \"{guess}\")).")


def _unpacked(data: Any) -> tuple[Any, str]:
    """(data, the target column it implies or ""). A TensorDataset of two tensors is the (x, y)
    pair it holds. (X_df, y), the scikit-learn habit, becomes one table with y as its column
    PAIR_TARGET, data.target's default: saved as arrays, the column names were lost (findings
    said 'x0', not 'age') and a text column was refused, where a table encodes it."""
    from torch.utils.data import TensorDataset  # torch is loaded by then: run() imports it

    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        data = tuple(data.tensors)
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and isinstance(data[0], pd.DataFrame)):
        return data, ""
    from trainwise.data.split import as_labels  # the one rule: (N,), (N, 1), one column

    frame, labels = data[0], data[1]
    if np.ndim(labels) == 2 and np.shape(labels)[1] > 1 and len(labels) == len(frame):
        one_target_per_row(_numpy(labels), len(frame))  # raises: multi-label, multi-output
    y = as_labels(_numpy(labels), "run")  # by position, as sklearn pairs
    column = labels.columns[0] if isinstance(labels, pd.DataFrame) and labels.shape[1] == 1 \
        else getattr(labels, "name", None)
    name = str(column or "target")
    one_frame = ("Or pass one DataFrame holding the target: trainwise.run({\"data\": "
                 f"{{\"target\": \"{name}\"}}}}, data=X.assign({name}=y)).")
    if y.shape != (len(frame),):
        raise TrainwiseError(f"data=(X, y) with X a DataFrame of {len(frame)} rows needs y of "
                             f"shape ({len(frame)},), one label per row; got {y.shape}. "
                             + one_frame)
    if PAIR_TARGET in frame.columns:
        raise TrainwiseError(f"data=(X, y): X has a column '{PAIR_TARGET}', the name y gets in "
                             "the table the pair becomes; rename that column. " + one_frame)
    categories = _categorical(labels)  # the user's class order (low, mid, high), kept
    values = y if categories is None else pd.Categorical(y, dtype=categories)
    return _index_as_columns(frame).assign(**{PAIR_TARGET: values}), PAIR_TARGET


def _categorical(labels: Any) -> pd.CategoricalDtype | None:
    """The dtype of a pandas Categorical target (a Series, a one-column frame or the array),
    whose categories are the class order; np.asarray drops it, and sorted names followed."""
    dtype = labels.dtypes.iloc[0] if isinstance(labels, pd.DataFrame) and labels.shape[1] == 1 \
        else getattr(labels, "dtype", None)
    return dtype if isinstance(dtype, pd.CategoricalDtype) else None


def describe_source(path: Path) -> str:
    """How messages name a table file: one save_in_memory wrote is the user's DataFrame (they
    never made that parquet, and naming its path sent them looking for it), else the path."""
    digest = path.parent.name
    saved = (path.name == f"{_default_name('.parquet')}.parquet"
             and path.parent.parent.name == "data" and len(digest) == DIGEST_LENGTH
             and all(c in "0123456789abcdef" for c in digest))
    return IN_MEMORY_SOURCE if saved else str(path)


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its meaningful index levels as columns: a named level (patient_id) or
    dates (a DatetimeIndex, as pandas users keep series). The file is saved without an index,
    so such a level would vanish, and with it the time or group key the split must honour: a
    date-indexed series got a random split that leaks the future. An unnamed integer or label
    index (0..N-1, or what filtering left) is row numbering: dropped. So is a level whose name
    is already a column (set_index(..., drop=False) keeps both) or an earlier level's."""
    names = [_column_name(frame.index, i) for i in range(frame.index.nlevels)]
    keep = [i for i, name in enumerate(names)
            if name is not None and name not in frame.columns and names.index(name) == i]
    if not keep:
        return frame
    return frame.rename_axis(names).reset_index(level=keep).reset_index(drop=True)


def _column_name(index: pd.Index, level: int) -> Any:
    """The column an index level becomes: its name, "date" for unnamed dates, else None."""
    dates = isinstance(index.get_level_values(level), (pd.DatetimeIndex, pd.PeriodIndex))
    return index.names[level] if index.names[level] is not None or not dates else "date"


def _arrays(data: Any, verb: str = "run") -> dict[str, np.ndarray]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data = {"X": data[0], "y": data[1]}
    if not isinstance(data, dict):
        raise TrainwiseError(_refusal(data, verb))
    unknown = sorted(set(data) - set(NPZ_NAMES))
    if unknown or not {"X", "y"} <= set(data):
        raise TrainwiseError(f"data= as a dict needs 'X' and 'y' and may add X_test, y_test, "
                             f"groups, times, classes; got {sorted(data)}.")
    for key, value in data.items():  # np.asarray would raise a bare "inhomogeneous shape"
        lengths = ragged_lengths(value)
        if lengths is not None:
            raise ragged_error(key, lengths)
    arrays = {key: _numpy(value) for key, value in data.items()}
    categories = _categorical(data["y"])
    if categories is not None and "classes" not in arrays:  # load_npz orders classes by it
        arrays["classes"] = np.asarray(categories.categories).astype(str)
    for key, value in arrays.items():
        if value.dtype == object:  # np.savez would pickle it, and load_npz refuses pickles
            arrays[key] = value.astype(str)
    return arrays


def _refusal(data: Any, verb: str) -> str:
    pair = ("an (x, y) pair of arrays or tensors (x may be a DataFrame of features), a "
            f"TensorDataset of x and y, or a dict of arrays named {', '.join(NPZ_NAMES)}")
    from torch.utils.data import DataLoader, Dataset

    behind = (" A DataLoader or another Dataset: pass the tensors behind it, data=(x, y), or "
              "data=loader.dataset when that is a TensorDataset of two tensors (x, y)."
              if isinstance(data, (DataLoader, Dataset)) else "")
    if verb == "run":
        return (f"data= got a {type(data).__name__}. Pass a pandas DataFrame (its target "
                f"column named by data.target), {pair}.{behind}")
    return (f"{verb}() got a {type(data).__name__}. Pass what trainwise.load_data, table_data "
            f"or array_data return, a pandas DataFrame with target=\"COLUMN\", {pair}.{behind}")


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU or needing grad
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _digest(parts: list[np.ndarray]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(str((part.dtype, part.shape)).encode())
        hasher.update(np.ascontiguousarray(part).tobytes())
    return hasher.hexdigest()[:DIGEST_LENGTH]


def _default_name(suffix: str) -> str:
    return "table" if suffix == ".parquet" else "arrays"


def _write_once(path: Path, payload: pd.DataFrame | dict[str, np.ndarray]) -> None:
    """Write to a temporary name, then rename: processes writing the same file at once (DDP)
    or a run killed mid-write never leave a half file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    if isinstance(payload, pd.DataFrame):
        payload.to_parquet(tmp, index=False)
    else:
        np.savez(tmp, **payload)
    os.replace(tmp, path)
