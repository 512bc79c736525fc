"""loss_exploding's words (user audits s15 B8 and M5): an explosion a scheduler's 100x lr jump
caused was sent to the range test, and one on the first update read "from 2.413 at step 1 to
9.046 at step 1"."""

from __future__ import annotations

import numpy as np

from trainwise.train.diagnose import RULES

# audit s15 M5's first 8 step losses (train.lr = 3.0, one-cycle warm-up from 0.12)
HILR_START = [2.413, 16.475, 9.046, 4.22, 2.69, 4.158, 3.077, 2.486]


def _steps(loss: np.ndarray, lrs: np.ndarray) -> list[dict]:
    return [{"kind": "step", "step": i + 1, "loss": float(v), "lr": float(lr)}
            for i, (v, lr) in enumerate(zip(loss, lrs, strict=True))]


def test_an_explosion_on_the_first_update_names_two_different_steps():
    loss = np.array(HILR_START + [3.0, 2.8] * 46)  # 100 steps, never back below the start
    lrs = np.linspace(0.12, 3.0, len(loss))
    (finding,) = RULES["loss_exploding"](_steps(loss, lrs))
    # by hand: 5-step medians, the first (mirrored) [9.046, 16.475, 2.413, 16.475, 9.046] is
    # 9.046 at step 1, the second [16.475, 2.413, 16.475, 9.046, 4.22] 9.046 at step 2
    assert "from 2.413 at step 1 to 9.046 at step 2" in finding.message
    assert finding.evidence["peak_step"] == 2


def _jumped(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Audit s15 B8's shape: lr 0.003 for 250 steps (the loss falls 1.4 -> 0.1), then 0.3."""
    rng = np.random.default_rng(seed)
    t = np.arange(400)
    loss = np.where(t < 250, 0.1 + 1.3 * np.exp(-t / 40), 1.4) * np.exp(rng.normal(0, .1, 400))
    return loss, np.where(t < 250, 3e-3, 0.3)


def test_an_explosion_after_the_schedule_raised_the_lr_names_the_jump_and_the_schedule():
    (finding,) = RULES["loss_exploding"](_steps(*_jumped()))
    assert "the learning rate rose 100x, from 0.003 at step 250 to 0.3 at step 251" \
        in finding.message
    assert finding.fix.startswith("Fix the schedule first (train stage)")
    assert finding.evidence["lr_jump_step"] == 251 and finding.evidence["lr_after"] == 0.3


def test_an_explosion_at_a_constant_lr_keeps_the_lr_advice():
    loss, _ = _jumped()
    (finding,) = RULES["loss_exploding"](_steps(loss, np.full(400, 3e-3)))
    assert finding.fix.startswith("Lower the learning rate") and "lr_jump_step" not in \
        finding.evidence
