"""The overfitting fix reads the run's real early stopping (audit s12 L2): a run that had
early stopping is told to regularise, not to turn on the early stopping it already had."""

from __future__ import annotations

from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_common import PLAN_KEY, TrainingPlan

# the audit's pat2 run in shape: best at epoch 4, then 17 epochs of rise while training falls
VAL = [0.9, 0.4, 0.2, 0.1633] + [0.175 + 0.04 * i for i in range(17)]
TRAIN = [1.0 * 0.75 ** i for i in range(21)]


def history(plan: TrainingPlan | None) -> list[dict]:
    rows = [{"kind": "epoch", "epoch": i + 1, "step": 7 * (i + 1), "train_loss": t,
             "val_loss": v} for i, (t, v) in enumerate(zip(TRAIN, VAL, strict=True))]
    return rows + ([{"kind": "meta", PLAN_KEY: plan}] if plan is not None else [])


def test_a_run_with_early_stopping_is_told_to_regularise_with_its_own_patience():
    (finding,) = RULES["overfitting"](history(TrainingPlan(patience=2, patience_from=20)))
    assert finding.evidence["best_epoch"] == 4 and finding.evidence["epochs_past_best"] == 17
    assert "train.patience = 2, counted from epoch 20" in finding.fix
    assert "patience 3" not in finding.fix and "Keep the weights" not in finding.fix
    assert "weight decay or dropout" in finding.fix
    assert "17 epochs past the best because patience counts from epoch 20" in finding.fix


def test_a_run_that_stopped_on_time_gets_no_delay_sentence():
    (finding,) = RULES["overfitting"](history(TrainingPlan(patience=20, patience_from=1)))
    assert finding.fix.startswith("Early stopping (train.patience = 20) already tests the "
                                  "weights of epoch 4")
    assert "past the best because" not in finding.fix


def test_a_loop_of_ones_own_is_advised_early_stopping():
    (finding,) = RULES["overfitting"](history(None))
    assert finding.fix.startswith("Keep the weights of epoch 4 (early stopping")


def test_the_fix_names_the_runs_own_regularisation_keys_and_values():
    """Audit s13 P7: weight decay and dropout at 0 in the run's config, a patience as long as
    the run: the fix names train.weight_decay and model.dropout (model stage) with their
    values, and that early stopping never ended the run."""
    plan = TrainingPlan(patience=21, patience_from=1, planned_epochs=21, weight_decay=0.0,
                        dropout=0.0)
    (finding,) = RULES["overfitting"](history(plan))
    assert "raise train.weight_decay (now 0; 0.01-0.1 is usual)" in finding.fix
    assert "model.dropout (now 0; 0.1-0.3, model stage)" in finding.fix
    assert "(train stage)" not in finding.fix  # dropout is not a train-stage key
    assert "never ended it: 17 epochs ran past the best; lower train.patience" in finding.fix


def test_your_own_model_is_not_told_about_model_dropout():
    plan = TrainingPlan(patience=2, patience_from=1, planned_epochs=21, weight_decay=0.05)
    (finding,) = RULES["overfitting"](history(plan))
    assert "train.weight_decay (now 0.05" in finding.fix and "model.dropout" not in finding.fix
    assert "never ended it" not in finding.fix  # a patience of 2 could and did
