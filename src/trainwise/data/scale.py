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

from trainwise.data.audit import TOP_K, class_findings, duplicate_findings, summary_finding
from trainwise.data.errors import DataError
from trainwise.data.leakage import check_duplicates, check_hashed, conclude, member
from trainwise.data.split import split_indices
from trainwise.data.tablehash import arrow_hashes, combine, frame_hashes, series_hashes
from trainwise.findings import Finding, warning

BATCH_ROWS = 1 << 19  # 524,288 rows x 20 float64 columns ~ 80 MB per batch
NUM_BINS = 30
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
    key_a, key_b = series_hashes(a[key]), series_hashes(b[key])
    rows_b = np.flatnonzero(member(key_b, key_a))
    rows_a = np.flatnonzero(member(key_a, np.unique(key_b[rows_b]), pool_sorted=True))
    return check_duplicates(frame_hashes(a.iloc[rows_a], columns),
                            frame_hashes(b.iloc[rows_b], columns), names, rows=(rows_a, rows_b))


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


class _Numeric:
    """Running count / missing / infinite / min / max / mean / M2 / histogram per column."""

    def __init__(self, names: list[str], low: np.ndarray, high: np.ndarray) -> None:
        self.names, self.low, self.high = names, low, high
        width = len(names)
        self.count = np.zeros(width)
        self.missing, self.infinite = np.zeros(width, np.int64), np.zeros(width, np.int64)
        self.min, self.max = np.full(width, np.inf), np.full(width, -np.inf)
        self.mean, self.m2 = np.zeros(width), np.zeros(width)
        self.hist = np.zeros((width, NUM_BINS), np.int64)

    def update(self, x: np.ndarray) -> None:  # x: (B, D) float64
        finite = np.isfinite(x)
        self.missing += np.isnan(x).sum(axis=0)
        self.infinite += np.isinf(x).sum(axis=0)
        count = finite.sum(axis=0)
        safe = np.where(finite, x, 0.0)
        self.min = np.minimum(self.min, np.where(finite, x, np.inf).min(axis=0))
        self.max = np.maximum(self.max, np.where(finite, x, -np.inf).max(axis=0))
        mean = np.divide(safe.sum(axis=0), count, out=np.zeros(len(count)), where=count > 0)
        m2 = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=0)
        total = self.count + count  # Chan et al.: merge means and M2 without cancellation
        delta = mean - self.mean
        share = np.divide(count, total, out=np.zeros(len(count)), where=total > 0)
        self.mean += delta * share
        self.m2 += m2 + delta**2 * self.count * share
        self.count = total
        self._histogram(safe, finite)

    def _histogram(self, safe: np.ndarray, finite: np.ndarray) -> None:
        # one bincount for every column: bin j of column d is cell d * NUM_BINS + j
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        bins = np.clip(((safe - self.low) / span * NUM_BINS).astype(np.int64), 0, NUM_BINS - 1)
        cells = (bins + np.arange(len(self.names)) * NUM_BINS)[finite]
        self.hist += np.bincount(cells, minlength=self.hist.size).reshape(self.hist.shape)


