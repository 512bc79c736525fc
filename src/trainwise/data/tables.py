"""CSV and Parquet tables -> TaskData: target, numeric and categorical features, keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.data.coltypes import coerce_numeric_text, replace_na_values
from trainwise.data.csvfile import read_csv
from trainwise.data.errors import DataError
from trainwise.data.keys import KeyPlan, plan_keys, time_values
from trainwise.data.targets import lookalike_label_findings, task_findings
from trainwise.data.task import TaskData
from trainwise.findings import Finding, Severity, warning

MAX_ONE_HOT = 32  # categories one-hot encoded; above, one integer code column (1M rows x a
# 1000-level column one-hot would be 4 GB of float32, and an id-like text column far more)


def read_table(path: Path, sep: str = "", encoding: str = "", decimal: str = ""
               ) -> tuple[pd.DataFrame, list[Finding]]:
    """A .csv / .parquet file as a DataFrame, and what reading it assumed (a sniffed CSV
    separator). sep / encoding / decimal: data.sep, data.encoding, data.decimal (CSV only)."""
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist. Check data.source in your config.")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path), []
        if path.suffix == ".csv":
            return read_csv(path, sep, encoding, decimal)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file name
        raise DataError(f"could not read '{path}': {exc}. Is it a valid {path.suffix} "
                        "file?") from None
    raise DataError(f"data file '{path}' has suffix '{path.suffix}'; expected .csv or .parquet.")


def infer_task(target: pd.Series) -> str:
    if target.dtype.kind in "OUSbc" or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    values = target.dropna()
    whole = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    return "classification" if whole and values.nunique() <= 20 else "regression"


def encode_target(target: pd.Series, task: str, column: str) -> tuple[np.ndarray, list[str]]:
    if task == "regression":
        if target.dtype.kind not in "iuf":
            raise DataError(f"target column '{column}' is not numeric, so it cannot be regressed. "
                            "Set data.task = \"classification\" or choose a numeric column.")
        return _as_float32(target, f"target column '{column}'"), []
    if target.dtype == object and pd.api.types.infer_dtype(target, skipna=True).startswith(
            "mixed"):  # C-level scan: a Python set over 1M labels took 0.5 s
        kinds = sorted({type(v).__name__ for v in target.drop_duplicates()})
        raise DataError(f"target column '{column}' mixes value types {kinds}. "
                        "Make every label the same type (all text or all integers).")
    codes, classes = pd.factorize(target, sort=True)
    if len(classes) < 2:
        raise DataError(f"target column '{column}' has a single class {list(classes)}; "
                        "classification needs at least two. Is this the right column?")
    return codes.astype(np.int64), [str(c) for c in classes]


def _as_float32(column: pd.Series, what: str) -> np.ndarray:
    """float32, as training computes; a finite value beyond its range (3.4e38) would turn
    into inf and read as missing, so it is an error that says so."""
    values = column.to_numpy(np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    largest = float(np.abs(finite).max()) if finite.size else 0.0
    if largest > np.finfo(np.float32).max:
        raise DataError(f"{what} holds values up to {largest:.3g}, beyond float32's range "
                        f"(3.4e38) that training computes in. Rescale it (divide by a power "
                        "of ten) or take its log.")
    return values.astype(np.float32)


def _is_categorical(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column) and column.dtype.kind != "M" \
        or column.dtype.kind == "b"


def encode_features(frame: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str]]:
    """Numbers stay (NaN kept, filled later from training statistics); dates become days since
    1970; text is one-hot up to MAX_ONE_HOT levels, else one sorted integer code (NaN kept)."""
    notes, parts = [], {}
    one_hot = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            days = column.astype("datetime64[ns]").to_numpy().astype(np.int64) / 86_400e9
            parts[str(name)] = np.where(column.isna().to_numpy(), np.nan, days)
        elif not _is_categorical(column):
            parts[str(name)] = _as_float32(column, f"column '{name}'")
        elif column.nunique(dropna=True) <= MAX_ONE_HOT:
            one_hot.append(name)
        else:
            codes = pd.factorize(column, sort=True)[0]
            parts[str(name)] = np.where(codes < 0, np.nan, codes).astype(np.float32)
            notes.append(f"column '{name}' has {codes.max() + 1:,} categories: encoded as one "
                         f"integer code, not {codes.max() + 1:,} one-hot columns")
    columns = [np.asarray(v, dtype=np.float32) for v in parts.values()]
    names = list(parts)
    if one_hot:
        dummies = pd.get_dummies(frame[one_hot].astype(object), dummy_na=True, dtype=np.float32)
        dummies = dummies.loc[:, dummies.nunique(dropna=False) > 1]  # e.g. an unused NaN level
        names += [str(c) for c in dummies.columns]
        columns.append(dummies.to_numpy(np.float32))
    x = np.column_stack(columns) if names else np.zeros((len(frame), 0), np.float32)
    return x, names, notes


def _drop_missing_target(frame: pd.DataFrame, target: str, notes: list[str]) -> pd.DataFrame:
    missing = frame[target].isna()
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} rows whose target '{target}' is missing")
        frame = frame.loc[~missing].reset_index(drop=True)
    return frame


def row_id_findings(plan: KeyPlan) -> list[Finding]:
    """Say which identifier columns were dropped from the features and why; warn about
    increasing record numbers that stay (they could be times, so they are not dropped)."""
    findings = []
    for column in plan.row_ids:
        reason = plan.reasons.get(column, "unique per row")
        artifact = "identifier" not in reason  # a saved index or a row count: an export slip
        message = f"column '{column}' is not used as a feature: {reason}."
        fix = ("Nothing to do for this run; to leave it out of the file, write the file with "
               "df.to_csv(path, index=False)." if artifact else
               "Nothing to do if it identifies rows. If it is a measurement, rename it: a name "
               "with 'id', 'no' or 'number' marks an identifier.")
        severity = warning if artifact else _info_with_fix
        findings.append(severity("data", "row_id_dropped", message, fix, column=column,
                                 reason=reason))
    for column in plan.ordered_ids:
        findings.append(warning(
            "data", "ordered_id_column",
            f"column '{column}' holds integers unique per row and increasing down the file, "
            "like a record number: it stays a feature, but if the file is sorted (by label, by "
            "time) it hands the model that order, and the test score would be inflated.",
            f"If it is a record number, delete the column from the file; if it is a time, "
            f"declare it: --set 'split.time_column=\"{column}\"'.", column=column))
    return findings


def _info_with_fix(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    return Finding(stage, Severity.INFO, code, message, evidence, fix)


def load_table(path: Path, target: str, task: str = "auto", group_column: str = "",
               time_column: str = "", na_values: tuple[str, ...] = (), sep: str = "",
               encoding: str = "", decimal: str = "") -> TaskData:
    """A .csv / .parquet file; group and time keys declared, or inferred when left empty."""
    frame, findings = read_table(path, sep, encoding, decimal)
    data = table_data(frame, target, task, group_column, time_column, name=path.stem,
                      source=str(path), na_values=na_values)
    data.findings[:0] = findings  # how the file was read comes before what it holds
    return data


def table_data(frame: pd.DataFrame, target: str, task: str = "auto", group_column: str = "",
               time_column: str = "", name: str = "table", source: str = "the table",
               na_values: tuple[str, ...] = ()) -> TaskData:
    """A DataFrame -> TaskData (the in-memory twin of load_table, for notebooks).

    `na_values`: extra text cells that mean missing (data.na_values), e.g. ("?", "unknown")."""
    if target not in frame.columns:
        guess = str(frame.columns[-1])  # a target is most often the last column
        raise DataError(f"target column '{target}' is not in '{source}' (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))}). Set data.target, e.g. "
                        f"--set data.target='\"{guess}\"' (target = \"{guess}\" in a config).")
    notes: list[str] = []
    # before anything reads a column's type: a number column with '?' cells is text until here
    declared = [c for c in (group_column, time_column) if c and c != "none"]
    frame, findings = coerce_numeric_text(replace_na_values(frame, na_values), keep=declared)
    frame = _drop_missing_target(frame, target, notes)
    if task == "auto":
        task = infer_task(frame[target])
        findings += task_findings(frame[target], task, target)
    y, class_names = encode_target(frame[target], task, target)
    if task == "classification":
        findings += lookalike_label_findings(frame[target], target)
    plan = plan_keys(frame, target, group_column, time_column, source)
    data = TaskData(name=name, kind="table", task=task, x=np.zeros((len(y), 0)),  # type: ignore
                    y=y, class_names=class_names, notes=notes, keys=plan.keys,
                    findings=findings)
    for key in plan.keys:
        if key.role == "group":
            column = frame[key.column]
            data.groups = column.to_numpy() if column.dtype.kind in "iub" else \
                column.astype(object).where(column.notna(), None).to_numpy()
        else:
            data.times = time_values(frame[key.column], key.column)
    data.findings += row_id_findings(plan)
    data.x, data.feature_names, encode_notes = encode_features(
        frame.drop(columns=[target, *plan.columns]))
    notes += encode_notes
    if data.x.shape[1] == 0:
        raise DataError(f"'{source}' has no feature columns besides the target and keys "
                        f"({', '.join(plan.columns) or 'none'}). Add features.")
    return data
