"""CSV and Parquet tables -> TaskData: target, numeric and categorical features, keys."""

from __future__ import annotations

import difflib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from trainwise.command_line import shell_word
from trainwise.config_sections import TABLE_FILES, data_stem, data_suffix
from trainwise.data.coltypes import (
    coerce_numeric_text,
    is_text,
    mixed_number_columns,
    replace_na_values,
)
from trainwise.data.column_drops import drop_unused, near_copies
from trainwise.data.column_table import ColumnFates, column_table, constant_text_findings
from trainwise.data.compressed import expanded_size, open_bytes
from trainwise.data.csvfile import has_zero_padded, read_csv
from trainwise.data.dates import parse_date_columns
from trainwise.data.errors import DataError, missing_data_file
from trainwise.data.frame_cells import as_csv_table
from trainwise.data.in_memory import describe_source
from trainwise.data.key_findings import ordered_id_leaks, row_id_findings
from trainwise.data.keys import KeyPlan, plan_keys, time_values
from trainwise.data.label_leak import leak_findings, row_order, table_columns
from trainwise.data.markers import mask_target_markers, text_level_findings
from trainwise.data.table_features import (
    MAX_ONE_HOT,
    OTHER,
    as_float32,
    encode_features,
    is_categorical,
)
from trainwise.data.target_rows import (
    drop_missing_target,
    refuse_unique_target,
    without_marker_warning,
)
from trainwise.data.targets import (
    MAX_WHOLE_CLASSES,
    lookalike_label_findings,
    target_findings,
    whole_numbers,
)
from trainwise.data.task import TaskData
from trainwise.data.text import FREE_TEXT_RULE, set_aside_warning
from trainwise.data.tokenise import as_tokens
from trainwise.findings import Finding, info


def read_table(path: Path, sep: str = "", encoding: str = "", decimal: str = "",
               target: str = "", codes: bool = True) -> tuple[pd.DataFrame, list[Finding]]:
    """A .csv / .parquet file as a DataFrame, and what reading it assumed (a sniffed CSV
    separator). sep / encoding / decimal: data.sep, data.encoding, data.decimal (CSV only);
    target / codes: the target column, read as its text says (csvfile.raw_target)."""
    if not path.exists():
        raise DataError(missing_data_file(path))
    suffix = data_suffix(path)  # .tsv, .txt, .csv.gz are '.csv': pandas decompresses by suffix
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"data file '{path}' has suffix '{path.suffix}'; expected "
                        f"{TABLE_FILES}. A spreadsheet: save the sheet as CSV (Excel: "
                        "'CSV UTF-8').")
    try:
        if suffix == ".csv":
            return read_csv(path, sep, encoding, decimal, target, codes)
        frame = pd.read_parquet(path)  # may hold list/dict cells a CSV cannot
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file name
        if is_out_of_memory(exc):  # not a corrupt file: "Is it a valid .gz?" misled (s16 S7)
            raise DataError(out_of_memory_message(path)) from None
        raise DataError(f"could not read '{path}': {exc}. Is it a valid {path.suffix} "
                        "file?") from None
    return as_csv_table(frame, f"'{path}'"), []  # outside the try: its refusal names the column


def is_out_of_memory(exc: BaseException) -> bool:
    """Memory ran out while reading: Python's MemoryError (numpy's "Unable to allocate" is
    one), or pandas' C parser's "Error tokenizing data. C error: out of memory"."""
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def out_of_memory_message(path: Path) -> str:
    """What ran out and what to do: a smaller file, or the streamed Parquet audit."""
    size, on_disk = expanded_size(path), path.stat().st_size
    expands = ""
    if size is not None and (size[0] > on_disk or not size[1]):
        expands = (f" (it holds {'at least ' if size[1] else ''}{size[0] / 1e6:,.0f} MB "
                   f"uncompressed, {on_disk / 1e6:,.1f} MB on disk)")
    parquet = path.suffix.lower() == ".parquet"
    sample = ("a random sample of its rows written to a smaller .parquet" if parquet else
              "{}, the header kept: `{}`".format(*sample_command(path, size)))
    return (f"ran out of memory reading '{path}'{expands}: the file is readable, but the "
            "table does not fit in this machine's memory (a table takes more memory than its "
            f"text). Train on {sample}, and pass that file (data.max_samples samples after "
            "reading: it does not help here). To audit the whole file in bounded memory"
            f"{'' if parquet else ', convert it to .parquet and'} use "
            "trainwise.audit_parquet (streamed).")


