"""Audit s15 (live diagnosis) B2, B5, B10: the cause that leads when two rules fire together."""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from run_words import diagnose
from test_diagnose import _epoch_t, _noise, lr_steady_but_slow, rows_from
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_capacity import DROPOUT_KEY
from trainwise.train.diagnose_common import PLAN_KEY, History, TrainingPlan
from trainwise.train.loop import fit
from trainwise.train.user_monitor import Monitor


# B2: lr 100x too low read as squashed outputs --------------------------------------------------
def test_a_loss_still_falling_steadily_leads_over_underconfidence_below_the_squash_cap():
    """lr far too low: accuracy climbs to 0.7 while the confidence stays at 0.15, under the
    0.23 a softmax before the loss allows for 10 classes. Both rules fire; the lr leads and
    "remove a softmax" (which the model does not have) is not the verdict."""
    curves = lr_steady_but_slow()
    curves.val_accuracy = 0.1 + 0.6 * _epoch_t()
    curves.val_confidence = np.full(len(curves.val_loss), 0.15)
    history = rows_from(curves, with_classes=True)
    for row in history:
        if row["kind"] == "epoch":  # 400 rows between 0.10 and 0.20: none above the cap
            row["val_confidence_hist"] = [0, 0, 250, 150] + [0] * 16
    rows = History(history)
    assert [f.code for f in RULES["lr_too_low"](rows)] == ["lr_too_low"]
    [under] = RULES["underconfidence"](rows)
    assert under.evidence["outputs_squashed"] is True
    found = diagnose(history)
    assert [f.code for f in found] == ["lr_too_low"]
    assert found[0].evidence["also_seen"] == ["underconfidence"]


# B5: dropout 0.9 read as too low an lr, then as healthy ----------------------------------------
def _held_up_by_dropout(level: bool = False) -> list[dict]:
    """The training loss (epoch means) 25% above the validation loss every epoch, both far above
    zero; `level`: flat at the end (a long run), else still falling slowly (lr_too_low)."""
    curves = lr_steady_but_slow()
    if level:
        t = np.arange(len(curves.loss)) / len(curves.loss)
        curves.loss = (1.5 + 0.8 * np.exp(-30 * t)) * _noise(np.random.default_rng(5),
                                                             len(t), 0.02)
    history = rows_from(curves, with_classes=True)
    for row in history:
        if row["kind"] == "epoch":
            row["val_loss"] = row["train_loss"] / 1.25
    return history


def test_a_training_loss_above_validation_is_regularisation_not_a_low_lr():
    history = _held_up_by_dropout()
    assert [f.code for f in RULES["lr_too_low"](History(history))] == ["lr_too_low"]
    found = diagnose(history)
    assert found[0].code == "heavy_regularisation" and found[0].severity is Severity.WARNING
    assert "lr_too_low" in found[0].evidence["also_seen"]
    assert "lr_too_low" not in [f.code for f in found]
    assert found[0].evidence["epochs_above"] == found[0].evidence["num_epochs"] == 30
    assert abs(found[0].evidence["gap"] - 0.25) < 1e-3  # 1 / 0.8 - 1
    assert "Lower the dropout in the model to 0.1-0.3" in found[0].fix


def test_a_long_run_held_up_by_dropout_is_not_called_healthy():
    codes = [f.code for f in diagnose(_held_up_by_dropout(level=True))]
    assert codes[0] == "heavy_regularisation" and "healthy" not in codes


def test_the_fix_names_the_config_dropout_of_a_built_in_baseline():
    [found] = diagnose(_held_up_by_dropout(), plan=TrainingPlan(dropout=0.9, weight_decay=0.01))
    assert found.fix.startswith("Lower model.dropout (now 0.9) to 0.1-0.3 (model stage")


def test_training_below_validation_or_near_zero_is_not_regularisation():
    history = _held_up_by_dropout(level=True)
    for row in history:
        if row["kind"] == "epoch":
            row["val_loss"] = row["train_loss"] * 1.05  # the usual order
    assert RULES["heavy_regularisation"](History(history)) == []
    history = _held_up_by_dropout(level=True)
    for row in history:
        if row["kind"] == "step" and row["step"] > 150:
            row["loss"] = 0.1  # 4% of the start: the model fits its data
        if row["kind"] == "epoch" and row["epoch"] > 5:
            row["train_loss"], row["val_loss"] = 0.1, 0.08
    assert RULES["heavy_regularisation"](History(history)) == []
    history = _held_up_by_dropout(level=True)
    for row in history:  # noise on the training inputs (audit s15 c18): train 50% above a
        if row["kind"] == "epoch":  # validation loss at 24% of the start, 0.55
            row["val_loss"] = 0.55
            row["train_loss"] = 0.825
    assert RULES["heavy_regularisation"](History(history)) == []


