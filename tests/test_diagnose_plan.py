"""What the diagnosis learns from the training plan (diagnose(plan=...)): the source of the
lr and the schedule, which the history rows cannot show.

From a user audit: a run with train.lr set was told to rerun a range test that never ran and
to add the warm-up its one-cycle schedule already had.
"""

from __future__ import annotations

from test_diagnose import (
    build,
    diverged,
    healthy_exponential,
    loss_explodes,
    lr_tiny_flat,
    recipe_plan,
)
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_common import TrainingPlan


def _with_plan(history: list[dict], **changes) -> list[dict]:
    return [row for row in history if row.get("kind") != "meta"] + [recipe_plan(**changes)]


def test_an_lr_set_in_the_config_is_named_instead_of_the_range_test():
    explodes = _with_plan(build(loss_explodes), lr_from_config=5.0)
    (finding,) = [f for f in diagnose(explodes) if f.code == "loss_exploding"]
    assert 'train.lr = 5 was set in the config' in finding.fix
    assert 'set train.lr = "auto" to measure it' in finding.fix
    assert "range test's" not in finding.fix
    slow = _with_plan(build(lr_tiny_flat), lr_from_config=1e-6)
    (finding,) = [f for f in diagnose(slow) if f.code == "lr_too_low"]
    assert "train.lr = 1e-06 was set in the config" in finding.fix and "raise it" in finding.fix
    assert "rerun the range test" not in finding.fix
    (finding,) = RULES["divergence"](_with_plan(build(diverged), lr_from_config=0.5))
    assert "train.lr = 0.5 was set in the config" in finding.fix


def test_the_range_test_stays_the_advice_when_it_chose_the_lr():
    (finding,) = RULES["loss_exploding"](_with_plan(build(loss_explodes)))
    assert "range test's steepest descent" in finding.fix
    (finding,) = RULES["lr_too_low"](build(lr_tiny_flat))  # no plan: as before
    assert "rerun the range test and take a larger value" in finding.fix


def test_no_warm_up_is_suggested_to_a_schedule_that_warms_up():
    # the plan says so (one-cycle) although the lr rows are constant
    (finding,) = RULES["loss_exploding"](_with_plan(build(loss_explodes), warmup=True))
    assert "warm-up" not in finding.fix and "train.grad_clip" in finding.fix
    (finding,) = RULES["loss_exploding"](_with_plan(build(loss_explodes), warmup=False))
    assert "add a warm-up" in finding.fix
    (finding,) = RULES["loss_exploding"](build(loss_explodes))  # no plan, constant lr rows
    assert "add a warm-up" in finding.fix
    spiky = build(healthy_exponential)
    spiky[300]["grad_norm"] *= 60
    (finding,) = RULES["gradient_spike"](_with_plan(spiky, warmup=True))
    assert "warm-up" not in finding.fix
    (finding,) = RULES["gradient_spike"](spiky)
    assert "add a warm-up" in finding.fix


def test_an_empty_plan_changes_nothing():
    history = build(loss_explodes)
    assert diagnose(history) == diagnose(history, plan=TrainingPlan())
