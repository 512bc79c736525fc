"""What the diagnosis learns from the training plan (diagnose(plan=...)): the source of the
lr and the schedule, which the history rows cannot show; and, from the train stage, a
schedule that early stopping cut short (train/diagnose_schedule.py).

From a user audit: a run with train.lr set was told to rerun a range test that never ran and
to add the warm-up its one-cycle schedule already had; early stopping cut a one-cycle run at
epoch 23 of 40 with the lr at 66% of its peak and the run read "No training problem found".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

import trainwise
from run_words import diagnose
from test_diagnose import (
    CUT_EPOCHS,
    NUM_EPOCHS,
    NUM_STEPS,
    STEPS_PER_EPOCH,
    build,
    diverged,
    healthy_exponential,
    healthy_one_cycle_planned,
    loss_explodes,
    lr_tiny_flat,
    recipe_plan,
    schedule_cut_short,
)
from trainwise.findings import Severity
from trainwise.stages_training import patience_starts
from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_common import TrainingPlan
from trainwise.train.diagnose_schedule import after_early_stopping, schedule_cut


def _with_plan(history: list[dict], **changes) -> list[dict]:
    return [row for row in history if row.get("kind") != "meta"] + [recipe_plan(**changes)]


PLAN = TrainingPlan(schedule="onecycle", warmup=True, decays=True, planned_steps=NUM_STEPS,
                    planned_epochs=NUM_EPOCHS)


def _cut() -> list[dict]:
    return [row for row in build(schedule_cut_short) if row.get("kind") != "meta"]


def test_a_one_cycle_run_cut_before_annealing_gets_a_warning_instead_of_healthy():
    history = _cut()
    assert [f.code for f in diagnose(history, plan=PLAN)] == ["healthy"]  # as in the audit
    found = after_early_stopping(diagnose(history, plan=PLAN), history, PLAN)
    assert [f.code for f in found] == ["schedule_cut"]
    (finding,) = found
    assert finding.severity is Severity.WARNING
    assert finding.evidence["planned_steps"] == NUM_STEPS
    assert finding.evidence["stop_step"] == finding.step == CUT_EPOCHS * STEPS_PER_EPOCH
    assert 0.5 < finding.evidence["lr_share"] < 0.75
    assert "one-cycle schedule was cut before annealing" in finding.message
    assert "train.patience" in finding.fix and "train.max_epochs" in finding.fix


def test_the_cut_needs_a_decaying_schedule_stopped_short_with_a_high_lr():
    history = _cut()
    assert schedule_cut(history, TrainingPlan()) is None  # nothing known of the schedule
    assert schedule_cut(history, replace(PLAN, schedule="constant", decays=False)) is None
    assert schedule_cut(history, replace(PLAN, schedule="cosine")) is not None
    # a schedule of CUT_EPOCHS epochs: it ran to its end
    assert schedule_cut(history, replace(PLAN, planned_steps=CUT_EPOCHS * STEPS_PER_EPOCH)) \
        is None
    # stopped once the lr had fallen below half its peak: the annealing ran
    late = build(healthy_one_cycle_planned)
    lrs = np.array([r["lr"] for r in late if r.get("kind") == "step"])
    below = int(np.argmax((lrs < 0.45 * lrs.max()) & (np.arange(len(lrs)) > 300))) + 1
    assert schedule_cut([r for r in late if r.get("step", 0) <= below], PLAN) is None
    assert schedule_cut([r for r in late if r.get("step", 0) <= below - 60], PLAN) is not None


def test_a_validation_loss_at_zero_leaves_nothing_to_anneal_for():
    """The wine data: 14 validation rows, loss 0.0 from epoch 9, stopped at 19 of 40."""
    history = _cut()
    for row in history:
        if row.get("kind") == "epoch" and row["epoch"] >= 8:
            row["val_loss"] = 0.0
    assert schedule_cut(history, PLAN) is None


def test_the_train_stage_warns_only_when_early_stopping_cut_the_schedule(tmp_path):
    """End to end on a small noisy table at a fixed lr: patience 1 stops a cosine schedule
    early, its lr still high; patience 100 runs it out. (One-cycle counts patience only
    from where its lr falls below half its peak: patience_starts.)"""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    label = (x[:, 0] + x[:, 1] + rng.normal(0, 0.8, 300) > 0).astype(int)  # noisy: val > 0.3
    path = tmp_path / "noisy.csv"
    pd.DataFrame({**{f"x{i}": x[:, i] for i in range(4)}, "label": label}).to_csv(path)
    common = [f"data.source=\"{path}\"", "data.target=\"label\"", "train.lr=0.01",
              "train.max_epochs=40", "train.schedule=\"cosine\"", "run.checks=false",
              "run.threads=1",
              f"run.out_dir=\"{tmp_path}\""]
    codes = {}
    for patience in (1, 100):
        result = trainwise.run(overrides=[*common, f"train.patience={patience}"],
                               until="train", report=False)
        codes[patience] = [f.code for f in result.findings if f.stage == "train"]
    assert "schedule_cut" in codes[1] and "healthy" not in codes[1]
    assert "schedule_cut" not in codes[100]


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


def test_one_cycle_counts_patience_from_half_its_peak_on_the_way_down():
    steps_per_epoch, epochs = 10, 40
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0,
                                                   total_steps=epochs * steps_per_epoch)
    epoch_end = []  # the lr each epoch ends with, as torch's own schedule runs it
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            optimizer.step()
            schedule.step()
        epoch_end.append(optimizer.param_groups[0]["lr"])
    peak = max(range(epochs), key=epoch_end.__getitem__)
    below_half = next(e for e in range(peak, epochs) if epoch_end[e] < 0.5)
    assert patience_starts("onecycle", epochs) - below_half in (0, 1)  # 26 of 40
    assert patience_starts("cosine", epochs) == 0 == patience_starts("constant", epochs)


def test_a_run_the_time_budget_ended_is_told_to_raise_max_minutes_not_max_epochs():
    """review s11 VT7: under train.max_minutes, more max_epochs changes nothing."""
    (by_epochs,) = RULES["lr_too_low"](_with_plan(build(lr_tiny_flat)))
    (by_clock,) = RULES["lr_too_low"](_with_plan(build(lr_tiny_flat), time_budget_minutes=2.0))
    assert "raise train.max_epochs" in by_epochs.fix
    assert "raise train.max_minutes (now 2;" in by_clock.fix
    assert "raise train.max_epochs" not in by_clock.fix
