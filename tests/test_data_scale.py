"""Tables at scale: cell hashes agree between pandas and Arrow, the cross-split check counts
what a pandas merge counts, and the streamed Parquet audit agrees with the in-memory one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from trainwise.data.audit import audit
from trainwise.data.errors import DataError
from trainwise.data.scale import audit_parquet, check_frame_leakage
from trainwise.data.sources import load_data
from trainwise.data.tablehash import arrow_cells, combine, frame_hashes


def table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(4)})
    frame["small"] = rng.integers(0, 3, n).astype(float)  # few values: many partial matches
    frame["cat"] = rng.choice(["a", "b", "c"], n)
    frame["pid"] = rng.integers(0, n // 10, n)
    frame["label"] = rng.integers(0, 3, n)
    return frame


def test_pandas_and_arrow_hashes_agree_and_normalise_zero_and_nan():
    frame = pd.DataFrame({"x": [1.0, -0.0, np.nan, 3.0], "s": ["u", None, "v", "u"],
                          "t": pd.to_datetime(["2024-01-01"] * 4), "b": [True, False] * 2})
    arrow = pa.Table.from_pandas(frame)
    assert np.array_equal(frame_hashes(frame),
                          combine([arrow_cells(arrow[c]) for c in frame.columns], 4))
    other = frame.assign(x=[1.0, 0.0, float("nan"), 3.0])
    assert np.array_equal(frame_hashes(frame), frame_hashes(other))
    assert len(set(frame_hashes(table()).tolist())) == 3000  # distinct rows, distinct hashes


def merge_reference(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    pairs = a.reset_index(names="ra").merge(b.reset_index(names="rb"), on=columns)
    return {"num_pairs": len(pairs), "num_rows_train": pairs["ra"].nunique(),
            "num_rows_val": pairs["rb"].nunique()}


@pytest.mark.parametrize("seed", [0, 1])
def test_cross_split_copies_match_a_pandas_merge(seed):
    frame = table(seed=seed)
    a, b = frame.iloc[:2400].reset_index(drop=True), frame.iloc[2400:].reset_index(drop=True)
    b.iloc[[3, 50, 51, 300]] = a.iloc[[7, 7, 100, 2000]].to_numpy()  # 4 copies, 1 twice
    a.iloc[9] = a.iloc[7].to_numpy()  # row 7's content twice in a: 2 x 2 pairs
    columns = [c for c in frame.columns if c not in ("pid", "label")]
    findings = check_frame_leakage(a, b, group_column="pid", exclude=("label",))
    dup = next(f for f in findings if f.code == "cross_split_duplicates")
    reference = merge_reference(a, b, columns)
    assert {k: dup.evidence[k] for k in reference} == reference == {
        "num_pairs": 6, "num_rows_train": 4, "num_rows_val": 4}
    for i, j in dup.evidence["examples_train_val"]:
        assert a.loc[i, columns].equals(b.loc[j, columns])
    shared = next(f for f in findings if f.code == "shared_groups")
    assert shared.evidence["num_shared_groups"] == len(set(a["pid"]) & set(b["pid"]))


def test_streamed_audit_agrees_with_the_in_memory_audit(tmp_path):
    frame = table(5000)
    frame.iloc[100:110, :6] = frame.iloc[0, :6].to_numpy()  # 10 copies (labels differ)
    frame.loc[5, "f2"], frame.loc[6, "f3"] = np.nan, np.inf
    frame["const"] = 1.0
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, row_group_size=700)  # several row groups across the workers
    findings, summary = audit_parquet(path, "label", group_column="pid")
    in_memory, reference = audit(load_data(str(path), "label", group_column="pid"))
    assert summary["class_counts"] == reference["class_counts"]
    exact = frame.iloc[:, :6].assign(label=frame["label"]).duplicated().sum()  # inputs + label
    assert summary["duplicates"]["count"] == reference["duplicates"]["count"] == exact
    assert 0 < exact < 10  # some of the 10 copies share row 0's label, some do not
    assert summary["conflicts"]["count"] == reference["conflicts"]["count"] == 1
    assert summary["missing"] == {"f2": 1, "f3": 1}
    [streamed_missing, memory_missing] = [next(f for f in found if f.code == "missing_values")
                                          for found in (findings, in_memory)]
    assert streamed_missing.evidence["shares"] == memory_missing.evidence["shares"] == {
        "f2": 1 / 5000, "f3": 1 / 5000}  # one cell each of 5000 rows (s12 K8)
    assert summary["constant_features"] == ["const"]
    stats = summary["features"]["f0"]
    assert stats["mean"] == pytest.approx(frame["f0"].mean(), rel=1e-9)
    assert stats["std"] == pytest.approx(frame["f0"].std(ddof=0), rel=1e-9)
    assert sum(stats["histogram"]) == 5000
    expected = np.histogram(frame["f0"], bins=30, range=(frame["f0"].min(),
                                                          frame["f0"].max()))[0]
    assert np.abs(np.array(stats["histogram"]) - expected).sum() <= 2  # edge rounding only
    codes = [f.code for f in findings]
    assert "shared_groups" not in codes and summary["split"]["strategy"] == "stratified_group"


def test_streamed_audit_errors_name_the_column(tmp_path):
    path = tmp_path / "t.parquet"
    table(100).to_parquet(path)
    with pytest.raises(DataError, match="group column 'patient' is not in"):
        audit_parquet(path, "label", group_column="patient")
    bad = tmp_path / "bad.parquet"
    bad.write_text("nope")
    with pytest.raises(DataError, match="could not read .*bad.parquet"):
        audit_parquet(bad, "label")
