"""A perfect held-out score is a warning to check for a leak (audit s8 T1), not "healthy";
a perfect score on a few dozen rows (the wine set) is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import trainwise
from run_words import diagnose
from trainwise.findings import Severity
from trainwise.train.diagnose_common import PLAN_KEY, TrainingPlan
from trainwise.train.diagnose_perfect import MIN_PERFECT_ROWS, held_out_too_good, rule_too_good


def history(val_accuracy: float = 1.0, val_loss: float = 0.0, val_rows: int | None = 240,
            leak_columns: tuple[str, ...] = (), **score) -> list[dict]:
    """Six epochs whose losses fall steadily; the last one scores `val_accuracy`."""
    rows = []
    for epoch in range(1, 7):
        step = 10 * epoch
        rows += [{"kind": "step", "step": step - i, "epoch": epoch, "loss": 2.0 / epoch,
                  "grad_norm": 1.0, "lr": 1e-3} for i in range(9, -1, -1)]
        last = epoch == 6
        rows.append({"kind": "epoch", "epoch": epoch, "step": step, "train_loss": 2.0 / epoch,
                     "val_loss": val_loss if last else 2.2 / epoch,
                     **({"val_accuracy": val_accuracy if last else 0.5 + 0.05 * epoch}
                        if not score else {}),
                     **(score if last else {})})
    plan = TrainingPlan(val_rows=val_rows, leak_columns=leak_columns)
    return rows + [{"kind": "meta", PLAN_KEY: plan}]


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_perfect_validation_on_many_rows_is_a_warning_not_healthy():
    found = diagnose(history(val_rows=MIN_PERFECT_ROWS))
    assert "healthy" not in codes(found)
    (warning,) = [f for f in found if f.code == "too_good"]
    assert warning.severity is Severity.WARNING
    assert "100.0%" in warning.message and "200 rows" in warning.message
    assert "duplicated across the splits" in warning.message  # the usual causes, named
    assert "trainwise audit" in warning.fix and "data stage" in warning.fix


def test_the_data_audits_leak_column_is_named_whatever_the_size():
    found = diagnose(history(val_rows=39, leak_columns=("outcome_flag",)))
    assert "healthy" not in codes(found)
    (warning,) = [f for f in found if f.code == "too_good"]
    assert "'outcome_flag'" in warning.message and "target_leak" in warning.message
    assert "drop 'outcome_flag'" in warning.fix
    assert warning.evidence["leak_columns"] == ["outcome_flag"]


@pytest.mark.parametrize("val_rows", [14, MIN_PERFECT_ROWS - 1, None])
def test_a_small_or_unknown_perfect_validation_part_stays_healthy(val_rows):
    # the wine set: 14 validation rows, loss 0.0 and 100% with no leak at all
    found = diagnose(history(val_rows=val_rows))
    assert codes(found)[0] == "healthy" and "too_good" not in codes(found)


def test_an_imperfect_score_does_not_fire():
    assert rule_too_good(history(val_accuracy=0.99, val_loss=0.01,
                                 leak_columns=("outcome_flag",))) == []


def test_regression_r2_near_one_fires_and_a_good_one_does_not():
    (warning,) = rule_too_good(history(val_rows=20, val_r2=0.9995))
    assert "R^2 0.9995" in warning.message
    assert rule_too_good(history(val_rows=500, val_r2=0.98)) == []


def test_a_perfect_test_counts_validation_rows_only_when_validation_was_perfect_too():
    epochs = history(val_rows=100)  # best epoch: 100% on 100 validation rows
    test_row = {"test_accuracy": 1.0, "test_balanced_accuracy": 1.0}
    (warning,) = held_out_too_good(test_row, 120, epochs, 100, ())
    assert warning.stage == "evaluate" and warning.severity is Severity.WARNING
    assert warning.evidence["held_out_perfect_rows"] == 220
    assert "Test accuracy 100.0% on 120 rows" in warning.message
    imperfect_val = history(val_accuracy=0.97, val_loss=0.1, val_rows=100)
    assert held_out_too_good(test_row, 120, imperfect_val, 100, ()) == []
    # wine: 36 test rows and 14 validation rows, all right
    assert held_out_too_good(test_row, 36, history(val_rows=14), 14, ()) == []
    assert held_out_too_good({"test_accuracy": 0.99}, 500, epochs, 100, ("leak",)) == []
    (named,) = held_out_too_good(test_row, 36, history(val_rows=14), 14, ("outcome_flag",))
    assert "'outcome_flag'" in named.message


def _table(path, with_copy: bool):
    rng = np.random.default_rng(0)
    n = 300
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(x1 + 0.5 * rng.normal(size=n) > 0, 1, 0)  # noisy: no honest 100%
    frame = pd.DataFrame({"x1": x1, "x2": x2, "label": label})
    if with_copy:
        frame["outcome_flag"] = label
    frame.to_csv(path, index=False)
    return path


QUICK = ["train.max_epochs=4", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "data.target=\"label\""]  # a given lr: no range test


@pytest.mark.parametrize("with_copy", [True, False])
def test_a_label_copy_column_is_named_at_train_and_test_and_a_normal_table_is_not(
        tmp_path, with_copy):
    path = _table(tmp_path / "table.csv", with_copy)
    # 12 epochs: at 4 the normal table's validation loss is still falling (still_improving)
    result = trainwise.run(overrides=[*QUICK, "train.max_epochs=12",
                                      f"run.out_dir=\"{tmp_path}\"",
                                      f"data.source=\"{path}\""], report=False)
    assert result.ok, result.verdict
    too_good = [f for f in result.findings if f.code == "too_good"]
    if not with_copy:
        assert too_good == [] and "healthy" in codes(result.findings)
        return
    assert "healthy" not in codes(result.findings)
    assert {f.stage for f in too_good} == {"train", "evaluate"}
    assert all("'outcome_flag'" in f.message and f.severity is Severity.WARNING
               for f in too_good)


def test_a_monitor_run_counts_its_validation_rows_from_the_class_counts():
    """Review s9 T10: a Monitor run has no recipe plan, so 100% on 1,000 validation rows was
    never called too good; its epoch rows' class counts give the row count."""
    import torch
    from torch import nn

    import trainwise

    y = torch.arange(1000) % 2
    outputs = torch.nn.functional.one_hot(y, 2).float() * 8
    monitor = trainwise.Monitor(None, console=False)
    for epoch in range(3):
        for step in range(5):
            monitor.step(torch.tensor(0.5 - 0.05 * step - 0.1 * epoch), lr=1e-3)
        monitor.end_epoch(outputs=outputs, targets=y, loss_fn=nn.CrossEntropyLoss())
    found = {f.code: f for f in monitor.close()}
    assert "too_good" in found and "on 1000 rows" in found["too_good"].message
    assert found["too_good"].evidence["val_rows"] == 1000
