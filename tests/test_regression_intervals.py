"""Bootstrap 95% intervals of a regression's test scores (audit s12 S11): checked by their
coverage on synthetic data whose true RMSE and MAE are known, and shown in the report."""

from __future__ import annotations

import math

import numpy as np

from trainwise.reporting.scores import score_table
from trainwise.train.regression_intervals import (
    LINEAR_DIFFERENCE,
    LINEAR_DIFFERENCE_INTERVAL,
    linear_difference,
    regression_intervals,
)


def test_the_intervals_cover_the_true_rmse_and_mae_about_95_times_in_100() -> None:
    """Errors N(0, 2): the true RMSE is 2 and the true MAE 2 * sqrt(2 / pi). 200 test sets of
    200 rows: a 95% interval misses about 10 of them (binomial sd 3); a percentile bootstrap
    of a root runs a little narrow, so 84-100% is the accepted band."""
    rng = np.random.default_rng(0)
    covered = {"rmse": 0, "mae": 0}
    for trial in range(200):
        actual = rng.normal(0, 5, 200)
        predicted = actual + rng.normal(0, 2, 200)
        found = regression_intervals(actual, predicted, seed=trial)
        low, high = found["test_rmse_interval"]
        covered["rmse"] += low <= 2.0 <= high
        low, high = found["test_mae_interval"]
        covered["mae"] += low <= 2 * math.sqrt(2 / math.pi) <= high
    assert 168 <= covered["rmse"] <= 200 and 168 <= covered["mae"] <= 200


def test_the_interval_holds_the_score_and_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for num_rows in (100, 1600):
        actual = rng.normal(0, 5, num_rows)
        predicted = actual + rng.normal(0, 2, num_rows)
        found = regression_intervals(actual, predicted)
        rmse = float(np.sqrt(((predicted - actual) ** 2).mean()))
        r2 = 1 - ((predicted - actual) ** 2).mean() / actual.var()
        assert found["test_rmse_interval"][0] < rmse < found["test_rmse_interval"][1]
        assert found["test_r2_interval"][0] < r2 < found["test_r2_interval"][1]
        widths.append(np.diff(found["test_rmse_interval"])[0])
    assert 2.5 < widths[0] / widths[1] < 6  # 16x the rows: about 4x narrower (1 / sqrt(n))


def test_perfect_predictions_have_a_zero_width_interval() -> None:
    actual = np.arange(20.0)
    found = regression_intervals(actual, actual)
    assert found["test_rmse_interval"] == [0.0, 0.0] and found["test_r2_interval"] == [1.0, 1.0]
    assert regression_intervals(actual[:3], actual[:3]) == {}  # too few rows: no interval


def test_the_paired_difference_to_the_linear_model_excludes_0_only_for_a_real_gap() -> None:
    rng = np.random.default_rng(2)
    actual = rng.normal(0, 5, 300)
    hard = rng.normal(0, 3, 300)  # the rows' shared difficulty: cancels when paired
    linear = actual + hard + rng.normal(0, 1, 300)
    same = linear_difference(actual, actual + hard + rng.normal(0, 1, 300), linear)
    low, high = same[LINEAR_DIFFERENCE_INTERVAL]
    assert low < 0 < high and low < same[LINEAR_DIFFERENCE] < high
    better = linear_difference(actual, actual + 0.5 * hard, linear)
    assert better[LINEAR_DIFFERENCE_INTERVAL][1] < 0  # clearly below the line's RMSE


def test_the_report_shows_each_interval_under_its_score() -> None:
    test = {"test_rmse": 3181.0, "test_rmse_interval": [2900.0, 3450.0], "test_mae": 2649.0,
            "test_linear_rmse": 2013.0, LINEAR_DIFFERENCE: 1168.0,
            LINEAR_DIFFERENCE_INTERVAL: [950.0, 1400.0]}
    rows = dict(score_table(test))
    assert list(rows)[:2] == ["test RMSE", "test RMSE, 95% interval"]
    assert rows["test RMSE, 95% interval"].startswith("2900 – 3450 (bootstrap over the test")
    label = "test RMSE minus the linear model's (below 0: the network is better)"
    assert rows[f"{label}, 95% interval"].startswith("950 – 1400 (paired bootstrap")
    assert "test MAE, 95% interval" not in rows  # no bounds recorded, no row


def test_the_sum_ratio_is_named_with_its_interval_in_the_report() -> None:
    """review s14 VE4: it showed as ('test_sum_ratio', '0.9412'), raw key and no interval,
    and 'test sum ratio 0.9412' in the verdict line."""
    from trainwise.reporting.scores import score_lines
    from trainwise.train.regression_predictions import SUM_RATIO, SUM_RATIO_INTERVAL

    test = {"test_rmse": 3181.0, SUM_RATIO: 0.9412, SUM_RATIO_INTERVAL: [0.91, 0.97]}
    rows = dict(score_table(test))
    label = "sum of test predictions / sum of actual values"
    [named] = [k for k in rows if k.startswith(label) and "interval" not in k]
    assert rows[named] == "0.9412" and SUM_RATIO not in rows
    assert rows[f"{named}, 95% interval"].startswith("0.91 – 0.97 (bootstrap over the test")
    assert any(line.startswith(label) for line in score_lines(test))


def test_an_interval_with_a_negative_end_reads_as_a_range() -> None:
    """Audit s14 R9: '95% interval -377.8-377' read as a range from -377.8 to -377."""
    from trainwise.amounts import amount
    from trainwise.train.regression_intervals import interval_text

    assert interval_text([-377.8, 377.0], amount) == f"95% interval {amount(-377.8)} to 377"
    assert interval_text([-500.0, -12.5], amount).endswith(f"{amount(-500.0)} to -12.5")
    assert interval_text(None, amount) == ""
