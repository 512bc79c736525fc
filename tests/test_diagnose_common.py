"""The shared noise and number helpers of the diagnosis rules (review s11 VT8)."""

import math

import pytest

from trainwise.train.diagnose_common import diff_noise, finite_value


def test_diff_noise_is_the_robust_std_of_one_point_from_consecutive_differences():
    # differences +1, -1, +1, -1: median 0, MAD 1 -> 1.4826 / sqrt 2 = 1.0484
    assert diff_noise([0.0, 1.0, 0.0, 1.0, 0.0]) == pytest.approx(1.4826 / math.sqrt(2))
    # a straight line has no noise: every difference is the same
    assert diff_noise([5.0, 4.0, 3.0, 2.0]) == 0.0
    assert diff_noise([1.0]) == 0.0


def test_finite_value_takes_finite_numbers_only():
    row = {"a": 2, "b": float("nan"), "c": True, "d": "1.0", "e": 0.5}
    assert [finite_value(row, key) for key in "abcdef"] == [2.0, None, None, None, 0.5, None]
