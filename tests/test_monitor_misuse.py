"""Rules on how a loop calls the Monitor (monitor_misuse.py), on the audit's own numbers."""

from __future__ import annotations

import numpy as np

from trainwise.train.monitor_misuse import scaled_loss

# audit s14 G6: SGD (momentum 0.9) at lr 1.0, epoch 1's 32 step losses, the loss climbing
HIGH_LR_EPOCH_1 = [1.1, 1.0, 1.1, 1.0, 0.4, 0.2, 0.6, 1.1, 1.4, 1.2, 3.0, 2.3, 0.8, 0.9, 2.9,
                   1.2, 1.1, 4.2, 6.0, 6.4, 7.8, 11.7, 6.6, 3.0, 5.1, 1.2, 24.7, 12.5, 24.2,
                   40.2, 35.1, 300.0]


def _epoch(losses: list[float], val_loss: float) -> dict:
    return {"kind": "epoch", "epoch": 1, "train_loss": sum(losses) / len(losses),
            "val_loss": val_loss}


def test_a_loss_that_rose_within_epoch_1_is_not_called_scaled():
    row = _epoch(HIGH_LR_EPOCH_1, 81.9)
    assert round(row["train_loss"], 2) == 15.94  # 5.1x below validation: the old warning
    assert scaled_loss(row, 1, HIGH_LR_EPOCH_1) is None


def test_a_loss_divided_by_k_still_is():
    # the same shape of a healthy fall, divided by 4 (accumulation without accumulation=K)
    losses = [(1.1 - 0.02 * i) / 4 for i in range(32)]
    found = scaled_loss(_epoch(losses, 0.85), 1, losses)
    assert found is not None and found.code == "monitor_loss_scaled"
    assert found.evidence["ratio"] == round(0.85 / (sum(losses) / 32), 2)


def _steps(norms: list[float]) -> list[dict]:
    return [{"kind": "step", "step": i + 1, "loss": 1.0, "grad_norm": g}
            for i, g in enumerate(norms)]


def test_gradient_norms_pinned_at_a_clip_threshold_are_said():
    from trainwise.train.monitor_misuse import missing_signals

    # audit s14 G12: clip_grad_norm_(..., 0.05) before monitor.step; what it leaves is
    # 0.05 x n / (n + 1e-6) for a norm n above 0.05, 1 of 30 steps below the threshold
    pinned = [0.05 * n / (n + 1e-6) for n in np.linspace(0.06, 3.0, 29)] + [0.03]
    history = [*_steps(pinned), {"kind": "epoch", "epoch": 1, "val_loss": 1.0}]
    (found,) = missing_signals(history, [])
    assert found.code == "monitor_clipped_norms" and found.evidence["pinned_steps"] == 29
    assert "monitor.step(loss, model, optimizer) right after loss.backward()" in found.fix
    # unclipped norms that vary like a real run's, or too few steps: nothing to say
    varied = [*_steps(list(np.linspace(0.04, 0.06, 30))), history[-1]]
    assert missing_signals(varied, []) == []
    assert missing_signals([*_steps(pinned[:19]), history[-1]], []) == []


def test_monitor_fixes_name_code_not_run_settings_or_stages():
    """Audit s14 G15a/c, C11: an own loop's NaN fix said run.precision = "bf16-mixed", and its
    still_improving fix "raise more epochs in your loop ... The evaluate stage judges ..."."""
    import math

    from trainwise.train.diagnose_loss import rule_divergence
    from trainwise.train.diagnose_unfinished import rule_still_improving
    from trainwise.train.loop_terms import for_own_loop

    falling = [{"kind": "epoch", "epoch": e + 1, "step": 10 * (e + 1), "val_loss": v}
               for e, v in enumerate([1.11, 1.078, 1.06, 1.015, 0.9905])]
    (still,) = rule_still_improving(falling)
    fix = for_own_loop(still).fix
    assert fix.startswith("Train for longer: run more epochs in your loop")
    assert "evaluate stage" not in fix and "A test score now would judge" in fix
    steps = [{"kind": "step", "step": s, "loss": 1.0 - 0.001 * s, "lr": 1e-3}
             for s in range(1, 80)] + [{"kind": "step", "step": 80, "loss": math.nan}]
    (fault,) = rule_divergence(steps)
    assert fault.evidence["cause"] == "numerical_fault"
    fix = for_own_loop(fault).fix
    assert "run.precision" not in fix
    assert "in place of float16 use torch.autocast(device_type, dtype=torch.bfloat16)" in fix


def test_a_flat_noisy_epoch_divided_by_k_keeps_its_warning():
    # review s14 VT4: fine-tuning a converged model, the loss / 4 on a flat epoch whose noise
    # put the last quarter's median a little above the first's: silenced in 103 of 200 seeds
    rng = np.random.default_rng(0)
    for _ in range(20):
        losses = list(0.5 / 4 * (1 + 0.2 * rng.standard_normal(32)))
        found = scaled_loss(_epoch(losses, 0.5), 1, losses)
        assert found is not None and found.code == "monitor_loss_scaled"
    drifted = [0.5 / 4 * (1 + 0.01 * i) for i in range(32)]  # 30% up, still 3.5x below val
    assert scaled_loss(_epoch(drifted, 0.5), 1, drifted) is not None