def _ranges(path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max per column from the Parquet footer statistics: histograms in one pass."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    index = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    low, high = np.full(len(names), np.inf), np.full(len(names), -np.inf)
    for g in range(meta.num_row_groups):
        for d, name in enumerate(names):
            stats = meta.row_group(g).column(index[name]).statistics
            if stats is not None and stats.has_min_max:
                low[d], high[d] = min(low[d], float(stats.min)), max(high[d], float(stats.max))
    missing = ~np.isfinite(low) | ~np.isfinite(high)
    return np.where(missing, 0.0, low), np.where(missing, 1.0, high)


def _open(path: Path, target: str, group_column: str):
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...: name the file
        raise DataError(f"could not read '{path}': {exc}. Is it a valid .parquet file?") from None
    columns = handle.schema_arrow.names
    for role, name in (("target", target), ("group", group_column)):
        if name and name not in columns:
            raise DataError(f"{role} column '{name}' is not in '{path}' (columns: "
                            f"{', '.join(columns[:20])}).")
    return handle, columns


class _Labels:
    """Label codes in order of first appearance, renumbered in sorted order at the end."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.missing = 0

    def codes(self, column) -> np.ndarray:
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(column)
        local = np.array([self.index.setdefault(v, len(self.index))
                          for v in encoded.dictionary.to_pylist()], dtype=np.int64)
        raw = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        self.missing += int((raw < 0).sum())
        return np.where(raw < 0, -1, local[np.maximum(raw, 0)] if len(local) else -1)

    def finish(self, codes: np.ndarray) -> tuple[np.ndarray, list[str]]:
        names = sorted(self.index)
        order = np.array([self.index[n] for n in names], dtype=np.int64)
        remap = np.empty(max(len(order), 1), np.int64)
        remap[order] = np.arange(len(order))
        return np.where(codes < 0, -1, remap[np.maximum(codes, 0)]), [str(n) for n in names]


def _stream(handle, features: list[str], numeric: list[str], target: str, group_column: str,
            stats: _Numeric) -> dict[str, Any]:
    """One pass over the file: (N,) row hashes, group hashes, label codes; stats updated."""
    labels, hashes, groups, codes, null_groups = _Labels(), [], [], [], 0
    wanted = features + [target] + ([group_column] if group_column else [])
    for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
        hashes.append(combine([arrow_hashes(batch.column(c)) for c in features], len(batch)))
        codes.append(labels.codes(batch.column(target)))
        if numeric:
            stats.update(np.column_stack([batch.column(c).to_numpy(zero_copy_only=False)
                                          .astype(np.float64) for c in numeric]))
        if group_column:
            null_groups += batch.column(group_column).null_count
            groups.append(arrow_hashes(batch.column(group_column)))
    y, class_names = labels.finish(np.concatenate(codes))
    return {"hashes": np.concatenate(hashes), "y": y, "class_names": class_names,
            "groups": np.concatenate(groups) if groups else None, "null_groups": null_groups,
            "missing_labels": labels.missing}


def _numeric_findings(stats: _Numeric) -> tuple[list[Finding], dict[str, Any]]:
    bad = stats.missing + stats.infinite
    top = {stats.names[i]: int(bad[i]) for i in np.argsort(-bad, kind="stable")[:TOP_K]
           if bad[i]}
    constant = [n for n, lo, hi in zip(stats.names, stats.min, stats.max, strict=True)
                if lo == hi]
    findings = []
    if top:
        findings.append(warning("data", "missing_values", f"{int(bad.sum())} missing or "
                                f"infinite values in {int((bad > 0).sum())} features.",
                                "Impute, or add an indicator column if being missing means "
                                "something.", top_features=top))
    if constant:
        findings.append(warning("data", "constant_features", f"{len(constant)} features are "
                                f"constant: {', '.join(constant[:TOP_K])}.", "Drop them.",
                                features=constant[:TOP_K]))
    std = np.sqrt(np.divide(stats.m2, stats.count, out=np.zeros(len(stats.count)),
                            where=stats.count > 0))
    summary = {"missing": top, "constant_features": constant[:TOP_K], "features": {
        n: {"mean": float(m), "std": float(s), "min": float(lo), "max": float(hi),
            "histogram": h.tolist(), "edges": [float(a), float(b)]}
        for n, m, s, lo, hi, h, a, b in zip(stats.names, stats.mean, std, stats.min, stats.max,
                                             stats.hist, stats.low, stats.high, strict=True)}}
    return findings, summary


def audit_parquet(path: str | Path, target: str, *, group_column: str = "",
                  val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Finding], dict]:
    """Audit a classification table on disk (balance, missing, constant, duplicates,
    conflicts, histograms), split it (by group when `group_column` is given) and prove the
    split: the streaming twin of `trainwise split` for files that outgrow memory."""
    path = Path(path)
    handle, columns = _open(path, target, group_column)
    features = [c for c in columns if c not in (target, group_column)]
    schema = handle.schema_arrow
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(
        schema.field(c).type.to_pandas_dtype())]
    started = time.perf_counter()
    stats = _Numeric(numeric, *_ranges(path, numeric))
    streamed = _stream(handle, features, numeric, target, group_column, stats)
    if streamed["null_groups"]:
        raise DataError(f"{streamed['null_groups']} rows of '{path}' have no value in group "
                        f"column '{group_column}'. Fill them (one new key per row) or drop them.")
    seconds = {"stream": time.perf_counter() - started}
    y, hashes = streamed["y"], streamed["hashes"]
    findings, summary = _audit_arrays(y, hashes, streamed["class_names"], stats)
    seconds["audit"] = time.perf_counter() - started - seconds["stream"]
    split = split_indices(y, val_fraction=val_fraction, groups=streamed["groups"], seed=seed)
    groups = streamed["groups"]
    findings += check_hashed(hashes[split.train], hashes[split.val],
                             groups_a=None if groups is None else groups[split.train],
                             groups_b=None if groups is None else groups[split.val])
    seconds["split_and_proof"] = time.perf_counter() - started - sum(seconds.values())
    summary.update(num_samples=len(y), num_features=len(features), seconds=seconds,
                   split={"strategy": split.strategy, "train": len(split.train),
                          "val": len(split.val)})
    findings.append(summary_finding(summary, findings))
    return findings, summary


def _audit_arrays(y: np.ndarray, hashes: np.ndarray, class_names: list[str],
                  stats: _Numeric) -> tuple[list[Finding], dict[str, Any]]:
    if (y < 0).any():
        raise DataError(f"{int((y < 0).sum())} rows have no label; drop them before the audit.")
    findings, counts = class_findings(y, class_names)
    found, summary = _numeric_findings(stats)
    dup_findings, dup_summary = duplicate_findings(hashes, y, "classification")
    summary.update(dup_summary, class_counts=counts)
    return findings + found + dup_findings, summary
