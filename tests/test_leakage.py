"""Leakage: exact duplicates across splits (checked against pandas) and shared groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.leakage import check_leakage, row_hashes
from trainwise.data.sources import DataError
from trainwise.findings import Severity


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """train (300, 6) with a few repeated rows; val (120, 6) holding copies of train rows."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(300, 6)).astype(np.float32)
    train[[10, 11]] = train[5]  # a content present 3 times in train
    val = rng.normal(size=(120, 6)).astype(np.float32)
    val[[0, 40, 41]] = train[5]  # ... and 3 times in val: 9 matched pairs
    val[[7, 80, 119]] = train[[100, 200, 299]]
    return train, val


def pandas_reference(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    left = pd.DataFrame(a.reshape(len(a), -1)).reset_index(names="row_a")
    right = pd.DataFrame(b.reshape(len(b), -1)).reset_index(names="row_b")
    columns = [c for c in left.columns if c != "row_a"]
    pairs = left.merge(right, on=columns)
    return {"num_pairs": len(pairs), "num_rows_train": pairs["row_a"].nunique(),
            "num_rows_val": pairs["row_b"].nunique()}


def test_planted_duplicates_match_pandas_exactly():
    train, val = planted()
    [finding] = check_leakage(train, val)
    # 6 of 120 val rows: 5.0%, up to deepchecks' 5%, so a warning (K6)
    assert finding.code == "cross_split_duplicates" and finding.severity is Severity.WARNING
    assert finding.fix and "6 of 120, 5.0%" in finding.message
    reference = pandas_reference(train, val)
    assert reference == {"num_pairs": 12, "num_rows_train": 6, "num_rows_val": 6}
    assert {k: finding.evidence[k] for k in reference} == reference
    for i, j in finding.evidence["examples_train_val"]:
        assert np.array_equal(train[i], val[j])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_duplicates_match_pandas(seed):
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 3, size=(400, 3)).astype(np.float64)  # 27 contents: many collisions
    a, b = pool[:250], pool[250:]
    [finding] = check_leakage(a, b, names=("train", "val"))
    reference = pandas_reference(a, b)
    assert {k: finding.evidence[k] for k in reference} == reference


def test_signed_zero_nan_and_dtype_are_normalised():
    a = np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[-0.0, 1.0], [np.float32("nan"), 2.0], [3.0, 4.0]], dtype=np.float64)
    b[1, 0] = np.frombuffer(np.uint64(0x7FF8000000000123).tobytes(), np.float64)[0]  # odd NaN
    assert np.isnan(b[1, 0])
    [finding] = check_leakage(a, b)
    assert finding.evidence["num_rows_val"] == 3


def test_hashes_depend_on_content_not_position():
    x = np.random.default_rng(0).normal(size=(50, 2, 8))  # (N, C, T) sequences
    hashes = row_hashes(x)
    assert len(np.unique(hashes)) == 50
    assert np.array_equal(row_hashes(x[::-1]), hashes[::-1])
    assert np.array_equal(row_hashes(x.copy(order="F")), hashes)  # layout does not matter


def test_shared_groups_counted():
    rng = np.random.default_rng(0)
    x_a, x_b = rng.normal(size=(100, 4)), rng.normal(size=(40, 4))
    groups_a = np.array([f"p{i % 20}" for i in range(100)])  # p0..p19, 5 rows each
    groups_b = np.array([f"p{17 + i % 8}" for i in range(40)])  # p17..p24: 3 shared
    [finding] = check_leakage(x_a, x_b, groups_a=groups_a, groups_b=groups_b)
    assert finding.code == "shared_groups" and finding.severity is Severity.ERROR
    assert "re-split by group" in finding.fix.lower()
    shared = set(groups_a) & set(groups_b)
    assert finding.evidence["num_shared_groups"] == len(shared) == 3
    assert finding.evidence["num_rows_train"] == np.isin(groups_a, list(shared)).sum() == 15
    assert finding.evidence["num_rows_val"] == np.isin(groups_b, list(shared)).sum() == 15
    assert set(finding.evidence["examples"]) == shared


def test_both_leaks_reported_together():
    train, val = planted()
    groups = np.zeros(len(train), dtype=int)
    codes = {f.code for f in check_leakage(train, val, groups_a=groups,
                                           groups_b=np.zeros(len(val), dtype=int))}
    assert codes == {"cross_split_duplicates", "shared_groups"}


