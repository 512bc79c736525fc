"""Audit s15 K9: the range test's summary said "for a one-cycle schedule" under
train.schedule = "cosine" too: it names the schedule in use."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from trainwise.tune.lr_verdict import verdict


def _curve(seed: int) -> SimpleNamespace:
    lrs = np.geomspace(1e-5, 1.0, 60)
    x = np.log10(lrs)
    losses = 2.0 - 1.5 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -0.7, 5 * (x + 0.7), 0)
    return SimpleNamespace(lrs=list(lrs), losses=list(losses), seed=seed)


@pytest.mark.parametrize("schedule, said", [
    ("onecycle", "for a one-cycle schedule"), ("cosine", "for the cosine schedule"),
    ("constant", "read as a one-cycle peak (the lr stays constant here")])
def test_the_range_summary_names_the_schedule_in_use(schedule, said):
    (summary,) = [f for f in verdict([_curve(0), _curve(1)], "trainwise", schedule).findings
                  if f.code == "lr_range"]
    assert said in summary.message
    assert schedule == "onecycle" or "for a one-cycle schedule" not in summary.message
