"""The test accuracy's 95% interval: Wilson's score interval, checked against the closed form
worked by hand, published values, statsmodels where installed, and where the report and the
console verdict show it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from trainwise.data.task import TaskData
from trainwise.recipe_verdict import _beside_accuracy
from trainwise.stages import Arrays
from trainwise.stages_evaluate import _test_groups, _test_message
from trainwise.train.intervals import (
    accuracy_interval,
    grouped_rows_caveat,
    split_accuracy_interval,
)

Z = 1.959963984540054  # the normal distribution's 97.5% quantile


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), Wilson (1927)."""
    p = k / n
    centre = p + Z * Z / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


@pytest.mark.parametrize("k, n", [(978, 1000), (36, 36), (0, 10), (5, 7), (1, 1), (92, 1000)])
def test_the_interval_is_wilsons_score_interval(k: int, n: int) -> None:
    interval = accuracy_interval(k, n)
    assert (interval.low, interval.high) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)
    assert (interval.num_correct, interval.num_rows) == (k, n)


def test_published_values() -> None:
    # mnist1d's 978 of 1000 and wine's 36 of 36 (audit s7 #15); 0 of 10: upper 0.2775, the
    # value tabulated for the Wilson interval (Brown, Cai & DasGupta 2001, and statsmodels)
    assert accuracy_interval(978, 1000).text() == "95% CI 96.7-98.5%, 1000 rows"
    assert accuracy_interval(36, 36).text() == "95% CI 90.4-100%, 36 rows"
    zero = accuracy_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.27753, abs=1e-5)
    assert accuracy_interval(0, 0) is None and accuracy_interval(5, 3) is None


def test_statsmodels_agrees_where_installed() -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for k, n in [(978, 1000), (36, 36), (0, 10), (5, 7)]:
        interval = accuracy_interval(k, n)
        assert (interval.low, interval.high) == pytest.approx(
            proportion.proportion_confint(k, n, alpha=0.05, method="wilson"), abs=1e-12)


def test_the_interval_is_read_off_the_confusion_matrix() -> None:
    row = {"test_accuracy": 0.95, "test_confusion": [[50, 2, 0], [3, 45, 0], [0, 0, 0]]}
    interval = split_accuracy_interval(row)
    assert (interval.num_correct, interval.num_rows) == (95, 100)
    assert split_accuracy_interval({"test_accuracy": 0.95}) is None  # a Monitor row
    assert split_accuracy_interval({"test_confusion": [[1, 2]]}) is None  # not square


def test_the_console_verdict_gives_the_interval_and_the_rows() -> None:
    test = {"test_accuracy": 0.978, "test_confusion": [[489, 11], [11, 489]],
            "test_baseline_accuracy": 0.5, "test_baseline_class": "0",
            "test_balanced_accuracy": 0.978}
    assert _beside_accuracy(test) == (" (95% CI 96.7-98.5%, 1000 rows; always '0': 50.0%), "
                                      "balanced accuracy 97.8%")
    assert _beside_accuracy({"test_accuracy": 0.9}) == ""  # nothing to set beside it


def test_balanced_accuracy_interval_is_wilson_for_one_class_and_covers_95_percent() -> None:
    """audit s9 I6: balanced accuracy, the mean of k recalls, gets a MOVER interval built
    from their Wilson limits. One class present: exactly Wilson. Two classes of very unequal
    size (500 rows at 99% recall, 12 at 90%): about 95% of simulated matrices' intervals hold
    the true 94.5%, where the textbook mean +- 1.96 sqrt(sum r(1-r)/n) / k holds it about 70%
    of the time (its width collapses whenever the small class's recall is 100%)."""
    import numpy as np

    from trainwise.train.intervals import balanced_accuracy_interval

    assert balanced_accuracy_interval([[7, 3], [0, 0]]) == pytest.approx(wilson_by_hand(7, 10))
    assert balanced_accuracy_interval([[0, 0], [0, 0]]) is None
    assert balanced_accuracy_interval(None) is None  # a row without a matrix
    low, high = balanced_accuracy_interval([[20, 0], [0, 3]])  # every recall 100%: a width
    assert high == 1.0 and 0.5 < low < 0.9
    rng = np.random.default_rng(0)
    truth, covered, draws = (0.99 + 0.9) / 2, 0, 400
    for big, small in zip(rng.binomial(500, 0.99, draws), rng.binomial(12, 0.9, draws),
                          strict=True):
        low, high = balanced_accuracy_interval([[big, 500 - big], [12 - small, small]])
        covered += low <= truth <= high
    assert 0.93 <= covered / draws <= 0.99


def test_few_groups_caveat_names_the_groups_and_stands_down_with_many() -> None:
    # audit s11 M10: 24 test rows from 6 subjects, and 20 rows from ONE subject
    assert "the 24 rows come from 6 groups" in grouped_rows_caveat(24, 6)
    assert "the 20 rows come from 1 group:" in grouped_rows_caveat(20, 1)
    assert "trainwise.kfold" in grouped_rows_caveat(20, 1)
    assert grouped_rows_caveat(24, None) == ""  # no groups
    assert grouped_rows_caveat(8, 8) == ""  # one row per group: independent rows
    assert grouped_rows_caveat(400, 40) == ""  # enough groups


def test_the_evaluate_line_and_the_verdict_carry_the_group_caveat() -> None:
    groups = np.repeat(np.arange(6), 20)  # ts_6groups.npz: 6 subjects x 20 rows
    test_rows = np.arange(100, 120)  # the audit's test part: the last subject only
    data = TaskData("t", "sequence", "classification", np.zeros((120, 1, 4), np.float32),
                    np.zeros(120, np.int64), class_names=["a", "b"], groups=groups)
    ctx = SimpleNamespace(data=data, splits={"test": Arrays(np.zeros((20, 1, 4)),
                                                            np.zeros(20), rows=test_rows)},
                          target_log=False, meta={})
    assert _test_groups(ctx) == 1
    row = {"test_accuracy": 1.0, "test_confusion": [[20, 0], [0, 0]], "test_groups": 1,
           "test_baseline_class": "a", "test_baseline_accuracy": 1.0,
           "test_balanced_accuracy": 1.0, "test_per_class": {"recall": [1.0, None],
                                                             "support": [20, 0]}}
    message = _test_message(ctx, row)
    assert "95% interval 83.9-100% (the 20 rows come from 1 group:" in message
    assert "95% CI 83.9-100%, 20 rows from 1 group: too narrow" in _beside_accuracy(row)


def test_the_reports_test_table_carries_the_group_caveat() -> None:
    from trainwise.reporting.scores import score_table

    row = {"test_accuracy": 1.0, "test_confusion": [[12, 0], [0, 12]], "test_groups": 6}
    cells = dict(score_table(row))
    assert "the 24 rows come from 6 groups" in cells["test accuracy, 95% interval"]
    assert cells["groups the test rows come from"] == "6"
    many = dict(score_table({**row, "test_groups": 24}))  # one row per group: no caveat
    assert "groups" not in many["test accuracy, 95% interval"]
