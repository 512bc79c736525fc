"""Audit and split-proof a Parquet file larger than memory: one streamed pass, bounded memory.

Per batch of BATCH_ROWS rows: per-column statistics and histograms, one xxh3 hash per row
(tablehash), one hash per group key, one code per label. What stays in memory is 8 + 8 + 8
bytes a row (10M rows: 240 MB), never the table itself; duplicates, conflicts, the split and
the cross-split proof then run on those arrays.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwise.data.audit import TOP_K, class_findings, summary_finding
from trainwise.data.duplicates import duplicate_findings, repeated_rows, sorted_runs
from trainwise.data.errors import DataError
from trainwise.data.leakage import check_duplicates, conclude, member
from trainwise.data.missing import missing_warning
from trainwise.data.split import split_indices
from trainwise.data.stream import Numeric, Part, stream
from trainwise.data.tablehash import cell_hashes, frame_hashes, series_cells
from trainwise.findings import Finding, warning

PREFILTER_SAMPLE = 10_000  # rows looked at to pick the most distinct column


def _most_distinct(frame: pd.DataFrame, columns: list[str]) -> str:
    head = frame[columns].head(PREFILTER_SAMPLE)
    return max(columns, key=lambda c: head[c].nunique(dropna=False))


def frame_duplicates(a: pd.DataFrame, b: pd.DataFrame, columns: list[str],
                     names: tuple[str, str] = ("train", "val")) -> list[Finding]:
    """Rows of b that are exact copies of rows of a, over `columns`.

    A copy agrees in every column, so rows are first paired on the most distinct column
    alone (one column hash, one sorted membership test) and only those candidates get full
    row hashes: on the 1M-row anchor table 0.2% of rows instead of all of them, the same
    counts. With no distinct column nothing is pruned and every row is hashed."""
    if not columns:
        return []
    key = _most_distinct(a, columns)
    key_a, key_b = cell_hashes(series_cells(a[key])), cell_hashes(series_cells(b[key]))
    rows_b = np.flatnonzero(member(key_b, key_a))
    rows_a = np.flatnonzero(member(key_a, np.unique(key_b[rows_b]), pool_sorted=True))
    return check_duplicates(frame_hashes(a.iloc[rows_a], columns),
                            frame_hashes(b.iloc[rows_b], columns), names, rows=(rows_a, rows_b),
                            num_b=len(b))  # only candidate rows are hashed: share of all b


def check_frame_leakage(a: pd.DataFrame, b: pd.DataFrame, *, group_column: str = "",
                        exclude: tuple[str, ...] = (),
                        names: tuple[str, str] = ("train", "val")) -> list[Finding]:
    """Exact duplicate rows (every column but the group key and `exclude`) and shared group
    keys between two DataFrames; the in-memory twin of the check audit_parquet runs."""
    columns = [c for c in a.columns if c != group_column and c not in exclude]
    findings = frame_duplicates(a, b, columns, names)
    return conclude(findings, (len(a), len(b)),
                    a[group_column].to_numpy() if group_column else None,
                    b[group_column].to_numpy() if group_column else None, names)


def _ranges(path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min and max per column from the Parquet footer statistics (writers leave NaN out):
    histograms in one pass, and no min/max to compute where every row group has them."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    index = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    low, high = np.full(len(names), np.inf), np.full(len(names), -np.inf)
    exact = np.ones(len(names), dtype=bool)
    for g in range(meta.num_row_groups):
        for d, name in enumerate(names):
            stats = meta.row_group(g).column(index[name]).statistics
            if stats is None or not stats.has_min_max:
                exact[d] = False
                continue
            low[d], high[d] = min(low[d], float(stats.min)), max(high[d], float(stats.max))
    exact &= np.isfinite(low) & np.isfinite(high)  # an infinite bound is no finite min/max
    return np.where(exact, low, 0.0), np.where(exact, high, 1.0), exact


def _open(path: Path, target: str, group_column: str):
    """A ParquetFile factory (one handle per worker) and the schema, with names checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def open_file():
        # pre_buffer off: with it on, pyarrow held ~1.7 GB for 1M-row row groups; text read
        # as dictionaries: 10M rows of a 1000-level column are decoded once per level
        return pq.ParquetFile(path, pre_buffer=False, read_dictionary=text)

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...: name the file
        raise DataError(f"could not read '{path}': {exc}. Is it a valid .parquet file?") from None
    for role, name in (("target", target), ("group", group_column)):
        if name and name not in schema.names:
            raise DataError(f"{role} column '{name}' is not in '{path}' (columns: "
                            f"{', '.join(schema.names[:20])}).")
    text = [f.name for f in schema if pa.types.is_string(f.type) or
            pa.types.is_large_string(f.type)]
    return open_file, schema


def _labels(parts: list[Part]) -> tuple[np.ndarray, list[str], int]:
    """Per-batch dictionaries + indices -> one code per row in sorted class order."""
    classes = sorted({v for part in parts for values, _ in part.labels for v in values
                      if v is not None})
    index = {v: i for i, v in enumerate(classes)}
    codes = []
    for part in parts:
        for values, indices in part.labels:
            local = np.array([index.get(v, -1) for v in values] + [-1], dtype=np.int64)
            codes.append(local[indices])  # index -1 (a null label) picks the trailing -1
    y = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    return y, [str(c) for c in classes], int((y < 0).sum())


