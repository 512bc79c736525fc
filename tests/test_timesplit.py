"""Time splits: validation after training per series (strategy "time" with groups), whole
groups by start time (group_time, what auto picks for groups + times), gap in time units, ties
kept together, sizes in samples, and the proofs that catch interleaved windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.folds import kfold_indices
from trainwise.data.leakage import check_group_starts, check_time_order
from trainwise.data.split import split_indices


def panel(seed: int = 0, num_series: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Series of 3..60 daily rows each, starting on different days, rows shuffled, with
    duplicate timestamps: what TimeSeriesSplit (sorted rows, one series) gets wrong."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 60, num_series)
    series = np.repeat(np.arange(num_series), sizes)
    start = rng.integers(0, 100, num_series)[series]
    days = start + np.concatenate([np.sort(rng.integers(0, 2 * s, s)) for s in sizes])
    order = rng.permutation(len(series))
    times = np.datetime64("2024-01-01") + days.astype("timedelta64[D]")
    return series[order], times[order], rng.integers(0, 2, len(series))


def windows(times: np.ndarray, series: np.ndarray, rows: np.ndarray, how: str) -> pd.Series:
    return pd.Series(times[rows]).groupby(series[rows]).agg(how)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_per_series_split_by_the_pandas_reference(seed, fraction):
    series, times, y = panel(seed)
    split = split_indices(y, val_fraction=fraction, groups=series, times=times, strategy="time",
                          seed=seed)
    assert split.strategy == "time" and split.num_dropped == 0
    assert abs(len(split.val) / len(y) - fraction) <= 0.02  # in samples
    last_train = windows(times, series, split.train, "max")
    first_val = windows(times, series, split.val, "min")
    both = first_val.index.intersection(last_train.index)
    assert len(both) > 0 and (last_train[both] < first_val[both]).all()
    # every series' val rows are its latest: nothing of a series after its val start is in train
    same_day = pd.Series(times).groupby(series).transform("max") == times
    assert np.isin(np.flatnonzero(same_day), split.train).sum() < len(series) // 10


def test_gap_in_time_units_and_dropped_rows_counted():
    series, times, y = panel(3)
    plain = split_indices(y, val_fraction=0.2, groups=series, times=times, strategy="time", seed=0)
    gapped = split_indices(y, val_fraction=0.2, groups=series, times=times, strategy="time",
                           seed=0, gap="5D")
    assert np.array_equal(plain.val, gapped.val)
    assert gapped.num_dropped == len(plain.train) - len(gapped.train) > 0
    first_val = windows(times, series, gapped.val, "min")
    last_train = windows(times, series, gapped.train, "max")
    both = first_val.index.intersection(last_train.index)
    assert ((first_val[both] - last_train[both]) > pd.Timedelta("5D")).all()
    # reference: the rows dropped are exactly the train rows within 5 days of their val start
    start = pd.Series(series[plain.train]).map(first_val).to_numpy()
    near = times[plain.train] >= start - np.timedelta64(5, "D")
    assert near.sum() == gapped.num_dropped
    assert check_time_order(times[gapped.train], times[gapped.val], gap="5D",
                            series_a=series[gapped.train],
                            series_b=series[gapped.val])[0].code == "time_order"


def test_date_cut_and_duration_cut():
    series, times, y = panel(4)
    cut = np.datetime64("2024-03-15")
    split = split_indices(y, val_fraction=0.2, times=times, cut="2024-03-15")
    assert np.array_equal(split.val, np.flatnonzero(times >= cut))  # one cut for all series
    last = split_indices(y, val_fraction=0.2, groups=series, times=times, strategy="time",
                         cut="10D")
    end = pd.Series(times).groupby(series).transform("max").to_numpy()
    assert np.array_equal(last.val, np.flatnonzero(times >= end - np.timedelta64(10, "D")))


def test_numeric_times_and_ties_stay_together():
    times = np.repeat(np.arange(20.0), 5)  # 5 rows share each time
    split = split_indices(np.arange(100) % 2, val_fraction=0.2, times=times, gap=2)
    assert times[split.train].max() + 2 < times[split.val].min()
    assert len(split.val) == 20 and split.num_dropped == 10


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"cut": "2030-01-01"}, "validation part empty: no time falls at or after split.cut = "
                            "'2030-01-01', and the times run from 2024-01-01"),
    ({"cut": "2000-01-01"}, "training part empty: no time falls before split.cut"),
    ({"cut": "30"}, "needs a unit"),
    ({"cut": "soon"}, "neither a date nor"),
    ({"gap": "a while"}, "not a duration"),
    ({"strategy": "stratified"}, "ignores the declared time column"),
    ({"strategy": "group"}, "ignores the declared time column"),
])
def test_impossible_time_splits_raise_with_a_fix(kwargs, match):
    series, times, y = panel(5)
    with pytest.raises(DataError, match=match):
        split_indices(y, val_fraction=0.2, times=times, **kwargs)


def test_time_strategy_needs_times():
    with pytest.raises(DataError, match="needs a time per row"):
        split_indices(np.arange(10) % 2, val_fraction=0.2, strategy="time")


def test_time_folds_are_expanding_windows():
    series, times, y = panel(6)
    folds = kfold_indices(y, num_folds=4, groups=series, times=times, strategy="time", seed=1)
    assert [f.strategy for f in folds] == ["time"] * 4
    sizes = np.array([len(f.val) for f in folds]) / len(y)
    assert np.abs(sizes - 1 / 5).max() <= 0.02  # k + 1 blocks, fold j validates on block j
    for before, after in zip(folds, folds[1:], strict=False):
        assert set(before.train) | set(before.val) == set(after.train)  # expanding windows
    gapped = kfold_indices(y, num_folds=4, groups=series, times=times, strategy="time",
                           gap="1D", seed=1)
    for fold, plain in zip(gapped, folds, strict=True):
        assert np.array_equal(fold.val, plain.val) and set(fold.train) <= set(plain.train)
        assert fold.num_dropped == len(plain.train) - len(fold.train)
        [proof] = check_time_order(times[fold.train], times[fold.val], gap="1D",
                                   series_a=series[fold.train], series_b=series[fold.val])
        assert proof.code == "time_order"


def test_interleaved_windows_are_caught_as_pandas_sees_them():
    series, times, y = panel(7)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))
    a, b = rows[: len(y) // 2], rows[len(y) // 2:]  # a random split: windows interleave
    [finding] = check_time_order(times[a], times[b], series_a=series[a], series_b=series[b])
    last_a, first_b = windows(times, series, a, "max"), windows(times, series, b, "min")
    both = first_b.index.intersection(last_a.index)
    assert finding.code == "time_overlap"
    assert finding.evidence["num_series"] == int((first_b[both] <= last_a[both]).sum())
    late = times[b] <= pd.Series(series[b]).map(last_a).to_numpy()
    assert finding.evidence["num_rows"] == int(late.sum())


def test_time_split_is_pure_and_reproducible():
    series, times, y = panel(8)
    state = np.random.get_state()[1].copy()
    first = split_indices(y, val_fraction=0.2, groups=series, times=times, strategy="time", seed=3)
    again = split_indices(y, val_fraction=0.2, groups=series, times=times, strategy="time", seed=3)
    assert first.fingerprint == again.fingerprint
    assert np.array_equal(np.random.get_state()[1], state)


def starts(times: np.ndarray, series: np.ndarray, rows: np.ndarray) -> pd.Series:
    return windows(times, series, rows, "min")


def test_groups_and_times_auto_keep_groups_whole_by_hand():
    # 4 groups start on days 0..3 with 4, 3, 2, 1 rows; group 0 runs to day 9, so a per-row
    # time split would put its late rows in val. Laid end to end by start, the groups' middles
    # sit at 0.2, 0.55, 0.8, 0.95 of the rows: val_fraction 0.3 takes the last two (3 rows).
    series = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
    days = np.array([0, 5, 8, 9, 1, 2, 3, 2, 4, 3])
    times = np.datetime64("2024-01-01") + days.astype("timedelta64[D]")
    split = split_indices(np.arange(10) % 2, val_fraction=0.3, groups=series, times=times)
    assert split.strategy == "group_time"
    assert split.val.tolist() == [7, 8, 9] and split.num_dropped == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_time_split_by_the_pandas_reference(seed):
    series, times, y = panel(seed)
    split = split_indices(y, val_fraction=0.2, groups=series, times=times, seed=seed)
    assert split.strategy == "group_time"
    assert not set(series[split.train]) & set(series[split.val])  # whole groups
    assert starts(times, series, split.val).min() >= starts(times, series, split.train).max()
    assert abs(len(split.val) / len(y) - 0.2) <= 0.03  # in samples, within half a group
    [proof] = check_group_starts(times[split.train], times[split.val], series[split.train],
                                 series[split.val])
    later = (times[split.train] > times[split.val].min()).sum()  # rows, not group starts
    assert proof.code == "group_start_order" and proof.evidence["num_rows_after"] == later
    # most training rows after validation begins (panel data): a warning naming "time"
    assert (proof.severity.value == "warning") == bool(later * 2 > len(split.train))
    if proof.severity.value == "warning":
        assert 'split.strategy = "time"' in proof.fix


def test_panel_data_kept_in_whole_groups_is_a_warning():
    """Every group spans the whole year: whole groups by start leave nearly all training rows
    after validation begins."""
    series = np.repeat(np.arange(10), 12)
    times = np.datetime64("2024-01-01") + (np.tile(np.arange(12) * 30, 10)
                                           + np.repeat(np.arange(10), 12)).astype("timedelta64[D]")
    train, val = series < 8, series >= 8
    [proof] = check_group_starts(times[train], times[val], series[train], series[val])
    later = int((times[train] > times[val].min()).sum())  # by hand: 8 groups x 11 months
    assert later == 88 and proof.severity.value == "warning"
    assert 'split.strategy = "time"' in proof.fix


def test_group_time_gap_and_cut_act_on_group_starts():
    series, times, y = panel(3)
    first = pd.Series(times).groupby(series).transform("min").to_numpy()
    plain = split_indices(y, val_fraction=0.2, groups=series, times=times)
    gapped = split_indices(y, val_fraction=0.2, groups=series, times=times, gap="5D")
    assert np.array_equal(plain.val, gapped.val)
    val_start = first[plain.val].min()
    near = first[plain.train] >= val_start - np.timedelta64(5, "D")  # whole groups dropped
    assert gapped.num_dropped == near.sum() > 0
    assert np.array_equal(gapped.train, np.sort(plain.train[~near]))
    cut = split_indices(y, val_fraction=0.2, groups=series, times=times, cut="2024-03-01")
    assert np.array_equal(cut.val, np.flatnonzero(first >= np.datetime64("2024-03-01")))


def test_group_time_folds_keep_groups_whole_and_expand():
    series, times, y = panel(6)
    folds = kfold_indices(y, num_folds=3, groups=series, times=times, seed=1)
    assert [f.strategy for f in folds] == ["group_time"] * 3
    for before, after in zip(folds, folds[1:], strict=False):
        assert set(before.train) | set(before.val) == set(after.train)
    for fold in folds:
        assert not set(series[fold.train]) & set(series[fold.val])
        assert starts(times, series, fold.val).min() >= starts(times, series, fold.train).max()


def test_group_time_needs_groups_and_a_random_group_split_is_caught():
    series, times, y = panel(7)
    with pytest.raises(DataError, match="'group_time' needs a group key"):
        split_indices(y, val_fraction=0.2, times=times, strategy="group_time")
    split = split_indices(y, val_fraction=0.2, groups=series, strategy="group")  # times ignored
    [finding] = check_group_starts(times[split.train], times[split.val], series[split.train],
                                   series[split.val])
    first_val = starts(times, series, split.val)
    assert finding.code == "group_start_overlap"
    assert finding.evidence["num_groups"] == (first_val < starts(times, series,
                                                                 split.train).max()).sum()


@pytest.mark.parametrize("wrap", [pd.Series, pd.DatetimeIndex, lambda t: np.asarray(t),
                                  lambda t: list(t)])
def test_tz_aware_times_are_read_in_utc_like_a_table(wrap):
    # 2024-03-31 02:00 Berlin: DST starts, so local clock times are not one per hour; the split
    # must follow UTC, as naive UTC datetime64 gives it
    local = pd.date_range("2024-03-30 12:00", periods=50, freq="h", tz="Europe/Berlin")
    y = np.arange(50) % 2
    naive_utc = local.tz_convert("UTC").tz_localize(None).to_numpy()
    reference = split_indices(y, val_fraction=0.2, times=naive_utc, cut="2024-03-31 12:00")
    split = split_indices(y, val_fraction=0.2, times=wrap(local), cut="2024-03-31 12:00")
    # the first row is 11:00 UTC (12:00 CET), so 12:00 UTC a day later is row 25
    assert np.array_equal(split.val, reference.val) and split.val[0] == 25
    folds = kfold_indices(y, num_folds=3, times=wrap(local))
    assert [len(f.val) for f in folds] == [len(f.val) for f in kfold_indices(
        y, num_folds=3, times=naive_utc)]


def test_date_text_is_refused_with_a_way_to_parse_it():
    with pytest.raises(DataError, match="pd.to_datetime"):
        split_indices(np.arange(10) % 2, val_fraction=0.2, times=np.array(["2024-01-01"] * 10,
                                                                        dtype=object))


def test_a_date_cut_on_numeric_times_gets_advice_in_their_units():
    dates = pd.date_range("2016-01-01", periods=48, freq="MS")
    epoch = (dates - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")  # seconds since 1970
    y = np.arange(48) % 2
    with pytest.raises(DataError) as caught:
        split_indices(y, val_fraction=0.2, times=epoch.to_numpy(), cut="2018-01-01")
    message = str(caught.value)
    assert "2024-06-01" not in message and "'30D'" not in message.split("durations")[0]
    suggested = message.split("'2018-01-01' is '")[1].split("'")[0]
    assert suggested == str(int(pd.Timestamp("2018-01-01").timestamp()))  # 1514764800
    # the advice works: the suggested number cuts where the date cuts the same rows as dates
    by_number = split_indices(y, val_fraction=0.2, times=epoch.to_numpy(), cut=suggested)
    by_date = split_indices(y, val_fraction=0.2, times=dates.to_numpy(), cut="2018-01-01")
    assert np.array_equal(by_number.val, by_date.val)
    with pytest.raises(DataError, match=r"from 0 to 19\), so the cut must be one in the same "
                                        r"units, e.g. '15'") as caught:
        split_indices(np.arange(20) % 2, val_fraction=0.2, times=np.arange(20), cut="soon")
    assert "since 1970" not in str(caught.value)


def test_a_cut_outside_epoch_second_times_names_the_range_in_full():
    # '1.51476e+09 to 1.52332e+09' gave the user no cut to pick; the next error on the same
    # data wrote '1514764800': one formatter writes whole numbers in full
    times = np.arange(1514764800, 1523318400 + 1, 86400).astype(np.float64)
    y = np.arange(len(times)) % 2
    with pytest.raises(DataError, match="times run from 1514764800 to 1523318400. Move "
                                        "split.cut"):
        split_indices(y, val_fraction=0.2, times=times, cut=1600000000)
    with pytest.raises(DataError, match=r"from 1514764800 to 1523318400\)"):
        split_indices(y, val_fraction=0.2, times=times, cut="soon")


def test_empty_parts_blame_the_setting_at_fault_and_no_other():
    y = np.arange(30) % 2
    # k time folds of whole groups need k + 1 groups: counted, no cut, gap or test part named
    with pytest.raises(DataError) as caught:
        kfold_indices(y, num_folds=5, groups=np.repeat([0, 1, 2], 10), times=np.arange(30))
    message = str(caught.value)
    assert "3 groups cannot fill 5 time folds" in message and "at least 6 groups" in message
    assert "lower split.num_folds to 2 or fewer" in message
    assert all(unset not in message for unset in ("split.cut", "split.gap", "test part"))
    # enough groups, but too unequal for the blocks: the fold is named as the folds list and
    # split.npz ('fold0_train') count it, from 0, and the advice is fewer folds than set
    groups, times = np.repeat([0, 1, 2, 3], [1, 1, 1, 50]), np.arange(53)
    with pytest.raises(DataError, match=r"validation part empty: 3 folds cut the 4 groups, .* "
                                        r"fold 0's validation part \(block 1\) holds no group"
                                        r".* Lower split.num_folds to 2 or fewer"):
        kfold_indices(np.arange(53) % 2, num_folds=3, groups=groups, times=times)
    # a gap that swallows every training row is named alone
    with pytest.raises(DataError, match="split.gap = 100 drops all 16 training rows") as caught:
        split_indices(np.arange(20) % 2, val_fraction=0.2, times=np.arange(20), gap=100)
    assert "split.cut" not in str(caught.value)


def test_the_fraction_advice_for_whole_groups_is_the_least_that_works():
    groups = np.repeat([0, 1], [7, 13])  # the audit's three_groups.csv pool after its test cut
    times, y = np.arange(20), np.arange(20) % 2
    with pytest.raises(DataError, match="validation part empty") as caught:
        split_indices(y, val_fraction=0.1, groups=groups, times=times)
    message = str(caught.value)
    assert "holds 65% of the rows" in message and "split.cut" not in message
    need = float(message.split("split.val_fraction to at least ")[1][:4])
    split = split_indices(y, val_fraction=need, groups=groups, times=times)
    assert np.array_equal(split.val, np.arange(7, 20))  # the advice works: group 1 held out
    with pytest.raises(DataError):
        split_indices(y, val_fraction=need - 0.01, groups=groups, times=times)
    # a latest group of 99% needs 0.495, which rounds up to 0.50: the config refuses
    # fractions of 0.5 and more, so the advice is to add groups, never an invalid fraction
    groups = np.repeat([0, 1], [2, 198])
    with pytest.raises(DataError, match="holds 99% of the rows. Add groups") as caught:
        split_indices(np.arange(200) % 2, val_fraction=0.1, groups=groups, times=np.arange(200))
    assert "Raise split.val_fraction" not in str(caught.value)