# Enough rows to train and tune on. At random, not the first ones: an export sorted by date
# or label gives one period or one class (review s16 VX11: `head` was advised).
SAMPLE_ROWS = 100_000
HALF = 0.5


def sample_command(path: Path, size: tuple[int, bool] | None) -> tuple[str, str]:
    """(what it keeps, a shell command streaming a random sample of the file's lines into
    sample.csv): awk keeps each line with the chance that leaves about SAMPLE_ROWS (srand(1):
    the same sample each run, in gawk and mawk alike); where the size is unknown (.bz2, .xz),
    shuf keeps exactly SAMPLE_ROWS (reservoir sampling, one pass). Lines, not rows: a quoted
    cell holding a newline is cut, as `head` cut it."""
    # each suffix compressed.open_bytes reads; `cat` of a .zip wrote the archive's binary
    # into sample.csv (review s16 VS10)
    cat = {".gz": "zcat", ".bz2": "bzcat", ".xz": "xzcat", ".zip": "unzip -p"}.get(
        path.suffix.lower(), "cat")
    word, share = shell_word(path), _share(path, size)
    if share is None:
        return (f"a random {SAMPLE_ROWS:,} of its rows", f"({cat} {word} | head -n 1; {cat} "
                f"{word} | tail -n +2 | shuf -n {SAMPLE_ROWS}) > sample.csv")
    kept = "a random half of its rows" if share == HALF else \
        f"a random sample of about {SAMPLE_ROWS:,} of its rows"
    return kept, (f"{cat} {word} | awk 'BEGIN {{ srand(1) }} NR == 1 || rand() < {share:.2g}' "
                  "> sample.csv")


def _share(path: Path, size: tuple[int, bool] | None) -> float | None:
    """The share of lines that leaves about SAMPLE_ROWS: the line count estimated from the
    first MB's bytes per line (a .gz's size is a lower bound past 4 GiB: a larger sample).
    At most 0.5: a file of under 200,000 lines that does not fit is wide, and halving it is
    the step to try."""
    if size is None:
        return None
    try:
        with open_bytes(path) as file:
            head = file.read(1 << 20)
    except (OSError, EOFError, DataError, zlib.error, zipfile.BadZipFile):
        return None
    lines = head.count(b"\n")
    if not lines:
        return None
    return min(HALF, SAMPLE_ROWS * len(head) / (lines * size[0]))


def infer_task(target: pd.Series) -> str:
    if target.dtype.kind in "OUSbc" or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    whole = whole_numbers(target)
    few = whole is not None and whole.nunique() <= MAX_WHOLE_CLASSES
    return "classification" if few else "regression"


def encode_target(target: pd.Series, task: str, column: str) -> tuple[np.ndarray, list[str]]:
    if task == "regression":
        if target.dtype.kind not in "iuf":
            raise DataError(f"target column '{column}' is not numeric, so it cannot be regressed. "
                            "Set data.task = \"classification\" or choose a numeric column.")
        return as_float32(target, f"target column '{column}'"), []
    if target.dtype == object and pd.api.types.infer_dtype(target, skipna=True).startswith(
            "mixed"):  # C-level scan: a Python set over 1M labels took 0.5 s
        kinds = sorted({type(v).__name__ for v in target.drop_duplicates()})
        raise DataError(f"target column '{column}' mixes value types {kinds}. "
                        "Make every label the same type (all text or all integers).")
    codes, classes = pd.factorize(target, sort=True)
    if len(classes) < 2:
        raise DataError(f"target column '{column}' has a single class {list(classes)}; "
                        "classification needs at least two. Is this the right column?")
    return codes.astype(np.int64), _class_names(classes)


def _class_names(classes: pd.Index) -> list[str]:
    """Whole-number codes read as floats (a missing cell made pandas read 0/1/2 as 0.0/1.0/
    2.0) are named as the file writes them: '1', not '1.0'."""
    if classes.dtype.kind == "f" and all(float(c).is_integer() for c in classes):
        return [str(int(c)) for c in classes]
    return [str(c) for c in classes]


def _target_codes(frame: pd.DataFrame, target: str, task: str) -> list[Finding]:
    """A note when the target is text holding zero-padded numbers ('0100', '007'): read as
    classes spelt as written, never as numbers (which made '007' and '7' one class '7' and
    '0100' a class '100' that is not in the file, audit s14 C1)."""
    column = frame[target]
    if task == "regression" or not is_text(column) or not has_zero_padded(column):
        return []
    shown = ", ".join(repr(str(v)) for v in column.dropna().unique()[:5])
    return [info("data", "target_codes",
                 f"target '{target}' holds numbers written with leading zeros ({shown}): "
                 "they are read as classes spelt as written ('007' and '7' are two classes). "
                 "If the target is a quantity, set data.task = \"regression\".",
                 column=target)]