def _numeric_findings(stats: Numeric) -> tuple[list[Finding], dict[str, Any]]:
    bad = stats.missing + stats.infinite
    top = {stats.names[i]: int(bad[i]) for i in np.argsort(-bad, kind="stable")[:TOP_K]
           if bad[i]}
    constant = [n for n, lo, hi in zip(stats.names, stats.min, stats.max, strict=True)
                if lo == hi]
    findings = []
    if top:  # every column saw every row: finite + missing + infinite is the row count
        findings.append(missing_warning({stats.names[i]: int(bad[i])
                                         for i in np.flatnonzero(bad)},
                                        int(stats.count[0] + bad[0])))
    if constant:
        findings.append(warning("data", "constant_features", f"{len(constant)} features are "
                                f"constant: {', '.join(constant[:TOP_K])}.", "Drop them.",
                                features=constant[:TOP_K]))
    std = np.sqrt(np.divide(stats.m2, stats.count, out=np.zeros(len(stats.count)),
                            where=stats.count > 0))
    features = {n: {"mean": float(stats.mean[d]), "std": float(std[d]),
                    "min": float(stats.min[d]), "max": float(stats.max[d])}
                for d, n in enumerate(stats.names)}
    for d, counts in enumerate(stats.hist):  # the first NUM_HISTOGRAMS features
        features[stats.names[d]]["histogram"] = counts.tolist()
        features[stats.names[d]]["edges"] = [float(stats.low[d]), float(stats.high[d])]
    summary = {"missing": top, "constant_features": constant[:TOP_K], "features": features}
    return findings, summary


def _spec(schema, target: str, group_column: str) -> dict[str, Any]:
    import pyarrow as pa

    features = [n for n in schema.names if n not in (target, group_column)]
    numeric = [n for n in features if pa.types.is_integer(schema.field(n).type)
               or pa.types.is_floating(schema.field(n).type)]
    columns = features + [target] + ([group_column] if group_column else [])
    return {"features": features, "numeric": numeric, "target": target,
            "group": group_column, "columns": columns}


def _gather(parts: list[Part], stats: Numeric, path: Path, group_column: str) -> dict[str, Any]:
    for part in parts:
        assert part.stats is not None
        stats.absorb(part.stats)
    null_groups = sum(part.null_groups for part in parts)
    if null_groups:
        raise DataError(f"{null_groups} rows of '{path}' have no value in group column "
                        f"'{group_column}'. Fill them (one new key per row) or drop them.")
    y, class_names, missing = _labels(parts)
    if missing:
        raise DataError(f"{missing} rows of '{path}' have no label; drop them before the audit.")
    groups = [g for part in parts for g in part.groups]
    return {"y": y, "class_names": class_names,
            "hashes": np.concatenate([h for part in parts for h in part.hashes]),
            "groups": np.concatenate(groups) if groups else None}


def audit_parquet(path: str | Path, target: str, *, group_column: str = "",
                  val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Finding], dict]:
    """Audit a classification table on disk (balance, missing, constant, duplicates,
    conflicts, histograms), split it (by group when `group_column` is given) and prove the
    split: the streaming twin of `trainwise split` for files that outgrow memory."""
    path = Path(path)
    open_file, schema = _open(path, target, group_column)
    spec = _spec(schema, target, group_column)
    started = time.perf_counter()
    stats = Numeric(spec["numeric"], *_ranges(path, spec["numeric"]))
    arrays = _gather(stream(open_file, spec, stats), stats, path, group_column)
    seconds = {"stream": time.perf_counter() - started}
    y, hashes = arrays["y"], arrays["hashes"]
    runs = sorted_runs(hashes)
    findings, summary = _audit_arrays(y, hashes, arrays["class_names"], stats, runs)
    seconds["audit"] = time.perf_counter() - started - seconds["stream"]
    groups = arrays["groups"]  # int ids or hashes; split_indices makes the codes
    split = split_indices(y, val_fraction=val_fraction, groups=groups, seed=seed)
    findings += _prove(hashes, repeated_rows(runs), groups, split.train, split.val)
    seconds["split_and_proof"] = time.perf_counter() - started - sum(seconds.values())
    summary.update(num_samples=len(y), num_features=len(spec["features"]), seconds=seconds,
                   split={"strategy": split.strategy, "train": len(split.train),
                          "val": len(split.val)})
    findings.append(summary_finding(summary, findings))
    return findings, summary


def _prove(hashes: np.ndarray, repeated: np.ndarray, groups: np.ndarray | None,
           train: np.ndarray, val: np.ndarray) -> list[Finding]:
    """Cross-split copies can only be rows whose content occurs twice or more in the file,
    which the audit's sort already found: only those are compared (the same counts as
    comparing all 10M, without sorting 8M hashes again). Examples are file row numbers."""
    rows_a, rows_b = train[repeated[train]], val[repeated[val]]
    findings = check_duplicates(hashes[rows_a], hashes[rows_b], ("train", "val"),
                                rows=(rows_a, rows_b), num_b=len(val))
    return conclude(findings, (len(train), len(val)),
                    None if groups is None else groups[train],
                    None if groups is None else groups[val], ("train", "val"))


def _audit_arrays(y: np.ndarray, hashes: np.ndarray, class_names: list[str],
                  stats: Numeric, runs: tuple) -> tuple[list[Finding], dict[str, Any]]:
    findings, counts = class_findings(y, class_names)
    found, summary = _numeric_findings(stats)
    dup_findings, dup_summary = duplicate_findings(hashes, y, "classification", runs)
    summary.update(dup_summary, class_counts=counts)
    return findings + found + dup_findings, summary
