"""NumPy arrays -> TaskData: `.npz` files (X, y, optional groups, times) and in-memory arrays,
including sequences given as (N, T) or (N, T, C) and images as (N, H, W[, C])."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.data.errors import DataError, missing_data_file
from trainwise.data.keys import NONE, time_values
from trainwise.data.tables import encode_target, infer_task
from trainwise.data.targets import one_target_per_row, target_findings
from trainwise.data.task import Key, TaskData
from trainwise.data.token_ids import (
    PAD_ADVICE,
    as_token_ids,
    integer_reading,
    looks_like_token_ids,
)
from trainwise.findings import Finding, Severity

CHANNELS = (1, 3, 4)  # gray, RGB, RGBA: how an image's channel axis is recognised


def _as_sequence(x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:  # (N, T): one channel
        return x[:, None, :]
    if x.ndim == 3:  # (N, T, C), the layout of most sequence files -> (N, C, T) for Conv1d
        return np.ascontiguousarray(x.transpose(0, 2, 1))
    raise DataError(f"a sequence array must be (N, T) or (N, T, C); got shape {x.shape}.")


def _as_image(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:  # (N, H, W): gray
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in CHANNELS and x.shape[1] not in CHANNELS:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
    if x.ndim == 4:
        return x
    raise DataError(f"an image array must be (N, H, W), (N, H, W, C) or (N, C, H, W); got "
                    f"shape {x.shape}.")


def shape_inputs(x: np.ndarray, kind: str = "auto") -> tuple[np.ndarray, str]:
    """Rows of x in the layout the models expect, and the kind it was read as.

    auto: 2-D is token ids when it looks like padded ids (token_ids.py), else a vector per
    row, 3-D a sequence (N, T, C), 4-D an image; give kind for (N, T) sequences, (N, H, W)
    images and unpadded ids, which auto cannot tell apart from the others. Token ids stay
    int64; everything else becomes float32 (images may stay uint8)."""
    if x.ndim < 2:
        raise DataError(f"inputs have shape {x.shape}: expected one row per sample, e.g. (N, F). "
                        "Reshape a single feature to (N, 1).")
    if x.dtype.kind not in "biuf":
        raise DataError(f"inputs have dtype {x.dtype}; expected numbers. Encode text first or "
                        "save it as a table (.csv / .parquet).")
    if kind == "auto" and looks_like_token_ids(x):
        kind = "tokens"
    kind = kind if kind != "auto" else {2: "vector", 3: "sequence"}.get(x.ndim, "image")
    if kind == "tokens":
        return as_token_ids(x), kind
    if kind == "sequence":
        x = _as_sequence(x)
    elif kind == "image":
        x = _as_image(x)
    elif x.ndim != 2:
        raise DataError(f"a {kind} array must be (N, F); got shape {x.shape}. Set data.kind to "
                        "'sequence' or 'image'.")
    keep = x.dtype == np.uint8 and kind == "image"  # decoded pixels stay compact
    return (x if keep else x.astype(np.float32, copy=False)), kind


def _note_sequence_reading(data: TaskData, shape: tuple[int, ...]) -> None:
    """Auto reads every 3-D array as (N, T, C) sequences and hands the model (N, C, T); (N, H,
    W) gray images look the same, so an info says which reading was taken and how to change
    it, and a square array, the likelier image, gets a note too, which the terminal prints.
    Fewer steps than channels is the likelier sign of a file already stored (N, C, T): a
    warning."""
    rows, steps, channels = shape
    square = f" Its last two axes are equal, as in {steps}x{channels} images." \
        if steps == channels else ""
    message = (f"X of shape {shape} was read as {rows} sequences of {steps} steps with "
               f"{channels} channels: stored (N, T, C), given to the model as (N, C, T) = "
               f"(B, {channels}, {steps}), channels first as nn.Conv1d expects.{square}")
    fix = ('If these are gray images (N, H, W), set data.kind = "image" in [data] '
           '(array_data(..., kind="image") in Python); the model then convolves over height '
           "and width.")
    if steps < channels:
        data.findings.append(Finding(
            "data", Severity.WARNING, "sequence_axes_swapped",
            f"{message} {steps} steps of {channels} channels is unusual: the file may be "
            f"stored (N, C, T) already, and the model would then convolve over the {channels} "
            "channels as if they were time.",
            {"shape": list(shape)},
            "If X is stored (N, C, T), save it as (N, T, C) (np.savez(path, "
            "X=X.transpose(0, 2, 1), y=y)), since trainwise reads 3-D arrays as (N, T, C) "
            f"and transposes them; then revisit the data stage. {fix}"))
        return
    data.findings.append(Finding("data", Severity.INFO, "read_as_sequences", message,
                                 {"shape": list(shape)}, fix))
    if square:
        data.notes.append(f"{message} {fix}")


def _per_row(values: np.ndarray | None, rows: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values).reshape(-1) if np.ndim(values) else np.asarray(values)
    if values.ndim != 1 or len(values) != rows:
        raise DataError(f"'{name}' has {np.size(values)} values for {rows} rows; give one per "
                        "row.")
    return values


def _times(values: np.ndarray | None, rows: int) -> np.ndarray | None:
    values = _per_row(values, rows, "times")
    if values is None or values.dtype.kind == "M":
        return values
    return time_values(pd.Series(values), "times")


def _in_class_order(y: np.ndarray, classes: np.ndarray) -> pd.Series:
    """y as a Categorical of `classes`, which encode_target codes in that order (low, mid,
    high: an ordinal target's confusion matrix reads in order), not sorted (high, low, mid)."""
    order = pd.Index(np.asarray(classes).astype(str))
    labels = pd.Series(np.asarray(y).astype(str))
    unknown = sorted(set(labels.unique()) - set(order))
    if unknown:
        raise DataError(f"y holds labels {unknown[:5]} that are not in `classes` "
                        f"({list(order[:10])}), the class order. Add them to `classes`, or "
                        "leave `classes` out to have the classes sorted.")
    return pd.Series(pd.Categorical(labels, categories=order, ordered=True))


def array_data(x: np.ndarray, y: np.ndarray, *, kind: str = "auto", task: str = "auto",
               groups: np.ndarray | None = None, times: np.ndarray | None = None,
               name: str = "arrays", classes: np.ndarray | None = None) -> TaskData:
    """Arrays -> TaskData. Groups and times given here are declared keys; `classes`, the
    class order (a pandas Categorical's categories), orders class_names instead of sorting."""
    x, requested = np.asarray(x), kind
    inputs, kind = shape_inputs(x, kind)
    y, flattened = one_target_per_row(y, len(x))
    target = pd.Series(y) if classes is None else _in_class_order(y, classes)
    if target.isna().any():
        raise DataError(f"y has {int(target.isna().sum())} missing labels (first at row "
                        f"{int(np.flatnonzero(target.isna())[0])}); drop or fill those rows.")
    requested_task, task = task, infer_task(target) if task == "auto" else task
    findings = target_findings(target, requested_task, task, "y")
    encoded, class_names = encode_target(target, task, "y")
    data = TaskData(name=name, kind=kind, task=task, x=inputs, y=encoded,  # type: ignore[arg-type]
                    class_names=class_names, groups=_per_row(groups, len(x), "groups"),
                    times=_times(times, len(x)), findings=findings,
                    notes=[flattened] if flattened else [])
    if x.ndim == 3 and requested == "auto":
        _note_sequence_reading(data, x.shape)
    reading = integer_reading(x, kind, requested) if x.ndim == 2 and x.dtype.kind in "iu" \
        else None
    data.findings += [reading] if reading is not None else []
    data.keys = [Key(name, role, declared=True, reason=f"the `{name}` array")  # type: ignore
                 for role, name, values in (("group", "groups", data.groups),
                                            ("time", "times", data.times)) if values is not None]
    width = int(np.prod(inputs.shape[2:])) if kind != "vector" else inputs.shape[1]
    data.feature_names = [f"x{i}" for i in range(inputs.shape[1])] if kind == "vector" else \
        [f"t{i}" for i in range(width)] if kind == "sequence" and inputs.shape[1] == 1 else []
    return data


# accepted names, first found wins: X_train / y_train as Keras' load_data returns them
X_NAMES, Y_NAMES = ("X", "x", "X_train", "x_train"), ("y", "Y", "y_train", "Y_train")
TEST_NAMES = (("X_test", "x_test"), ("y_test", "Y_test"))


def _first(arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray | None:
    return next((arrays[name] for name in names if name in arrays), None)


def _pick(arrays: dict[str, np.ndarray], names: tuple[str, ...], path: Path) -> np.ndarray:
    found = _first(arrays, names)
    if found is not None:
        return found
    raise DataError(f"'{path}' has no array named {' or '.join(names)} (it holds: "
                    f"{', '.join(sorted(arrays)) or 'nothing'}). Save it with "
                    "np.savez(path, X=inputs, y=labels[, groups=..., times=...]).")


def _resize_images(data: TaskData, size: int) -> None:
    """Images to size x size, as data.image_size does for folders, counted in a note."""
    from trainwise.data.images import resize_images  # imports torch: only when needed

    height, width = data.x.shape[2:]
    if (height, width) == (size, size):
        return
    data.x = resize_images(data.x, size)
    if data.x_test is not None:
        data.x_test = resize_images(data.x_test, size)
    count = len(data.x) + (len(data.x_test) if data.x_test is not None else 0)
    data.notes.append(f"{count} images resized from {height}x{width} to {size}x{size} "
                      "(data.image_size)")


def _groups(arrays: dict[str, np.ndarray], group_column: str, path: Path) -> np.ndarray | None:
    """The file's `groups` array unless group_column is 'none'; a group column asked for in a
    file without one is an error, as a missing column of a table is."""
    if group_column == NONE:
        return None
    if group_column and "groups" not in arrays:
        raise DataError(f"split.group_column = '{group_column}' names a column, but '{path}' "
                        "has no columns and no 'groups' array. Save one group per row in the "
                        "file (np.savez(path, X=..., y=..., groups=...)), or remove "
                        "split.group_column.")
    return arrays.get("groups")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: _read_array(archive, name, path) for name in archive.files}
    except DataError:
        raise
    except Exception as exc:  # zipfile / numpy raise many types; the user needs the file name
        raise DataError(f"could not read '{path}': {exc}. Is it a .npz written by np.savez? "
                        "(object arrays are refused: save text labels as a fixed-width "
                        "string array, e.g. y.astype(str))") from None


def _read_array(archive: Any, name: str, path: Path) -> np.ndarray:
    """One array of the archive; an object array (which np.savez pickles, and which is never
    unpickled here: a pickle can run code) is named, with the fix that fits its role."""
    try:
        return archive[name]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
    what = f"'{path}' holds '{name}' as an object array, which np.savez pickles and trainwise " \
        "does not load (a pickle can run code)"
    if name in X_NAMES or name in TEST_NAMES[0]:
        raise DataError(f"{what}. Rows of different lengths make one, e.g. token lists: "
                        f"{PAD_ADVICE}.")
    raise DataError(f"{what}. Save text labels or keys as a fixed-width string array, e.g. "
                    f"np.savez(path, ..., {name}={name}.astype(str)).")


# every key load_npz reads; a near-miss of a key that changes the split is an error, since
# ignoring `group` (for `groups`) split 20 subjects at random, 12 of 12 test subjects also in
# train, and `Xtest` (for X_test) gave a carved test part instead of the user's (audit s14 Z17)
KNOWN_KEYS = (*X_NAMES, *Y_NAMES, *TEST_NAMES[0], *TEST_NAMES[1], "groups", "times", "classes")
SPLIT_KEYS = ("groups", "times", "X_test", "y_test")
_CANONICAL = {name.lower(): name for name in reversed(KNOWN_KEYS)}  # x_test -> X_test


def _closest_key(name: str) -> str | None:
    # 0.7: 'group_id' (0.71), 'Xtest' (0.91), 'time' (0.89) match; 'weights', 'X_val' do not
    close = difflib.get_close_matches(name.lower(), list(_CANONICAL), n=1, cutoff=0.7)
    return _CANONICAL[close[0]] if close else None


def unknown_keys(names: list[str], path: Path) -> Finding | None:
    """A warning naming the keys load_npz does not read; an error for a near-miss of a split
    key (groups, times, X_test, y_test) that the file lacks, as a misspelt config key is."""
    unknown = [name for name in names if name not in KNOWN_KEYS]
    guesses = {name: _closest_key(name) for name in unknown}
    present = {_CANONICAL[name.lower()] for name in names if name in KNOWN_KEYS}
    misspelt = {name: guess for name, guess in guesses.items()
                if guess in SPLIT_KEYS and guess not in present}
    if misspelt:
        pairs = ", ".join(f"'{name}' (did you mean '{guess}'?)"
                          for name, guess in misspelt.items())
        raise DataError(f"'{path}' has arrays named {pairs}: close to keys trainwise reads, "
                        "but not them, so they would be ignored and the split made without "
                        "the groups, times or test part you saved. Rename them: "
                        "np.savez(path, X=..., y=..., groups=..., times=..., X_test=..., "
                        f"y_test=...) (keys read: {', '.join(KNOWN_KEYS)}).")
    if not unknown:
        return None
    named = ", ".join(f"'{name}'" + (f" (did you mean '{guesses[name]}'?)" if guesses[name]
                                      else "") for name in unknown)
    return Finding("data", Severity.WARNING, "npz_keys_ignored",
                   f"'{path}' holds arrays trainwise does not read: {named}; they are ignored.",
                   {"ignored": unknown, "read": list(KNOWN_KEYS)},
                   "If one of them is a key of the data, save it under the name trainwise "
                   "reads (groups, times, X_test / y_test, classes); per-sample weights and "
                   "other extras are not used: leave them out of the file to silence this.")


def load_npz(path: Path, kind: str = "auto", task: str = "auto", group_column: str = "",
             image_size: int = 0) -> TaskData:
    """`X` (N, ...) and `y` (N,) (or x / Y / X_train / y_train), optional `groups`, `times`,
    `X_test`, `y_test`, `classes` (the class order); images are resized to image_size x
    image_size when it is given.
    group_column: 'none' ignores `groups`; any other name needs a `groups` array."""
    if not path.exists():
        raise DataError(missing_data_file(path))
    arrays = _read_npz(path)
    ignored = unknown_keys(list(arrays), path)  # before any array is read as X or y
    x, y = _pick(arrays, X_NAMES, path), _pick(arrays, Y_NAMES, path)
    data = array_data(x, y, kind=kind, task=task, name=path.stem, times=arrays.get("times"),
                      groups=_groups(arrays, group_column, path), classes=arrays.get("classes"))
    x_test, y_test = (_first(arrays, names) for names in TEST_NAMES)
    attach_test(data, x_test, y_test, f"'{path}'")
    data.findings += [ignored] if ignored is not None else []
    if image_size and data.kind == "image":
        _resize_images(data, image_size)
    return data


def attach_test(data: TaskData, x_test: np.ndarray | None, y_test: np.ndarray | None,
                where: str) -> None:
    """Give `data` its held-out test part, read as X is and coded with y's classes, in place.
    `where` names the source in errors ("'data.npz'", "the dict passed as data").

    One function for a .npz and for arrays in memory: audit(dict) coded y_test with its own
    classes (dog/fish as 0/1, read back as cat/dog), dropped an X_test without y_test and took
    an X_test of another width, where run() on the same dict refused or remapped them."""
    if (x_test is None) != (y_test is None):
        raise DataError(f"{where} holds only one of X_test / y_test: a test part needs both "
                        "inputs and labels. Give both or neither (the split then carves a test "
                        "part).")
    if x_test is None:
        return
    test = array_data(x_test, y_test, kind=data.kind, task=data.task)
    if test.input_shape != data.input_shape:
        raise DataError(f"X_test rows have shape {test.input_shape} but X rows "
                        f"{data.input_shape} in {where}: the model reads one shape. Save "
                        "the test inputs prepared as X is.")
    data.x_test, data.y_test = test.x, _same_classes(test, data, where)


def _same_classes(test: TaskData, data: TaskData, where: str) -> np.ndarray:
    if data.task != "classification":
        return test.y
    unknown = sorted(set(test.class_names) - set(data.class_names))
    if unknown:
        raise DataError(f"y_test in {where} has classes {unknown[:5]} that y lacks; the model "
                        "cannot predict a class it never saw in training. Drop those test "
                        "rows, or add training rows of those classes.")
    index = {name: i for i, name in enumerate(data.class_names)}
    return np.array([index[test.class_names[c]] for c in test.y], dtype=np.int64)
