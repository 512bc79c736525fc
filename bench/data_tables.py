"""The synthetic leakage table of /work/shared/bench/deepchecks_leakage.py, unchanged, so our
timings and the deepchecks anchor measure the same rows (numpy default_rng seeded with N).

N rows: 16 float64 columns f00..f15, 3 text columns cat10/cat100/cat1000, int `patient_id`
with N/10 values, binary `label`; a random 80/20 row split, then exactly 1% of the validation
rows replaced by copies of distinct training rows (N/500 planted copies).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOAT_COLS = [f"f{i:02d}" for i in range(16)]
CAT_CARD = {"cat10": 10, "cat100": 100, "cat1000": 1000}
FEATURES = FLOAT_COLS + list(CAT_CARD) + ["patient_id"]
LABEL = "label"


def make_data(n: int, seed: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(train, val, number of planted copies), as in the deepchecks anchor script."""
    rng = np.random.default_rng(n if seed is None else seed)
    cols = {}
    floats = rng.standard_normal((n, len(FLOAT_COLS)))
    for j, c in enumerate(FLOAT_COLS):
        cols[c] = np.ascontiguousarray(floats[:, j])
    del floats
    for c, card in CAT_CARD.items():
        names = np.array([f"{c}_v{k}" for k in range(card)], dtype=object)
        cols[c] = names[rng.integers(0, card, n)]
    cols["patient_id"] = rng.permutation(np.arange(n, dtype=np.int64) % (n // 10))
    cols[LABEL] = rng.integers(0, 2, n).astype(np.int64)
    full = pd.DataFrame(cols)
    perm = rng.permutation(n)
    n_train = int(round(n * 0.8))
    train_idx, val_idx = perm[:n_train], perm[n_train:].copy()
    n_plant = len(val_idx) // 100
    pos = rng.choice(len(val_idx), n_plant, replace=False)
    src = rng.choice(n_train, n_plant, replace=False)
    val_idx[pos] = train_idx[src]
    train = full.iloc[train_idx].reset_index(drop=True)
    val = full.iloc[val_idx].reset_index(drop=True)
    val.index = pd.RangeIndex(n_train, n_train + len(val_idx))
    return train, val, n_plant


def write_grouped_parquet(path: str, n: int, chunk: int = 1_000_000, seed: int = 0,
                          num_copies: int = 10_000) -> None:
    """n rows like make_data (no split), written chunk by chunk so generating 10M rows needs
    ~300 MB, not the whole table; row groups of 1M rows carry min/max statistics. The last
    chunk's first `num_copies` rows copy the first chunk's features and label under new
    patients: exactly num_copies duplicate rows for the audit to find."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer, first = None, None
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        cols = {c: rng.standard_normal(size) for c in FLOAT_COLS}
        for c, card in CAT_CARD.items():
            cols[c] = np.array([f"{c}_v{k}" for k in range(card)])[rng.integers(0, card, size)]
        cols["patient_id"] = rng.integers(0, n // 10, size)
        cols[LABEL] = rng.integers(0, 2, size)
        if first is None:
            first = {c: v[:num_copies].copy() for c, v in cols.items() if c != "patient_id"}
        if start + size == n:
            for c, values in first.items():
                cols[c][:num_copies] = values
        table = pa.Table.from_pydict(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=chunk)
    assert writer is not None
    writer.close()
