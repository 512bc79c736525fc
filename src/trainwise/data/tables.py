"""CSV and Parquet tables -> TaskData: target, numeric and categorical features, keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.data.coltypes import (
    coerce_numeric_text,
    mixed_number_columns,
    replace_na_values,
)
from trainwise.data.column_drops import drop_unused, near_copies
from trainwise.data.column_table import ColumnFates, column_table, constant_text_findings
from trainwise.data.csvfile import read_csv
from trainwise.data.dates import date_features, parse_date_columns
from trainwise.data.errors import DataError
from trainwise.data.in_memory import describe_source
from trainwise.data.keys import KeyPlan, plan_keys, time_values
from trainwise.data.label_leak import find_leaks, leak_findings, row_order, table_columns
from trainwise.data.markers import mask_target_markers, text_level_findings
from trainwise.data.targets import lookalike_label_findings, target_findings, whole_numbers
from trainwise.data.task import TaskData
from trainwise.data.text import FREE_TEXT_RULE, set_aside_warning
from trainwise.data.tokenise import as_tokens
from trainwise.findings import Finding, Severity, warning

MAX_ONE_HOT = 64  # one-hot columns per text column at most (its 63 most frequent levels and
# OTHER): 1M rows x 64 is 256 MB of float32, where a 1000-level column in full would be 4 GB.
# city.csv (label set by a 40-level city, 1500 rows; logistic regression on one-hot city: 88.7%):
# the old limit of 32 made city one integer code in string order, test accuracy 69.3%; one-hot,
# 90.0% and 90.7% (seeds 0, 1). native.parquet (3-level text, no wide column): 97.5% either way.
MANY_LEVELS = 20  # text columns with this many levels get a note: they once read as group keys
OTHER = "(other)"  # the level that rare levels share
OneHot = tuple[str, str, str, str]  # (feature, column, level, role: level / other / missing)


def read_table(path: Path, sep: str = "", encoding: str = "", decimal: str = ""
               ) -> tuple[pd.DataFrame, list[Finding]]:
    """A .csv / .parquet file as a DataFrame, and what reading it assumed (a sniffed CSV
    separator). sep / encoding / decimal: data.sep, data.encoding, data.decimal (CSV only)."""
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist. Check data.source in your config.")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path), []
        if path.suffix.lower() == ".csv":
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
    whole = whole_numbers(target)
    return "classification" if whole is not None and whole.nunique() <= 20 else "regression"


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


def _top_levels(column: pd.Series, name: str, share: float | None
                ) -> tuple[pd.Series, Finding]:
    """Levels past the MAX_ONE_HOT - 1 most frequent share one OTHER level: the frequent ones
    stay usable by a model, where one integer code in string order made them arbitrary
    numbers. Counted over the whole table: it uses no labels, so nothing leaks."""
    counts = column.value_counts(dropna=True)
    kept = counts.index[:MAX_ONE_HOT - 1]
    rare = ~column.isin(kept) & column.notna()
    finding = _info_with_fix(
        "data", "rare_levels_grouped",
        f"column '{name}' has {len(counts):,} categories: its {len(kept)} most frequent are "
        f"one-hot columns, and the other {len(counts) - len(kept):,} ({int(rare.sum()):,} "
        f"rows) share one '{OTHER}' column.",
        _numbers_fix(name, share) or
        "If the rare categories matter, merge them into broader ones in the file (a region "
        "instead of a postcode); if each value is a subject (rows that belong together), "
        f"declare it: --set 'split.group_column=\"{name}\"'.",
        column=name, num_levels=len(counts), num_one_hot=len(kept))
    return column.astype(object).where(~rare, OTHER), finding


def _many_levels(column: pd.Series, name: str, share: float | None) -> Finding:
    """Say that a many-level text column is a feature: it used to be taken for a group key."""
    return _info_with_fix(
        "data", "many_levels_one_hot",
        f"column '{name}' has {column.nunique(dropna=True)} categories, averaging "
        f"{column.notna().sum() / column.nunique(dropna=True):.0f} rows each: it is a "
        "feature, one-hot encoded.",
        _numbers_fix(name, share) or
        "Nothing to do if it describes rows (a city, a product). If each value is a subject "
        "whose rows belong together (a patient), declare it: "
        f"--set 'split.group_column=\"{name}\"'.", column=name)


def _numbers_fix(name: str, share: float | None) -> str:
    """The fix for a text column whose levels are mostly numbers (a measurement with a few
    words): its numbers are what to recover, no group key (audit s12 K4); '' otherwise.
    `share`: its share of numbers, where coerce_numeric_text warned it mixed (None: it did
    not; all numbers is text on purpose, zip codes in a parquet)."""
    if share is None:
        return ""
    return (f"{share:.0%} of its cells are numbers: it is a number column that its text "
            f"cells made text (see the text_in_numeric_column warning for '{name}'). Fix or "
            "remove those cells in the file, or list them in data.na_values if they mean "
            "missing, so it is read as numbers; then rerun from the data stage.")


def _categorical(frame: pd.DataFrame, names: list[str], mixed: dict[str, float]
                 ) -> tuple[np.ndarray, list[str], list[Finding], list[OneHot]]:
    """(N, sum of levels) one-hot columns, a missing value its own level where present; and
    what each column stands for, for trainwise.predict to encode new rows the same way.
    `mixed`: mixed_number_columns, the text columns that are mostly numbers."""
    findings, columns, grouped = [], {}, set()
    for name in names:
        column, levels = frame[name], frame[name].nunique(dropna=True)
        if levels > MAX_ONE_HOT:
            column, finding = _top_levels(column, str(name), mixed.get(str(name)))
            findings.append(finding)
            grouped.add(name)
        elif levels >= MANY_LEVELS:
            findings.append(_many_levels(column, str(name), mixed.get(str(name))))
        columns[name] = column.astype(object)
    dummies = pd.get_dummies(pd.DataFrame(columns), dummy_na=True, dtype=np.float32)
    kept = (dummies.nunique(dropna=False) > 1).to_numpy()  # e.g. an unused NaN level
    meanings = _one_hot_meanings(columns, grouped)
    if [m[0] for m in meanings] != [str(c) for c in dummies.columns]:
        meanings = []  # pandas named them otherwise: predict then refuses the raw table
    dummies = dummies.loc[:, kept]
    meanings = [m for m, keep in zip(meanings, kept, strict=False) if keep]
    return dummies.to_numpy(np.float32), [str(c) for c in dummies.columns], findings, meanings


def _one_hot_meanings(columns: dict, grouped: set) -> list[OneHot]:
    """Per get_dummies column, in its order: pandas lays out each column's levels in
    Categorical order, named '<column>_<str(level)>', then '<column>_nan'. `grouped`: the
    columns whose rare levels share OTHER (an unseen level of theirs goes there too)."""
    meanings = []
    for name, column in columns.items():
        for level in pd.Categorical(column).categories:
            role = "other" if name in grouped and level == OTHER else "level"
            meanings.append((f"{name}_{level}", str(name), str(level), role))
        meanings.append((f"{name}_nan", str(name), "", "missing"))
    return meanings


def encode_features(frame: pd.DataFrame, time_key: pd.Series | None = None,
                    mixed: dict[str, float] | None = None
                    ) -> tuple[np.ndarray, list[str], list[Finding], list[OneHot]]:
    """Numbers stay (NaN kept, filled later from training statistics); dates become days
    since their first date (+ month, weekday), or days before the row's `time_key` (the
    split's time column, when it holds dates); text is one-hot, its MAX_ONE_HOT - 1 most
    frequent levels when it has more. `mixed`: mixed_number_columns of the data's findings."""
    findings, parts = [], {}
    text, meanings = [], []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            numbers, described = date_features(column, str(name), time_key)
            parts.update(numbers)
            findings.append(_info_with_fix(
                "data", "date_feature", f"column '{name}' holds dates: a feature as "
                f"{described}.", "Nothing to do if rows are independent of time; if later "
                f"rows must be validated on, declare --set 'split.time_column=\"{name}\"'.",
                column=str(name), described=described))
        elif not _is_categorical(column):
            parts[str(name)] = _as_float32(column, f"column '{name}'")
        else:
            text.append(name)
    columns = [np.asarray(v, dtype=np.float32) for v in parts.values()]
    names = list(parts)
    if text:
        one_hot, one_hot_names, text_findings, meanings = _categorical(frame, text, mixed or {})
        columns.append(one_hot)
        names += one_hot_names
        findings += text_findings
    x = np.column_stack(columns) if names else np.zeros((len(frame), 0), np.float32)
    return x, names, findings, meanings


