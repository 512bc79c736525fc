"""A NaN with no rise before it is a numerical fault, not divergence (audit s12 L7)."""

import json
import math
from types import SimpleNamespace

import numpy as np

from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_common import TrainingPlan
from trainwise.train.diagnose_loss import rule_divergence
from trainwise.training_setup import nonfinite_finding

NAN_AT, STOP_AT = 70, 75  # the loop notices at its next check (log_every), 5 steps on


def _history(rise: bool) -> list[dict]:
    """80 steps of a healthy run (loss falling to ~0.1, gradient norm ~0.3, lr decaying), NaN
    from step 70 to 75 where the loop stopped; `rise`: the 15 steps before the NaN climb
    x55 (exp(4)), as a too-high lr makes them."""
    rng = np.random.default_rng(0)
    steps = np.arange(1, STOP_AT + 1)
    loss = 2.3 * np.exp(-steps / 15) + 0.1 + 0.02 * rng.standard_normal(len(steps))
    grad = 0.3 + 0.05 * rng.standard_normal(len(steps))
    lr = np.linspace(0.01, 0.004, len(steps))  # past the one-cycle peak: falling
    if rise:
        climb = np.exp(np.linspace(0, 4, 15))
        loss[NAN_AT - 16:NAN_AT - 1] *= climb
        grad[NAN_AT - 16:NAN_AT - 1] *= climb
    rows = [{"kind": "step", "step": int(s), "epoch": 1 + (int(s) - 1) // 11,
             "loss": float(v), "grad_norm": float(g), "lr": float(r)}
            for s, v, g, r in zip(steps, loss, grad, lr, strict=True)]
    for row in rows[NAN_AT - 1:]:
        row.update(loss=math.nan, grad_norm=math.nan)
    rows[NAN_AT - 1]["sample_indices"] = [3, 1, 4]
    return rows


def test_a_sudden_nan_is_a_numerical_fault_and_does_not_lead_with_the_lr():
    (found,) = rule_divergence(_history(rise=False))
    assert found.code == "divergence" and found.evidence["cause"] == "numerical_fault"
    assert found.message.startswith("A non-finite loss (nan) appeared at step 70 with no "
                                    "rise before it: a numerical fault (log/sqrt/division of "
                                    "0, an inf input, fp16 overflow) rather than a too-high lr")
    assert "Training diverged" not in found.message
    assert "detect_anomaly" in found.fix and "sample_indices" in found.fix
    assert "lower" not in found.fix.lower()  # was "... or lower it; clip gradients ..."
    # the 10 steps before against the 50 before them: both falling or flat
    assert found.evidence["loss_ratio"] < 1 and 0.7 < found.evidence["grad_norm_ratio"] < 1.3


def test_a_nan_after_a_rise_is_still_divergence_with_the_lr_advice():
    (found,) = rule_divergence(_history(rise=True))
    assert found.message.startswith("Training diverged: loss became nan at step 70.")
    assert "cause" not in found.evidence
    assert "Lower the learning rate" in found.fix


def _ctx(tmp_path, history):
    written = {}
    run = SimpleNamespace(write_json=lambda name, payload: written.update({name: payload}))
    ctx = SimpleNamespace(splits={"train": SimpleNamespace(rows=np.arange(100, 200))},
                          fabric=SimpleNamespace(is_global_zero=True), run=run,
                          config=SimpleNamespace(train=SimpleNamespace(log_every=10)),
                          history=history)
    return ctx, written


def test_the_recipe_finding_says_where_it_was_detected_and_where_it_stopped(tmp_path):
    nonfinite = {"step": NAN_AT, "epoch": 7, "batch_in_epoch": 3, "sample_indices": [3, 1, 4]}
    ctx, written = _ctx(tmp_path, _history(rise=False))
    found = nonfinite_finding(ctx, nonfinite, 66)
    assert "no rise before it: a numerical fault" in found.message
    # was "at step 70 (epoch 7); training stopped there" while 5 more steps ran
    assert ("Detected at step 75 (checked every train.log_every = 10 steps and at each "
            "epoch's end); training stopped there, after 5 more steps with non-finite "
            "values.") in found.message
    assert "(103, 101, 104) are in nonfinite_batch.json" in found.message
    assert "detect_anomaly" in found.fix and "lower" not in found.fix.lower()
    assert found.step == NAN_AT and written["nonfinite_batch.json"]["data_rows"] == [103, 101,
                                                                                   104]
    json.dumps(found.to_dict())  # findings.json can hold it


def test_the_recipe_finding_after_a_rise_keeps_the_divergence_advice(tmp_path):
    nonfinite = {"step": NAN_AT, "epoch": 7, "batch_in_epoch": 3, "sample_indices": [3, 1, 4]}
    history = [row for row in _history(rise=True) if row["step"] <= NAN_AT]  # stopped at once
    ctx, _ = _ctx(tmp_path, history)
    found = nonfinite_finding(ctx, nonfinite, 66)
    assert found.message.startswith("The loss or gradient became NaN/inf at step 70 (epoch "
                                    "7). Training stopped at that step.")
    assert found.fix.startswith("Lower the learning rate")
    assert "nonfinite_batch.json" in found.fix and "cause" not in found.evidence