def _tiny_fit(dropout: float) -> list[dict]:
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 2)]
    model = nn.Sequential(*layers)
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    state = fit(model, loader, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=2)
    return [row for row in state.history if row.get("kind") == "epoch"]


def test_fit_epoch_rows_name_heavy_dropout_layers_and_only_those():
    assert all(row[DROPOUT_KEY] == {"2": 0.9} for row in _tiny_fit(0.9))
    assert all(DROPOUT_KEY not in row for row in _tiny_fit(0.1))


def test_the_fix_names_the_layers_a_fit_or_monitor_row_carries():
    history = _held_up_by_dropout()
    for row in history:
        if row["kind"] == "epoch":
            row[DROPOUT_KEY] = {"encoder.drop": 0.9}
    found = diagnose(history)[0]
    assert found.fix.startswith("Lower the dropout of layer 'encoder.drop' (p = 0.9) to 0.1-0.3")
    assert found.evidence["dropout_layers"] == {"encoder.drop": 0.9}


def test_a_monitor_epoch_row_names_heavy_dropout():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.7), nn.Linear(8, 2))
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    monitor = Monitor(None, console=False)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    monitor.step(loss, model)
    row = monitor.evaluate(model, DataLoader(TensorDataset(x, y), batch_size=16),
                           nn.CrossEntropyLoss())
    assert row[DROPOUT_KEY] == {"1": 0.7}


# B10 (and B6's second half): class weights on balanced classes; run keys in a loop's fix --------
BALANCED_MISS = {"rows": [50, 50, 50, 50], "right": [40, 35, 0, 45],
                 "predicted": [70, 60, 0, 70]}
RARE_MISS = {"rows": [150, 150, 150, 6], "right": [140, 135, 140, 0],
             "predicted": [150, 160, 146, 0]}


def _too_small(counts: dict, plan: TrainingPlan | None = None, val_loss: float = 1.06
               ) -> list[dict]:
    """A width-2 MLP on 4 classes (audit s15 c07): both losses level near 1.0, 12 epochs."""
    rows: list[dict] = []
    for epoch in range(12):
        train = 1.0 + 0.4 * np.exp(-epoch)
        rows.append({"kind": "step", "step": 10 * epoch + 1, "epoch": epoch, "loss": train})
        rows.append({"kind": "epoch", "epoch": epoch, "step": 10 * (epoch + 1),
                     "train_loss": train, "val_loss": val_loss * train - 1e-4 * epoch,
                     "val_accuracy": 0.6, "val_balanced_accuracy": 0.6,
                     "val_class_counts": counts})
    return rows + ([] if plan is None else [{"kind": "meta", PLAN_KEY: plan}])


RUN = TrainingPlan(weight_decay=0.01)  # trainwise run always passes its weight decay


def test_a_class_missed_on_balanced_classes_points_to_the_model_size_not_class_weights():
    found = diagnose(_too_small(BALANCED_MISS, RUN), num_classes=4)
    # review s15 VT2: no capacity note beside it, which repeated "Grow the model" word for word
    assert [f.code for f in found] == ["missed_classes"]
    assert found[0].fix.count("Grow the model one step") == 1
    assert "class_weights" not in found[0].fix
    assert "so class weights would change little" in found[0].fix
    assert "Grow the model one step (model stage: double model.width" in found[0].fix


def test_a_class_rare_in_training_still_gets_class_weights():
    plan = TrainingPlan(weight_decay=0.01, train_class_counts=(600, 600, 24, 600))
    [found] = [f for f in diagnose(_too_small(BALANCED_MISS, plan), num_classes=4)
               if f.code == "missed_classes"]
    assert found.fix.startswith('Set train.class_weights = "balanced" (train stage)')
    # without training counts (fit, a Monitor) the validation counts say the class is rare
    [found] = [f for f in diagnose(_too_small(RARE_MISS), num_classes=4)
               if f.code == "missed_classes"]
    assert found.fix.startswith("Weigh the classes in the loss (train stage: "
                                "nn.CrossEntropyLoss(weight=w)")


