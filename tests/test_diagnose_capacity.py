"""The capacity rule (METHOD.md §2: only then grow the model) on hand-made histories."""

from __future__ import annotations

import numpy as np

from trainwise.findings import Severity
from trainwise.train.diagnose_capacity import rule_capacity


def history(train: list[float], val: list[float], start: float = 0.69) -> list[dict]:
    steps = [{"kind": "step", "step": 1, "loss": start}, {"kind": "step", "step": 2,
                                                           "loss": start}]
    return steps + [{"kind": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train_loss": t,
                     "val_loss": v} for i, (t, v) in enumerate(zip(train, val, strict=True))]


LEVEL = [0.66, 0.62, 0.59, 0.575, 0.57, 0.566, 0.565, 0.564, 0.564, 0.563]


def test_level_close_and_far_above_zero_says_grow_the_model():
    [found] = rule_capacity(history(LEVEL, [v + 0.01 for v in LEVEL]))
    assert found.code == "capacity" and found.severity is Severity.INFO
    assert "model.width" in found.fix and "data set the limit" in found.fix
    # hand-computed: the last ceil(10/4) = 3 epochs fell (0.564 - 0.563) / 0.564
    assert found.evidence["late_epochs"] == 3
    assert np.isclose(found.evidence["late_drop"], (0.564 - 0.563) / 0.564, atol=1e-4)
    assert np.isclose(found.evidence["left_of_start"], 0.563 / 0.69, atol=1e-4)


def test_quiet_when_any_sign_says_the_size_is_not_the_limit():
    falling = [0.66 * 0.9 ** i for i in range(10)]  # still learning: train longer first
    assert rule_capacity(history(falling, [v + 0.01 for v in falling])) == []
    rising = [v + 0.01 + 0.02 * max(0, i - 5) for i, v in enumerate(LEVEL)]  # overfitting
    assert rule_capacity(history(LEVEL, rising)) == []
    gap = [v * 1.3 for v in LEVEL]  # validation 30% above training: a gap, not underfitting
    assert rule_capacity(history(LEVEL, gap)) == []
    near_zero = [0.05 * x for x in LEVEL]  # a model with room drives the loss toward zero
    assert rule_capacity(history(near_zero, near_zero)) == []
    assert rule_capacity(history(LEVEL[:4], LEVEL[:4])) == []  # too few epochs to judge


def test_diagnose_adds_it_to_a_sound_run_only():
    from trainwise.train.diagnose import diagnose

    level = history(LEVEL, [v + 0.01 for v in LEVEL])
    assert [f.code for f in diagnose(level)] == ["healthy", "capacity"]
    nan_step = [{"kind": "step", "step": 3, "loss": float("nan")}]  # a problem comes first
    assert "capacity" not in [f.code for f in diagnose(level + nan_step)]
