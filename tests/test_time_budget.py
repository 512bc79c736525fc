"""train.max_minutes: training stops at the epoch end where another epoch would pass it."""

from types import SimpleNamespace

import trainwise
from trainwise.rundir import read_findings, read_history
from trainwise.train.time_budget import TimeBudget


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _epochs(budget, clock, seconds_each, count):
    state = SimpleNamespace(should_stop=False, stop_reason="")
    budget.on_fit_start()
    for epoch in range(1, count + 1):
        clock.now += seconds_each
        budget.on_epoch_end(state, {"epoch": epoch})
        if state.should_stop:
            return epoch, state
    return count, state


def test_stops_at_the_last_epoch_end_before_the_budget_and_says_how_many_fit():
    clock = FakeClock()
    budget = TimeBudget(1.0, clock=clock)  # 60 s; 25 s epochs: after 2 (50 s) a third passes
    stopped, state = _epochs(budget, clock, 25.0, 10)
    assert stopped == 2 and "train.max_minutes = 1" in state.stop_reason
    finding = budget.finding(max_epochs=10, schedule="onecycle")
    assert finding.severity.value == "warning" and finding.code == "time_budget"
    assert finding.evidence["epochs_that_fit"] == 2  # 60 // 25, by hand
    assert "train.max_epochs = 2" in finding.fix
    constant = budget.finding(max_epochs=10, schedule="constant")
    assert constant.severity.value == "info"  # nothing left unannealed at a constant lr


def test_a_run_that_fits_is_not_stopped_and_reports_nothing():
    clock = FakeClock()
    budget = TimeBudget(1.0, clock=clock)
    stopped, state = _epochs(budget, clock, 10.0, 5)  # 50 s of 60
    assert stopped == 5 and not state.should_stop
    assert budget.finding(max_epochs=5, schedule="onecycle") is None


def test_rank_zeros_decision_is_the_one_every_process_takes():
    clock = FakeClock()
    never = TimeBudget(0.01, clock=clock, agree=lambda mine: False)  # rank 0 says go on
    stopped, state = _epochs(never, clock, 30.0, 3)
    assert stopped == 3 and not state.should_stop


def test_the_recipe_honours_max_minutes_and_still_evaluates_the_best_weights(tmp_path):
    result = trainwise.run({"data": {"source": "digits"}}, overrides=[
        "train.max_epochs=4", "train.max_minutes=0.0001", "tune.num_steps=30",
        "tune.num_seeds=1", "tune.short_runs=false", "run.threads=1",
        f'run.out_dir="{tmp_path}"'], report=False)
    epochs = [row for row in read_history(result.path) if row["kind"] == "epoch"]
    assert len(epochs) == 1  # the first epoch alone already passes 0.006 s
    budget = [f for f in read_findings(result.path) if f.code == "time_budget"]
    assert len(budget) == 1 and budget[0].evidence["stop_epoch"] == 1
    assert result.test and result.test["test_accuracy"] > 0.5  # evaluated after the stop


def test_sub_second_epochs_are_shown_to_two_significant_digits():
    clock = FakeClock()
    budget = TimeBudget(0.001, clock=clock)  # 0.06 s; 0.025 s epochs: 2 fit
    stopped, state = _epochs(budget, clock, 0.025, 10)
    assert stopped == 2 and "another epoch at 0.025 s would pass it" in state.stop_reason
    finding = budget.finding(max_epochs=10, schedule="constant")
    assert "allows about 2 epoch(s) at 0.025 s each" in finding.message  # "0 s" before


def test_when_the_budget_ended_training_the_fixes_say_raise_max_minutes():
    """review s11 VT7: a run the clock stopped was told to raise max_epochs, which changes
    nothing (the clock stops it at the same epoch); every "train longer" fix names the budget."""
    from test_diagnose_gap import epochs
    from test_diagnose_unfinished import SHORT_TRAIN, SHORT_VAL
    from trainwise.train.diagnose import diagnose
    from trainwise.train.diagnose_common import TrainingPlan

    history = epochs(SHORT_TRAIN, SHORT_VAL)
    by_epochs = {f.code: f for f in diagnose(history, plan=TrainingPlan())}
    by_clock = {f.code: f for f in diagnose(history, plan=TrainingPlan(time_budget_minutes=1.5))}
    assert "raise train.max_epochs" in by_epochs["still_improving"].fix
    fix = by_clock["still_improving"].fix
    assert "raise train.max_minutes (now 1.5;" in fix and "raise train.max_epochs" not in fix