def test_a_loop_is_told_what_its_code_does_not_the_run_keys():
    """fit and a Monitor (no TrainingPlan): no train.lr, train.batch_size or class_weights key
    in the fix, also when the model did not learn (audit s15 B6: a loss at ln 4)."""
    for history in (_too_small(BALANCED_MISS), _too_small(BALANCED_MISS, val_loss=1.4),
                    _too_small(RARE_MISS, val_loss=1.4)):
        [found] = [f for f in diagnose(history, num_classes=4) if f.code == "missed_classes"]
        assert not re.search(r"\btrain\.[a-z_]+", found.fix), found.fix
    assert found.fix.startswith("The model did not learn: its best validation loss 1.4 ")
    assert "trainwise.find_lr(model, loss_fn" in found.fix
    run = [f for f in diagnose(_too_small(RARE_MISS, RUN, val_loss=1.4), num_classes=4)
           if f.code == "missed_classes"]
    assert "train.batch_size" in run[0].fix and "train.lr" in run[0].fix


def test_a_missed_rare_class_gets_class_weights_and_no_grow_the_model_note_beside():
    # review s15 VT2: the capacity note ran beside it and said "Grow the model one step"
    for plan in (RUN, None):
        found = diagnose(_too_small(RARE_MISS, plan), num_classes=4)
        assert [f.code for f in found] == ["missed_classes"], [f.code for f in found]
        assert found[0].evidence["classes_rare"] is True
        assert "Grow the model" not in found[0].fix


def test_heavy_dropout_explains_a_missed_class_that_is_not_rare():
    # review s15 VT3: dropout 0.9 and a balanced class at recall 0: "lower the dropout" and
    # missed_classes' "the model is too small, grow it" were two opposite causes
    rows = _held_up_by_dropout(level=True)
    for row in rows:
        if row["kind"] == "epoch":
            row.update(val_class_counts=BALANCED_MISS, val_accuracy=0.6,
                       val_balanced_accuracy=0.6)
    found = [f for f in diagnose(rows, num_classes=4) if f.severity is not Severity.INFO]
    assert [f.code for f in found] == ["heavy_regularisation"], [f.code for f in found]
    assert "missed_classes" in found[0].evidence["also_seen"]
    assert "Grow the model" not in found[0].fix


def test_the_diagnosis_rules_stay_pure_no_torch_and_no_check_stage_import():
    # review s15 VT10: diagnose_capacity imported torch and checks/initial's private helper;
    # DESIGN §3: analysis is pure (history rows in, Findings out)
    import ast
    import pathlib

    import trainwise.train as train
    for path in sorted(pathlib.Path(train.__file__).parent.glob("diagnose*.py")):
        tree = ast.parse(path.read_text())
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names]
        names += [node.module or "" for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "torch"
                    or n.startswith("trainwise.checks")], (path.name, names)


def test_a_loops_class_weights_text_is_the_one_loop_terms_rewrites_to():
    # review s15 VT8 (in part): missed_classes' loop text restated loop_terms' class weights
    from trainwise.train.loop_terms import CLASS_WEIGHTS_CODE, in_loop_terms
    (found,) = diagnose(_too_small(RARE_MISS), num_classes=4)
    assert CLASS_WEIGHTS_CODE in found.fix
    assert CLASS_WEIGHTS_CODE in in_loop_terms('train.class_weights = "balanced" (train stage)')


def test_a_class_missed_on_validation_that_differs_from_training_is_the_shifts_symptom():
    # audit s15 case c09 (left beside the B9 fix): "Validation differs from training" and
    # missed_classes' "the model did not learn: revisit the lr" on one run
    from trainwise.findings import warning
    from trainwise.train.diagnose import _fold_explained

    missed = warning("train", "missed_classes", "finds no validation row of class '2'", "lr")
    shift = warning("train", "overfitting", "Validation differs from training: ...", "split",
                    validation_differs=True)
    kept = _fold_explained([shift, missed])
    assert [f.code for f in kept] == ["overfitting"]
    assert kept[0].evidence["also_seen"] == ["missed_classes"]
    # overfitting on validation drawn like training leaves a missed class its own finding
    plain = warning("train", "overfitting", "Overfitting: ...", "stop early",
                    validation_differs=False)
    assert [f.code for f in _fold_explained([plain, missed])] == ["overfitting",
                                                                   "missed_classes"]
