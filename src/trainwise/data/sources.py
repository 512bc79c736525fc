"""Where data comes from: built-in sets, tables, .npz arrays, image folders (one dispatcher)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

# config_sections imports pydantic and findings only: no cycle
from trainwise.config_sections import BUILT_IN_SOURCES, READABLE_DATA, data_suffix
from trainwise.config_values import allowed_sources
from trainwise.data.arrays import load_npz
from trainwise.data.errors import DataError
from trainwise.data.images import load_image_folder
from trainwise.data.keys import NONE
from trainwise.data.tables import load_table, read_table
from trainwise.data.task import TaskData
from trainwise.findings import Finding, warning

__all__ = ["BUILT_IN", "DataError", "load_data", "read_table"]


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
        images = getattr(bunch, "images", None)  # digits: (N, 8, 8) beside the flat (N, 64)
        return TaskData(
            name=loader_name, kind="vector", task="classification",
            x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int64),
            class_names=[str(c) for c in bunch.target_names],
            feature_names=[str(f) for f in getattr(bunch, "feature_names", [])]
            or [f"x{i}" for i in range(bunch.data.shape[1])],
            image_shape=tuple(images.shape[1:]) if images is not None else None,
        )

    return load


# the names are config's (it reads `trainwise run wine` without importing the loaders); zip's
# strict=True fails at import when a set is added to one list only (review s11 VD13)
BUILT_IN: dict[str, Callable[[], TaskData]] = dict(zip(BUILT_IN_SOURCES, (
    load_mnist1d, _sklearn_set("digits"), _sklearn_set("breast_cancer"), _sklearn_set("wine")),
    strict=True))


def load_data(source: str, target: str = "label", task: str = "auto", group_column: str = "",
              *, time_column: str = "", kind: str = "auto", image_size: int = 0,
              na_values: tuple[str, ...] = (), sep: str = "", encoding: str = "",
              decimal: str = "", dayfirst: bool = False,
              drop_columns: tuple[str, ...] = ()) -> TaskData:
    """A built-in set by name, a .csv / .parquet table, a .npz of arrays, or an image folder.

    Tables: empty group/time columns are inferred from names and values ('none': no key);
    `na_values` are text cells read as missing (data.na_values); CSV files: `sep` and
    `decimal` ('' = ',' and '.', or sniffed), `encoding` ('' = UTF-8); `dayfirst`: dates such
    as '01/05/2024' read as 1 May (data.dayfirst); `drop_columns`: columns left out
    (data.drop_columns).
    .npz: `groups` and `times` arrays in the file are declared keys. Image folders: groups
    from root/groups.csv (file,<group column>). For both, a group_column with no groups to
    read is an error, as for a table without that column.
    `image_size`: images (folders, or .npz read as images) resized to image_size x image_size.
    """
    path = Path(source)
    suffix = data_suffix(path)  # DATA.CSV, data.tsv and data.csv.gz are tables too
    if source in BUILT_IN:
        _check_no_keys(source, group_column, time_column)
        data = BUILT_IN[source]()
        if target != "label":
            data.findings.append(_target_unused(source, target))
    elif suffix in (".csv", ".parquet"):
        data = load_table(path, target, task, group_column, time_column, tuple(na_values),
                          sep=sep, encoding=encoding, decimal=decimal, dayfirst=dayfirst,
                          kind=kind, drop_columns=tuple(drop_columns))
    elif suffix == ".npz":
        data = load_npz(path, kind, task, group_column, image_size)
    elif path.is_dir():
        data = load_image_folder(path, image_size, group_column)
    else:
        raise DataError(f"unknown data source '{source}': "
                        f"{allowed_sources(BUILT_IN_SOURCES, READABLE_DATA)}.")
    if drop_columns and suffix not in (".csv", ".parquet"):
        data.findings.append(warning(
            "data", "drop_columns_unused", f"data.drop_columns = {list(drop_columns)} was "
            f"ignored: it names columns of a .csv / .parquet table, and '{source}' is not one.",
            "Remove data.drop_columns, or point data.source at the table."))
    if image_size and data.kind != "image":
        data.findings.append(_image_size_unused(data.kind, image_size))
    return data


def _check_no_keys(source: str, group_column: str, time_column: str) -> None:
    """A built-in set has no group or time column: one asked for is an error, as a missing
    column of a table is. Ignored, a group split by patient became a split by rows, said
    nowhere (audit s15 K14)."""
    for key, column in (("group_column", group_column), ("time_column", time_column)):
        if column and column != NONE:
            raise DataError(
                f"split.{key} = '{column}' names a column, but the built-in data set "
                f"'{source}' has no columns to split by: its rows are independent samples. "
                f"Remove split.{key} (or set it to \"none\"), or point data.source at a table "
                f"(.csv / .parquet) or .npz that holds the {key.split('_')[0]} of each row.")


def _target_unused(source: str, target: str) -> Finding:
    return warning("data", "target_unused",
                   f"data.target = '{target}' was ignored: it names a column of a table, and "
                   f"the built-in data set '{source}' has its own labels.",
                   "Remove data.target, or point data.source at the table that has "
                   f"'{target}'.", target=target, source=source)


def _image_size_unused(kind: str, image_size: int) -> Finding:
    return warning("data", "image_size_unused",
                   f"data.image_size = {image_size} was ignored: it resizes images, and this "
                   f"data was read as {kind} rows.",
                   'Remove data.image_size; or, if the rows are gray images (N, H, W), set '
                   'data.kind = "image" as well.', image_size=image_size, kind=kind)