def test_the_recipe_finding_after_a_rise_keeps_the_plans_lr_advice(tmp_path):
    """Review s12 VT2: the fix was rebuilt from ctx.history, which has no TrainingPlan, so a
    run with train.lr = 0.01 in its config was told to "rerun the range test" (none ran)."""
    nonfinite = {"step": NAN_AT, "epoch": 7, "batch_in_epoch": 3, "sample_indices": [3, 1, 4]}
    history = [row for row in _history(rise=True) if row["step"] <= NAN_AT]
    (diverged,) = [f for f in diagnose(history, plan=TrainingPlan(lr_from_config=0.01))
                   if f.code == "divergence"]
    ctx, _ = _ctx(tmp_path, history)
    found = nonfinite_finding(ctx, nonfinite, 66, diverged)
    assert found.fix.startswith("train.lr = 0.01 was set in the config, so no range test ran")
    assert "range test and take a smaller value" not in found.fix
    # the data advice once (was "look for extreme input values" and "... for extreme or
    # missing values" in one fix)
    assert found.fix.count("extreme") == 1
    assert found.fix.endswith("Inspect the batch's samples (nonfinite_batch.json), then start "
                              "a new run.")


def test_a_run_reports_one_nan_once(tmp_path):
    """The audit's run: a module whose output turns NaN at its 60th training forward gave two
    errors (the diagnosis's `divergence` and the recipe's `non_finite_loss`) for one event."""
    import torch
    from torch import nn

    import trainwise

    class NaNAt60(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.calls = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), 0

        def forward(self, x):
            self.calls += self.training
            out = self.net(x)
            return out * torch.nan if self.training and self.calls >= 60 else out

    result = trainwise.run({"data": {"source": "digits"}, "train": {"max_epochs": 7, "lr": 0.01},
                            "run": {"checks": False, "threads": 1, "out_dir": str(tmp_path)}},
                           model=NaNAt60(), report=False)
    errors = [f for f in result.findings if f.severity.value == "error"]
    assert [f.code for f in errors] == ["non_finite_loss"]
    assert "numerical fault" in errors[0].message and errors[0].step == 60


def _early(nan_at: int, rise: bool) -> list[dict]:
    """Audit s14 G8: the NaN of one bad batch at step 12, the loss falling (1.17 -> 1.07) at a
    constant lr; `rise`: the 4 steps before it climb x20 instead."""
    rows = [{"kind": "step", "step": s, "loss": 1.17 - 0.01 * (s - 1), "grad_norm": 0.5,
             "lr": 1e-3} for s in range(1, nan_at)]
    if rise:
        for row, factor in zip(rows[-4:], (2, 5, 10, 20), strict=True):
            row["loss"] *= factor
    rows.append({"kind": "step", "step": nan_at, "loss": math.nan, "grad_norm": math.nan,
                 "lr": 1e-3, "sample_indices": [7, 8]})
    return rows


def test_an_early_nan_on_a_falling_loss_is_a_numerical_fault_not_the_lr():
    (found,) = rule_divergence(_early(12, rise=False))
    assert found.evidence["cause"] == "numerical_fault" and found.evidence["early"] is True
    assert "while the loss was falling (1.17 at the start, 1.07 just before)" in found.message
    assert "detect_anomaly" in found.fix and "Lower the learning rate" not in found.fix


def test_an_early_nan_after_a_rise_is_too_early_to_tell_and_checks_the_batch_first():
    (found,) = rule_divergence(_early(12, rise=True))
    assert found.evidence["cause"] == "unclear"
    assert "too early to tell whether the learning rate or one batch caused it" in found.message
    assert found.fix.startswith("First rule out the batch") and "detect_anomaly" in found.fix
    assert "lower the learning rate" in found.fix
    # from step 16 on the reference is long enough: the rise is divergence, lr first
    late = rule_divergence(_early(40, rise=True))[0]
    assert "cause" not in late.evidence and late.fix.startswith("Lower the learning rate")
    assert "and the loss had risen" in found.message


def test_an_early_nan_in_a_warm_up_says_the_lr_rose_not_the_loss():
    # review s14 VT5: the loss fell 1.17 -> 1.07 while a warm-up took the lr 1.8e-4 -> 9.8e-4
    rows = _early(12, rise=False)
    for row in rows:
        row["lr"] = 1e-4 * (1 + 0.8 * row["step"])
    (found,) = rule_divergence(rows)
    assert found.evidence["cause"] == "unclear"
    assert "and the learning rate was rising (a warm-up)" in found.message
    assert "the loss had risen" not in found.message