def _drop_missing_target(frame: pd.DataFrame, target: str, notes: list[str]
                         ) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows with a target, and each one's position in `frame` (None: all kept), so the
    rows named later (outliers, label issues) are rows of the file, not of what is left."""
    missing = frame[target].isna()
    if not missing.any():
        return frame, None
    notes.append(f"dropped {int(missing.sum())} rows whose target '{target}' is missing")
    return frame.loc[~missing].reset_index(drop=True), np.flatnonzero(~missing.to_numpy())


def ordered_id_leaks(ordered_ids: pd.DataFrame, data: TaskData, target: str,
                     order: np.ndarray) -> dict[str, str]:
    """"predicts 'label' with balanced accuracy 0.998: the file is sorted by 'label'" per
    ordered id that alone gives the target away (find_leaks), as a record number does in a
    file sorted by the target."""
    if ordered_ids.empty:
        return {}
    metric = "balanced accuracy" if data.task == "classification" else "R^2"
    leaks = find_leaks(table_columns(ordered_ids), data.y, data.task, order)
    return {leak.column: f"predicts {target} with {metric} {leak.score:.3f}: the file is "
            f"sorted by {target}" for leak in leaks if not leak.shift}


def row_id_findings(plan: KeyPlan, predicts: dict[str, str] | None = None) -> list[Finding]:
    """Say which identifier columns were dropped from the features and why; warn about
    increasing record numbers that stay (they could be times, so they are not dropped).
    `predicts`: per ordered id, 'predicts 'label' with ...' when it alone gives the label away
    (ordered_id_leaks): said here, once, not again as a target_leak."""
    predicts = predicts or {}
    findings = []
    for column in plan.row_ids:
        reason = plan.reasons.get(column, "unique per row")
        artifact = "identifier" not in reason  # a saved index or a row count: an export slip
        message = f"column '{column}' is not used as a feature: {reason}."
        fix = ("Nothing to do for this run; to leave it out of the file, write the file with "
               "df.to_csv(path, index=False)." if artifact else
               "Nothing to do if it identifies rows. If it is a measurement, rename the column "
               "in the file so that no word of it is 'id' and it does not end in 'no' or "
               "'number' (e.g. 'account_number' -> 'account_count'), then rerun.")
        # a warning either way: a dropped column is a feature the model never sees
        findings.append(warning("data", "row_id_dropped", message, fix, column=column,
                                reason=reason))
    for column in plan.ordered_ids:
        like = f"a time ({plan.periods[column]}) or a record number" \
            if column in plan.periods else "a record number"
        sorted_by = "" if column not in predicts else (
            f" It alone {predicts[column]}, so this column gives the answer away.")
        findings.append(warning(
            "data", "ordered_id_column",
            f"column '{column}' holds integers unique per row and increasing down the file, "
            f"like {like}: it stays a feature, but if the file is sorted (by label, by "
            f"time) it hands the model that order, and the test score would be inflated."
            f"{sorted_by}",
            f"If it is a time, declare it: --set 'split.time_column=\"{column}\"' (the split "
            "then validates on later rows); if it is a record number, delete the column from "
            "the file" + (" (df.drop(columns=[...]).to_csv(path, index=False)) and rerun from "
                          "the data stage." if sorted_by else "."),
            column=column, **({"predicts": predicts[column]} if sorted_by else {})))
    findings += [period_finding(column, why, plan) for column, why in plan.periods.items()
                 if column not in plan.ordered_ids]
    return findings


def period_finding(column: str, why: str, plan: KeyPlan) -> Finding:
    """A feature that looks like the time of a row while no time key is set: the split is then
    random, validating on periods between training ones. Suggested, not taken: a 'year' is as
    often a property of the row (built in 1990). A warning when each period has one row (a
    yearly series), else a note (a panel, or the property)."""
    split = "by group" if any(k.role == "group" for k in plan.keys) else "at random"
    message = (f"column '{column}' looks like a time ({why}), but no time column is set, so "
               f"rows are split {split}: validation and test hold periods between training "
               "ones, which scores a forecast too well.")
    fix = (f"If the rows were observed over time and the model must predict later periods, "
           f"declare --set 'split.time_column=\"{column}\"' and rerun from the split stage; "
           "if it describes the row (a construction year), nothing to do.")
    if column in plan.series_periods:
        return warning("data", "possible_time_key", message, fix, column=column)
    return _info_with_fix("data", "possible_time_key", message, fix, column=column)


def _info_with_fix(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    return Finding(stage, Severity.INFO, code, message, evidence, fix)


def load_table(path: Path, target: str, task: str = "auto", group_column: str = "",
               time_column: str = "", na_values: tuple[str, ...] = (), sep: str = "",
               encoding: str = "", decimal: str = "", dayfirst: bool = False,
               kind: str = "auto", drop_columns: tuple[str, ...] = ()) -> TaskData:
    """A .csv / .parquet file; group and time keys declared, or inferred when left empty."""
    frame, findings = read_table(path, sep, encoding, decimal)
    sniffed = [f.evidence["decimal"] for f in findings if f.code == "csv_dialect"]
    data = table_data(frame, target, task, group_column, time_column, name=path.stem,
                      source=describe_source(path), na_values=na_values, dayfirst=dayfirst,
                      kind=kind, drop_columns=drop_columns,
                      decimal=sniffed[0] if sniffed else decimal or ".")
    data.findings[:0] = findings  # how the file was read comes before what it holds
    return data


def table_data(frame: pd.DataFrame, target: str, task: str = "auto", group_column: str = "",
               time_column: str = "", name: str = "table", source: str = "the table",
               na_values: tuple[str, ...] = (), dayfirst: bool = False,
               kind: str = "auto", drop_columns: tuple[str, ...] = (), decimal: str = "."
               ) -> TaskData:
    """A DataFrame -> TaskData (the in-memory twin of load_table, for notebooks).

    `na_values`: extra text cells that mean missing (data.na_values), e.g. ("?", "unknown");
    `dayfirst`: read dates such as '01/05/2024' as 1 May, not 5 January (data.dayfirst);
    `kind`: "tokens" trains on the free-text columns alone (data.kind), which a table's
    free text otherwise is only when no other feature is left; `drop_columns`: columns left
    out (data.drop_columns), as entirely empty columns and copies of another are;
    `decimal`: the decimal mark of numbers written as text, "," for '0,5' and '1.234,5'
    (data.decimal; load_table passes the one the CSV was read with)."""
    if target not in frame.columns:
        guess = str(frame.columns[-1])  # a target is most often the last column
        raise DataError(f"target column '{target}' is not in '{source}' (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))}). Name it in data.target: "
                        f"trainwise.run({{\"data\": {{\"target\": \"{guess}\"}}}}, ...) in "
                        f"Python, --set data.target='\"{guess}\"' on the command line, "
                        f"target = \"{guess}\" under [data] in a config.")
    notes: list[str] = []
    fates = ColumnFates([str(c) for c in frame.columns], target)
    declared = [c for c in (group_column, time_column) if c and c != "none"]
    frame, findings = drop_unused(replace_na_values(frame, na_values, decimal), fates,
                                  list(drop_columns), [target, *declared], source)
    # before anything reads a column's type: a number column with '?' cells is text until here
    frame, coerced = coerce_numeric_text(frame, keep=declared, decimal=decimal)
    findings += coerced + near_copies(frame, [target, *declared], fates)  # numbers parsed
    frame, marker_findings = mask_target_markers(frame, target)  # '?' is no class
    frame, source_rows = _drop_missing_target(frame, target, notes)
    frame, date_findings = parse_date_columns(frame, dayfirst, keep=[target])  # before keys
    findings += marker_findings + date_findings
    requested, task = task, infer_task(frame[target]) if task == "auto" else task
    findings += target_findings(frame[target], requested, task, target)
    y, class_names = encode_target(frame[target], task, target)
    if task == "classification":
        findings += lookalike_label_findings(frame[target], target)
    plan = plan_keys(frame, target, group_column, time_column, source)
    data = TaskData(name=name, kind="table", task=task, x=np.zeros((len(y), 0)),  # type: ignore
                    y=y, class_names=class_names, notes=notes, keys=plan.keys,
                    findings=findings, source_rows=source_rows,
                    row_ids={c: frame[c].to_numpy(object) for c in
                             [*plan.row_ids, *plan.ordered_ids]})
    time_key = None  # the time column, when it holds dates: other dates count back from it
    for key in plan.keys:
        if key.role == "group":
            column = frame[key.column]
            data.groups = column.to_numpy() if column.dtype.kind in "iub" else \
                column.astype(object).where(column.notna(), None).to_numpy()
        else:
            data.times = time_values(frame[key.column], key.column)
            time_key = frame[key.column] if frame[key.column].dtype.kind == "M" else None
    features = frame.drop(columns=[target, *plan.columns])
    prose = [c for c in features.columns if str(c) in {t.name for t in plan.text}]
    # on the categories only: a key, a dropped identifier or set-aside prose is no category,
    # and "each marker is kept as a category of its own" would be false there
    data.findings += text_level_findings(features, exclude=prose)
    order = row_order(len(data.y), data.times, data.groups)  # both leak checks read rows so
    data.findings += row_id_findings(plan, ordered_id_leaks(features[plan.ordered_ids], data,
                                                                f"'{target}'", order))
    _set_inputs(data, features, prose, plan, time_key, kind, source)
    described = f"{task}, {len(class_names)} classes" if class_names else task
    data.columns = column_table(frame, fates, plan, described, [str(c) for c in prose],
                                data.kind == "tokens", {
                                    f.evidence["column"]: f.evidence["described"]
                                    for f in data.findings if f.code == "date_feature"},
                                MAX_ONE_HOT, OTHER)
    data.findings += constant_text_findings(data.columns)
    if data.kind == "tokens":  # the model reads the text alone: the other columns cannot
        return data  # leak into it; the audit's token_shortcut checks the words it reads
    # on the columns as in the file: a text copy of a 3-class label is one column, 3 one-hots
    # ordered ids left out: their leak is said in ordered_id_column, whose fix (delete the
    # record number) target_leak's ("known when predicting? nothing to do") would contradict;
    # free text too: it is set aside here, the model does not read it
    data.findings += leak_findings(
        table_columns(features.drop(columns=[*plan.ordered_ids, *prose])), y, task,
        f"'{target}'", data.times, data.groups, order)
    return data


def _set_inputs(data: TaskData, features: pd.DataFrame, prose: list, plan: KeyPlan,
                time_key: pd.Series | None, kind: str, source: str) -> None:
    """data.x from the feature columns: numbers, dates and one-hot categories, with free text
    (`prose`) set aside; or the text alone as token ids, when asked for or nothing else is
    left."""
    others = [str(c) for c in features.columns if c not in prose]
    if kind == "tokens":  # asked for: the text alone, whatever else the table holds
        if not prose:
            raise DataError(_no_text_message(source, features))
        as_tokens(data, features[prose], plan.text, others)
        return
    data.x, data.feature_names, encode_findings, data.one_hot = encode_features(
        features.drop(columns=prose), time_key,  # free text is never one-hot encoded
        mixed_number_columns(data.findings))
    data.text_missing = {str(c): features[c].isna().to_numpy() for c in features.columns
                         if c not in prose and _is_categorical(features[c])
                         and features[c].isna().any()}  # counted by the audit (s12 K9)
    data.findings += encode_findings
    if data.x.shape[1] == 0 and prose:  # free text is all there is: read it as words
        as_tokens(data, features[prose], plan.text, [])
    elif data.x.shape[1] == 0:
        _no_features(source, plan)
    elif plan.text:
        data.findings.append(set_aside_warning(plan.text, others))


def _no_text_message(source: str, features: pd.DataFrame) -> str:
    return (f"data.kind = \"tokens\" trains on a table's free-text columns, and '{source}' "
            f"has none among its features ({', '.join(map(str, features.columns[:10]))}): "
            f"{FREE_TEXT_RULE}. Set data.kind = \"auto\" to use the table's "
            "features, or add the text column; then rerun from the data stage.")


def _no_features(source: str, plan: KeyPlan) -> None:
    """Stop: nothing is left to learn from. Says why each column was set aside: the row-id
    and key findings would be lost with the stage."""
    aside = plan.set_aside()
    raise DataError(
        f"'{source}' has no feature columns besides the target"
        + (f": every other column was set aside, {'; '.join(aside)}." if aside else ".")
        + (" If one of them is a feature, tell trainwise: a wrongly inferred key goes back "
           "among the features with --set 'split.group_column=\"none\"' (or time_column); "
           "an identifier that is a measurement must be renamed so that no word of it is "
           "'id'. Otherwise" if aside else " To train,")
        + " add feature columns to the file, then rerun from the data stage.")
