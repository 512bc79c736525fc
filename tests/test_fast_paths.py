"""The fast paths of table loading give what the plain pandas / numpy versions gave: one-hot
from Categorical codes as pd.get_dummies, row hashes block by block as whole, the constant
mask with a plain max / min first as the masked one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xxhash

from trainwise.data.audit import _constant_mask
from trainwise.data.leakage import HASH_ROWS, row_hashes
from trainwise.data.table_features import MAX_ONE_HOT, OTHER, encode_features


def _frame(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "num": rng.standard_normal(n),
        "few": pd.Series(rng.choice(["b", "a", "c"], n)).where(rng.random(n) > 0.2),
        "many": rng.choice([f"v{i}" for i in range(200)], n).astype(object),
        "same": "x",
        "flag": rng.random(n) < 0.5,
    })


def _dummies(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The former encoding: get_dummies, columns used by some rows and not all."""
    columns = {}
    for name in frame.columns[1:]:
        column = frame[name].astype(object)
        if column.nunique() > MAX_ONE_HOT:
            kept = column.value_counts().index[:MAX_ONE_HOT - 1]
            column = column.where(column.isin(kept) | column.isna(), OTHER)
        columns[name] = column
    dummies = pd.get_dummies(pd.DataFrame(columns), dummy_na=True, dtype=np.float32)
    dummies = dummies.loc[:, (dummies.nunique(dropna=False) > 1).to_numpy()]
    x = np.column_stack([frame["num"].to_numpy(np.float32), dummies.to_numpy(np.float32)])
    return x, ["num", *map(str, dummies.columns)]


def test_one_hot_codes_equal_get_dummies() -> None:
    frame = _frame()
    x, names, _, meanings = encode_features(frame)
    expected, expected_names = _dummies(frame)
    assert names == expected_names and [m[0] for m in meanings] == names[1:]
    assert x.dtype == np.float32 and np.array_equal(x, expected)


def test_row_hashes_blocks_equal_whole() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((HASH_ROWS * 2 + 7, 5)).astype(np.float32)
    x[3, 1], x[HASH_ROWS + 2, 0] = np.nan, -0.0
    rows = x + np.float32(0.0)
    rows[np.isnan(rows)] = np.nan
    whole = [xxhash.xxh3_64_intdigest(row.tobytes()) for row in rows]
    assert row_hashes(x).tolist() == whole


def test_constant_mask_skips_missing_and_infinite() -> None:
    x = np.ones((50, 5), np.float32)
    x[:, 1] = np.arange(50)
    x[0, 2], x[1, 3], x[:, 4] = np.nan, np.inf, np.nan
    x[2, 3] = 5.0  # finite values 1 and 5: not constant
    assert _constant_mask(x).tolist() == [True, False, True, False, False]


def test_an_arrow_float_column_that_starts_with_nan_is_not_constant():
    """review s12 Z1: dropna keeps NaN in a double[pyarrow] column, and a leading NaN made
    the equality check NA everywhere, read as constant; uint64 and Int64 with NA still read."""
    import pandas as pd

    from trainwise.data.column_table import _constant

    arrow = pd.Series([np.nan, 1.0, 2.0, 3.0], dtype="double[pyarrow]")
    assert not _constant(arrow)
    assert _constant(pd.Series([np.nan, 1.0, 1.0], dtype="double[pyarrow]"))
    assert _constant(pd.Series([-0.0, 0.0, np.nan]))
    assert _constant(pd.Series([np.inf, np.inf]))
    assert not _constant(pd.Series([1, None, 2], dtype="Int64"))
    assert _constant(pd.Series([5, 5], dtype="uint64"))
    assert _constant(pd.Series([], dtype=float))