def test_clean_splits_give_one_info_with_counts():
    rng = np.random.default_rng(0)
    [finding] = check_leakage(rng.normal(size=(30, 3)), rng.normal(size=(10, 3)),
                              groups_a=np.arange(30), groups_b=np.arange(30, 40),
                              names=("trainval", "test"))
    assert finding.severity is Severity.INFO and finding.code == "no_leakage"
    assert finding.evidence["num_rows_trainval"] == 30 and finding.evidence["num_rows_test"] == 10
    assert finding.evidence["groups_checked"] is True


def test_mismatched_shapes_raise():
    with pytest.raises(DataError, match="same features"):
        check_leakage(np.zeros((3, 4)), np.zeros((3, 5)))


def test_group_start_order_counts_rows_strictly_after_the_later_part_begins():
    # every patient starts on 2023-01-01 (the audit's samestart.csv): rows on that day are not
    # "dated after val begins"; the count is the rows strictly later, as pandas counts them
    from trainwise.data.leakage import check_group_starts

    day = np.datetime64("2023-01-01") + np.array([0, 0, 5, 9, 0, 3, 0, 0, 2]).astype(
        "timedelta64[D]")
    groups = np.array([1, 1, 1, 1, 2, 2, 3, 3, 3])
    a, b = np.arange(6), np.arange(6, 9)  # groups 1, 2 | group 3, all starting on day 0
    [finding] = check_group_starts(day[a], day[b], groups[a], groups[b])
    later = int((pd.Series(day[a]) > pd.Series(day[b]).min()).sum())
    assert finding.evidence["num_rows_after"] == later == 3
    assert "3 of 6 train rows are dated after val begins" in finding.message


@pytest.mark.parametrize(("num_copies", "severity"), [(1, "warning"), (8, "warning"),
                                                      (9, "error")])
def test_cross_split_copies_are_an_error_only_above_five_percent_of_the_later_part(
        num_copies, severity):
    """Audit s12 K6: one repeated reading in a time split's 160 test rows stopped the run."""
    from trainwise.data.leakage import check_hashed

    rng = np.random.default_rng(0)
    earlier, later = rng.normal(size=(640, 4)), rng.normal(size=(160, 4))
    later[:num_copies] = earlier[:num_copies]
    [finding] = check_hashed(row_hashes(earlier), row_hashes(later), timed=True,
                             names=("train+val", "test"))
    assert finding.code == "cross_split_duplicates" and finding.severity.value == severity
    share = f"{num_copies} of 160, {num_copies / 160:.1%}"  # 0.6%, 5.0%, 5.6%
    assert share in finding.message and finding.evidence["share_test"] == round(num_copies / 160, 4)
    # a time split keeps its time order for a few copies; only many call for a group key
    assert ("group" in finding.fix) == (severity == "error")


def test_copy_share_counts_every_row_of_the_later_part_when_only_candidates_are_hashed():
    from trainwise.data.scale import check_frame_leakage

    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(size=(500, 3)), columns=list("xyz"))
    b = pd.DataFrame(rng.normal(size=(400, 3)), columns=list("xyz"))
    b.iloc[:4] = a.iloc[:4].to_numpy()  # 4 of 400 = 1%: the pruned hashes hold only these 4
    [finding] = check_frame_leakage(a, b)
    assert finding.severity.value == "warning" and "4 of 400, 1.0%" in finding.message


def test_exact_copies_are_looked_up_once_for_both_checks(monkeypatch):
    # review s12 VD9: the exact check and the near search each sorted the whole earlier part to
    # find b's exact copies; now one lookup serves both, and both still see the same copies
    from trainwise.data import leakage

    train, val = planted()
    lookups, member = [], leakage.member
    monkeypatch.setattr(leakage, "member", lambda values, pool, **kw: lookups.append(
        (len(values), len(pool), kw.get("pool_sorted", False))) or member(values, pool, **kw))
    findings = leakage.check_hashed(row_hashes(train), row_hashes(val), vectors=(train, val))
    assert lookups.count((120, 300, False)) == 1  # val rows against all of train, unsorted
    [exact] = [f for f in findings if f.code == "cross_split_duplicates"]
    assert exact.evidence == check_leakage(train, val)[0].evidence
    assert "near_duplicate_rows" not in {f.code for f in findings}  # the copies are exact
