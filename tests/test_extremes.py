"""Extreme values: a few huge cells that standardisation would make the column's scale."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trainwise.data.audit import audit
from trainwise.data.extremes import extreme_value_findings


def identity(rows: np.ndarray) -> np.ndarray:
    return rows


def test_four_huge_cells_are_named_with_rows_and_the_squashed_spread():
    rng = np.random.default_rng(0)
    z = rng.normal(size=800)
    z[:4] = 1e6  # the audit's outlier_z.csv (s12 K1)
    frame = pd.DataFrame({"z": z, "noise": rng.normal(size=800),
                          "target": (z > 0).astype(int)})
    frame = pd.concat([pd.DataFrame({"z": [0.5], "noise": [0.0], "target": [np.nan]}),
                       frame], ignore_index=True)  # a dropped first row: file rows shift by 1
    findings, _ = audit(frame, target="target")
    [found] = [f for f in findings if f.code == "extreme_values"]
    assert found.severity.value == "warning"
    hit = found.evidence["columns"]["z"]
    assert set(found.evidence["columns"]) == {"z"}
    assert hit["num_rows"] == 4 and sorted(hit["rows"]) == [1, 2, 3, 4]  # rows of the file
    assert hit["most_extreme"] == 1e6
    whole = z.astype(np.float32).astype(np.float64)  # as the table is read
    assert hit["bulk_std_scaled"] == pytest.approx(whole[4:].std() / whole.std(), rel=1e-6)
    assert hit["bulk_std_scaled"] < 1e-4
    assert "extreme_values" in findings[-1].evidence["flagged"]
    json.dumps(found.to_dict())


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes", "digits"])
def test_silent_on_sklearn_tables(name):
    datasets = pytest.importorskip("sklearn.datasets")
    x = getattr(datasets, f"load_{name}")().data.astype(np.float32)
    assert extreme_value_findings(x, [f"x{i}" for i in range(x.shape[1])], identity) == []


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_silent_on_skewed_and_heavy_tailed_columns(sigma):
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.lognormal(0, sigma, 5000), rng.standard_t(2, 5000),
                         rng.pareto(1.5, 5000)]).astype(np.float32)
    assert extreme_value_findings(x, ["a", "b", "c"], identity) == []


def test_a_mostly_zero_count_column_with_a_spike_is_left_alone():
    x = np.zeros((1000, 1), np.float32)
    x[:3] = 1e6  # the bulk is one value: standardising squashes nothing (IQR 0)
    assert extreme_value_findings(x, ["count"], identity) == []


def test_wide_array_with_missing_cells_names_only_the_dominated_column():
    """The whole-array screen (a 10k-row sample's MAD) passes the column on to the exact
    per-column rule, which counts on every row, NaN cells left out."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30_000, 50)).astype(np.float32)
    x[::7, 3] = np.nan
    x[[29_999, 12_345], 3] = [-5e5, 2e6]  # rows a stride sample of 10k rows may skip
    x[:100, 9] = np.nan
    [found] = extreme_value_findings(x, [f"f{i}" for i in range(50)], identity)
    hit = found.evidence["columns"]["f3"]
    assert list(found.evidence["columns"]) == ["f3"]
    assert hit["num_rows"] == 2 and hit["rows"] == [12_345, 29_999]  # most extreme first


def test_one_hot_and_sparse_columns_are_screened_out_before_their_std():
    """A 0/1 or mostly-zero column (sample quartiles equal) cannot have a cell 100 robust SDs
    out: the screen drops it, where keeping every one took 36 s on 1M x 300 one-hot columns
    (review VD5). A mostly-zero column whose quartiles differ keeps its IQR fallback."""
    from trainwise.data.extremes import _candidates, column_extremes

    rng = np.random.default_rng(0)
    one_hot = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 5000)]  # (5000, 8)
    counts = np.where(rng.random(5000) < 0.9, 0, rng.poisson(3, 5000)).astype(np.float32)
    half = np.where(rng.random(5000) < 0.55, 0, rng.exponential(size=5000)).astype(np.float32)
    half[:4] = 1e7  # MAD 0, IQR ~0.6 (q25 0): four cells dominate
    x = np.column_stack([one_hot, counts, half])
    columns, std = _candidates(x)
    assert columns.tolist() == [9]
    assert std[0] == pytest.approx(x[:, 9].astype(np.float64).std(), rel=1e-9)
    [found] = extreme_value_findings(x, [f"c{j}" for j in range(10)], identity)
    assert list(found.evidence["columns"]) == ["c9"]
    given = column_extremes(x[:, 9].astype(np.float64), float(std[0]))
    own = column_extremes(x[:, 9].astype(np.float64))
    assert np.array_equal(given.pop("positions"), own.pop("positions"))
    assert given == pytest.approx(own, rel=1e-9)
