"""A run on a skewed positive target with data.target_transform = "log" (audit s14 R3, R4):
trained on the natural log, scored in the target's units, and its test result carries the
sum ratio and the median caveat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import trainwise
from trainwise.train.regression_predictions import SUM_RATIO


def test_a_log_target_run_says_its_log_and_the_sum_of_its_predictions(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    cost = np.exp(1.0 + x @ np.array([0.8, -0.5, 0.3]) + rng.normal(0, 0.6, 600))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "cost": cost})
    result = trainwise.run(data=frame, report=False, overrides=[
        'data.target="cost"', 'data.target_transform="log"', "train.max_epochs=3",
        "train.lr=0.01", "run.threads=1", "run.checks=false", 'split.group_column="none"',
        'split.time_column="none"', f'run.out_dir="{tmp_path}"'])
    assert result.ok, result.verdict
    test = result.test
    predictions = pd.read_csv(result.path / "test_predictions.csv")
    # the ratio is the file's own sums: the predictions in the target's units, not its log
    ratio = predictions["predicted"].sum() / predictions["actual"].sum()
    assert test[SUM_RATIO] == pytest.approx(ratio, rel=1e-9)
    caveat = [f for f in result.findings if f.code == "log_predicts_median"]
    assert len(caveat) == 1 and "the target's log," in caveat[0].message
    assert f"{ratio:.3f}" in caveat[0].message
    assert "trained on the target's log, scored in its units" in result.verdict or any(
        "trained on the target's log, scored in its units" in f.message
        for f in result.findings)
