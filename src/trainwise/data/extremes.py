"""Extreme values in a feature column: a few cells that standardisation turns into the scale.

Four cells of 1e6 in a ~N(0, 1) column (800 rows) gave it a mean of ~5000 and a std of
~70,000: standardised, the other 796 values lay within 1e-5 of each other, the only predictive
column carried nothing, and the run ended at the majority-class accuracy (46.9% vs 90.6%
without them) with findings that blamed the model (audit s12 K1). Scaling stays mean/std (a
robust scale would change every table run); the data stage says so instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import median_abs_deviation

from trainwise.findings import Finding, warning

# Both must hold: a cell EXTREME_SDS robust SDs from the median, and the column's std
# COLLAPSE_RATIO times its robust SD (the bulk's spread after standardising <= 1/50).
# Measured (max |x - median| / robust SD; max std / robust SD over the columns): iris 3.2 /
# 0.98, wine 5.1 / 1.4, breast_cancer 38 / 3.3, diabetes 4.6 / 1.1, digits 11 / 3.3,
# lognormal(0, 1) x5000 29 / 2.3, lognormal(0, 2) 753 / 21, Pareto(1.5) 746 / 18, Student t(2)
# 117 / 3.1: all silent. Flagged: the audit's 4 x 1e6 in N(0, 1) (1e6 / 7e4), Cauchy (2e4 /
# 310) and lognormal(0, 3) (1e5 / 1.4e3), whose bulk standardising squashes below 1/300.
EXTREME_SDS = 100.0
COLLAPSE_RATIO = 50.0
IQR_TO_SD = 1.349  # a normal's interquartile range / its std
SAMPLE_ROWS = 100_000  # median and MAD read on every k-th row past this: stable, and fast
NUM_SHOWN = 5  # rows and columns named in the message
SCREEN_ROWS = 10_000  # rows whose MAD screens the columns (_candidates)


def robust_sd(column: np.ndarray) -> tuple[float, float]:
    """(median, robust SD) of the finite cells: the MAD scaled to a normal's std (x 1.4826),
    or IQR / 1.349 when over half the cells share one value (MAD 0); 0 when the quartiles are
    equal too (nothing to squash: the bulk is one value)."""
    finite = column[np.isfinite(column)]
    if len(finite) > SAMPLE_ROWS:
        finite = finite[::len(finite) // SAMPLE_ROWS]
    if len(finite) == 0:
        return 0.0, 0.0
    median = float(np.median(finite))
    mad = float(median_abs_deviation(finite, scale="normal"))
    if mad > 0:
        return median, mad
    q25, q75 = np.percentile(finite, [25, 75])
    return median, float(q75 - q25) / IQR_TO_SD


def column_extremes(column: np.ndarray, std: float | None = None) -> dict | None:
    """Evidence for one column whose std is dominated by a few extreme cells, else None.
    `std`: the std of its finite cells where the caller has it (_column_std)."""
    median, scale = robust_sd(column)
    finite = np.isfinite(column)
    if std is None:
        std = float(np.std(column[finite])) if finite.any() else 0.0
    if not scale > 0 or std < COLLAPSE_RATIO * scale:
        return None
    far = np.flatnonzero(finite & (np.abs(np.where(finite, column, median) - median)
                                   > EXTREME_SDS * scale))
    if len(far) == 0:
        return None
    bulk = np.ones(len(column), dtype=bool)
    bulk[far] = False
    bulk_std = float(np.std(column[bulk & finite])) / std  # its spread once standardised
    worst = far[np.argsort(-np.abs(column[far] - median), kind="stable")]
    return {"num_rows": len(far), "positions": worst, "median": median, "robust_sd": scale,
            "std": std, "bulk_std_scaled": bulk_std, "most_extreme": float(column[worst[0]])}


def _candidates(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, their std) whose std is at least COLLAPSE_RATIO / 2 times the robust SD of a
    row sample, for column_extremes to judge on every row: one column at a time took 19 s on
    60k x 784 normal values, the whole-array screen under a second. A column whose sample
    robust SD is 0 (quartiles equal: one-hot, sparse counts) is dropped before its std is
    read: column_extremes finds nothing to squash there. Measured on 2 shared cores (review
    VD5's cost.py): 1M x 300 one-hot float32 columns 14-40 s kept (12 s of it their std),
    0.4-1.4 s dropped; 1M x 30 normal 0.9-1.7 s before and after."""
    scale = _sample_scale(x[::max(1, len(x) // SCREEN_ROWS)])  # (<= 2 * SCREEN_ROWS, D)
    spread = np.flatnonzero(scale > 0)
    std = _column_std(x, spread)
    keep = std >= COLLAPSE_RATIO / 2 * scale[spread]
    return spread[keep], std[keep]


def _sample_scale(sample: np.ndarray) -> np.ndarray:
    """(D,) robust SD of each column of a row sample, as robust_sd reads it; NaN where a
    column has no finite cell."""
    values = sample.astype(np.float64)
    finite = np.isfinite(values)
    omit = "propagate" if finite.all() else "omit"  # omit loops over columns: only if needed
    with np.errstate(invalid="ignore"):
        values[~finite] = np.nan
        scale = median_abs_deviation(values, axis=0, scale="normal", nan_policy=omit)
        flat = scale == 0  # over half the cells share one value: the IQR, as robust_sd
        if flat.any():
            q25, q75 = np.nanpercentile(values[:, flat], [25, 75], axis=0)
            scale[flat] = (q75 - q25) / IQR_TO_SD
    return scale


def _column_std(x: np.ndarray, columns: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """(len(columns),) std of those columns' finite cells, in float64 over row chunks: a
    float64 copy of 1M x 64 float32 cells would take 512 MB."""
    count, total = np.zeros(len(columns)), np.zeros(len(columns))
    if len(columns) == x.shape[1]:
        columns = slice(None)  # every column: a view per chunk, not a gathered copy
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk, columns].astype(np.float64)
        finite = np.isfinite(part)
        count += finite.sum(axis=0)
        total += np.where(finite, part, 0).sum(axis=0)
    mean = total / np.maximum(count, 1)
    squares = np.zeros(len(total))
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk, columns].astype(np.float64)
        squares += np.where(np.isfinite(part), (part - mean) ** 2, 0).sum(axis=0)
    return np.sqrt(squares / np.maximum(count, 1))


def extreme_value_findings(x: np.ndarray, names: list[str],
                           source: Callable[[np.ndarray], np.ndarray]) -> list[Finding]:
    """A warning naming the feature columns of (N, D) `x` (tables, vectors) whose scale a few
    extreme cells dominate; `source`: positions -> source rows (TaskData.source)."""
    if x.dtype.kind not in "f" or x.size == 0:  # integer pixels / token ids: no measurements
        return []
    found = {}
    for j, std in zip(*_candidates(x), strict=True):
        hit = column_extremes(np.asarray(x[:, j], dtype=np.float64), float(std))
        if hit is not None:
            hit["rows"] = [int(r) for r in source(hit.pop("positions")[:NUM_SHOWN])]
            found[names[j]] = hit
    return [_finding(found, len(x))] if found else []


def _finding(found: dict[str, dict], num_rows: int) -> Finding:
    name, worst = next(iter(found.items()))
    others = [f"'{n}'" for n in list(found)[1:NUM_SHOWN]]
    more = f" ({len(found) - NUM_SHOWN} more in the evidence)" if len(found) > NUM_SHOWN else ""
    also = f" Also: {', '.join(others)}{more}." if others else ""
    count = worst["num_rows"]
    return warning(
        "data", "extreme_values",
        f"column '{name}': {count} value{'s' * (count != 1)} lie more than {EXTREME_SDS:g} "
        f"robust SDs from the median {worst['median']:.4g} (robust SD {worst['robust_sd']:.3g}; "
        f"rows {', '.join(map(str, worst['rows']))}; most extreme {worst['most_extreme']:.4g}). "
        f"They set the column's std to {worst['std']:.4g}, so standardised with mean and std "
        f"the other {num_rows - count} values keep a spread of only "
        f"{worst['bulk_std_scaled']:.2g} (1 when scaled on their own): the model can hardly "
        f"read this column, and training may stall or lose to a majority guess.{also}",
        "Look at those rows (counted from 0 at the first row under the header): correct "
        "values typed wrong or in another unit, or drop those rows; if the values are real, "
        "clip the column to a plausible range, or replace a positive skewed column by its log "
        "in the file; then rerun from the data stage.",
        columns=dict(list(found.items())[:10]),
        num_columns=len(found))