def load_table(path: Path, target: str, task: str = "auto", group_column: str = "",
               time_column: str = "", na_values: tuple[str, ...] = (), sep: str = "",
               encoding: str = "", decimal: str = "", dayfirst: bool = False,
               kind: str = "auto", drop_columns: tuple[str, ...] = ()) -> TaskData:
    """A .csv / .parquet file; group and time keys declared, or inferred when left empty."""
    frame, findings = read_table(path, sep, encoding, decimal, target, task != "regression")
    sniffed = [f.evidence["decimal"] for f in findings if f.code == "csv_dialect"]
    data = table_data(frame, target, task, group_column, time_column, name=data_stem(path),
                      source=describe_source(path), na_values=na_values, dayfirst=dayfirst,
                      kind=kind, drop_columns=drop_columns,
                      decimal=sniffed[0] if sniffed else decimal or ".")
    data.findings[:0] = findings  # how the file was read comes before what it holds
    return data


LISTED_COLUMNS = 20  # a 32-column table's message stays readable; the rest are counted


def missing_target_message(frame: pd.DataFrame, target: str, source: str) -> str:
    """What to name in data.target: the closest column, the default 'label', else a guess."""
    columns = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(target, columns, n=2, cutoff=0.6)
    if "label" in columns and "label" not in close:
        close.append("label")  # the default target, renamed or not, is the likeliest meaning
    if close:
        hint = " or ".join(f"'{c}'" for c in close)
        lead, guess = f"Did you mean {hint}? Name it in data.target", close[0]
    else:  # nothing is close: the last column is only a guess, the user must choose
        guess = columns[-1]
        lead = (f"No column is close to '{target}'; a target is often the last column "
                f"('{guess}'), but check: name the right one in data.target")
    more = len(columns) - LISTED_COLUMNS
    listed = ", ".join(columns[:LISTED_COLUMNS]) + (f" (and {more} more)" if more > 0 else "")
    return (f"target column '{target}' is not in '{source}' ({len(columns)} columns: {listed}). "
            f"{lead}: trainwise.run({{\"data\": {{\"target\": \"{guess}\"}}}}, ...) in "
            f"Python, --set data.target='\"{guess}\"' on the command line, "
            f"target = \"{guess}\" under [data] in a config.")


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
    # here, not in each caller: trainwise.table_data(df) crashed on a list column (VD7)
    frame = as_csv_table(frame, source)
    if target not in frame.columns:
        raise DataError(missing_target_message(frame, target, source))
    notes: list[str] = []
    raw_target = frame[target]  # as read: the dropped rows' markers are named from it
    codes = _target_codes(frame, target, task)  # zero-padded codes stay text: kept as keys
    fates = ColumnFates([str(c) for c in frame.columns], target)
    declared = [c for c in (group_column, time_column) if c and c != "none"]
    frame, findings = drop_unused(replace_na_values(frame, na_values, decimal), fates,
                                  list(drop_columns), [target, *declared], source)
    # before anything reads a column's type: a number column with '?' cells is text until here
    frame, coerced = coerce_numeric_text(frame, keep=declared + [target] * bool(codes),
                                         decimal=decimal)
    coerced = without_marker_warning(coerced, target)  # target_missing names those cells
    findings += codes + coerced + near_copies(frame, [target, *declared], fates)  # numbers parsed
    frame, marker_findings = mask_target_markers(frame, target)  # '?' is no class
    frame, source_rows, dropped = drop_missing_target(frame, raw_target, target, source)
    findings += dropped
    frame, date_findings = parse_date_columns(frame, dayfirst, keep=[target])  # before keys
    findings += marker_findings + date_findings
    requested, task = task, infer_task(frame[target]) if task == "auto" else task
    findings += target_findings(frame[target], requested, task, target)
    try:
        y, class_names = encode_target(frame[target], task, target)
    except DataError as exc:  # a single class left may be the dropped rows' doing (s14 C2)
        raise DataError(" ".join([str(exc), *(f"Before that, {f.message} {f.fix}"
                                              for f in dropped)])) from None
    if requested == "auto" and task == "classification":  # asked for: target_looks_continuous
        refuse_unique_target(len(class_names), len(y), target)
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
                         if c not in prose and is_categorical(features[c])
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
