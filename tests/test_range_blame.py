"""lr_range_target_outliers: a range test broken at its start by extreme regression targets
names the data fix first (audit s14 R2)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainwise.findings import warning
from trainwise.tune.range_blame import broken_at_start, lead_with_data, target_outlier_blame


@dataclass
class _Curve:
    seed: int
    lrs: list[float]
    losses: list[float] = field(default_factory=list)
    diverged: bool = False


@dataclass
class _Result:
    curves: list[_Curve]
    suggestions: list[float]
    lr: float = 1.75e-6


RAMP = [1e-6 * 10 ** (6 * i / 99) for i in range(100)]  # the default 1e-6 .. 1, 100 steps


def test_a_seed_stopped_early_or_pointing_at_the_start_is_broken():
    stopped = _Curve(0, RAMP[:6], diverged=True)  # the audit's seed 0: 6 steps of 100
    late_stop = _Curve(1, RAMP[:30], diverged=True)  # 30% of the steps: a real divergence
    at_start = _Curve(2, RAMP)
    fine = _Curve(3, RAMP)
    # 10% of 6 decades is 0.6: 3.9e-6 (0.59 decades) is at the start, 4.1e-6 (0.61) not
    points = [1e-6, 1e-3, 3.9e-6, 4.1e-6]
    assert broken_at_start([stopped, late_stop, at_start, fine], points, 100, 1.0) == [0, 2]


def _result() -> _Result:
    losses = [0.1] * 5 + [3.0]  # one outlier batch: 30x the median
    return _Result([_Curve(0, RAMP[:6], losses, diverged=True)], [1.75e-6])


def test_the_warning_leads_with_the_log_transform_and_says_the_lr_is_none():
    (found,) = target_outlier_blame(_result(), 100, 1.0, num_extreme=3, log_set=False)
    assert found.code == "lr_range_target_outliers" and found.evidence["seeds"] == [0]
    assert "3 extreme values" in found.message and "30x its median" in found.message
    assert "point, 1.75e-06, is no learning rate to train with" in found.message
    assert found.fix.startswith("Fix the data first")
    assert "data.target_transform='\"log\"'" in found.fix


def test_no_warning_without_extreme_targets_nor_a_broken_seed():
    assert target_outlier_blame(_result(), 100, 1.0, num_extreme=0, log_set=False) == []
    healthy = _Result([_Curve(0, RAMP, [0.1] * 100)], [1e-3])
    assert target_outlier_blame(healthy, 100, 1.0, num_extreme=3, log_set=False) == []


def test_with_the_log_already_set_the_fix_does_not_advise_it_again():
    (found,) = target_outlier_blame(_result(), 100, 1.0, num_extreme=3, log_set=True)
    assert "--set data.target_transform" not in found.fix and "is set" in found.fix


def test_the_range_tests_own_warnings_name_the_data_first():
    blame = target_outlier_blame(_result(), 100, 1.0, num_extreme=3, log_set=False)
    flat = warning("tune", "lr_range_no_descent", "No fall.", "Check the model.")
    other = warning("tune", "lr_range_no_rise", "No rise.", "Raise end_lr.")
    led = lead_with_data([flat, other], blame)
    assert [f.code for f in led] == ["lr_range_target_outliers", "lr_range_no_descent",
                                     "lr_range_no_rise"]
    assert led[1].fix.startswith("First fix the extreme targets") and led[2].fix == other.fix
    assert lead_with_data([flat], []) == [flat]
    assert math.isfinite(blame[0].evidence["lr"])
