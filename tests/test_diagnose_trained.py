"""A run on an already-trained model (audit s16 N11: a re-run notebook cell): a loss that
starts far below chance is not a plateau to fix by raising the lr, and a bump that stays far
below chance is not an explosion to fix by lowering it. The same curves at chance's level (or
with chance unknown) are the references: there the rules still speak."""

from __future__ import annotations

import math

import numpy as np

from trainwise.findings import Severity
from trainwise.train.diagnose import diagnose


def _history(losses: np.ndarray, val_loss: float) -> list[dict]:
    """10 step rows an epoch at lr 1e-2, each epoch closed by its row."""
    rows: list[dict] = []
    for epoch in range(1, len(losses) // 10 + 1):
        chunk = losses[(epoch - 1) * 10: epoch * 10]
        rows += [{"kind": "step", "step": (epoch - 1) * 10 + i + 1, "epoch": epoch,
                  "loss": float(loss), "lr": 1e-2, "grad_norm": 0.05}
                 for i, loss in enumerate(chunk)]
        rows.append({"kind": "epoch", "epoch": epoch, "step": epoch * 10,
                     "train_loss": float(chunk.mean()), "val_loss": val_loss})
    return rows


FLAT = 0.03 * (1 + 0.05 * np.sin(2.3 * np.arange(30)))  # 4.3% of ln 2, +-5% noise
BUMP = np.concatenate([[0.0055, 0.005, 0.006], np.linspace(0.01, 0.046, 6),
                       0.046 * (1 + 0.05 * np.sin(2.3 * np.arange(21)))])


def _said(found) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in found]


def test_a_flat_loss_far_below_chance_is_a_trained_model_not_a_plateau_to_fix():
    trained = diagnose(_history(FLAT, 0.03), num_classes=2)
    assert _said(trained) == [("plateau", Severity.INFO), ("healthy", Severity.INFO)]
    assert trained[0].evidence["already_trained"] is True
    assert "4.3% of chance (ln 2 = 0.693): the model was already trained" in trained[0].message
    assert "raise" not in trained[0].fix
    # the reference: the same curve at chance's level is a problem, fixed by a larger lr
    untrained = diagnose(_history(FLAT * math.log(2) / 0.03, math.log(2)), num_classes=2)
    assert _said(untrained) == [("plateau", Severity.WARNING)]
    assert "raise the learning rate" in untrained[0].fix


def test_a_bump_that_stays_far_below_chance_is_not_an_explosion():
    """0.0055 -> 0.046 and back: audit s16 N11's fresh AdamW on a converged model (6.6% of
    ln 2). One that stays up ended above its start: said, as a warning (review s16 VN1)."""
    settled = np.concatenate([BUMP[:12], 0.004 * (1 + 0.05 * np.sin(2.3 * np.arange(18)))])
    assert "loss_exploding" not in [f.code for f in diagnose(_history(settled, 0.03),
                                                             num_classes=2)]
    stayed = [f for f in diagnose(_history(BUMP, 0.03), num_classes=2)
              if f.code == "loss_exploding"]
    assert [f.severity for f in stayed] == [Severity.WARNING]
    assert "the model was already trained when this run started" in stayed[0].message
    # references: chance unknown (a regression, or no num_classes), and the bump at 100x
    assert "loss_exploding" in [f.code for f in diagnose(_history(BUMP, 0.03))]
    assert "loss_exploding" in [f.code for f in diagnose(_history(BUMP * 100, 3.0),
                                                         num_classes=2)]


def _logged_every_100(losses: np.ndarray) -> list[dict]:
    """The same rows numbered 100, 200, ...: a loop logging every 100th step, so its first
    row is not the model at initialisation."""
    rows = _history(losses, float(losses[-1]))
    for row in rows:
        row["step"] = row["step"] * 100
    return rows


def test_a_first_row_after_step_one_is_no_evidence_of_a_trained_model():
    """Review s16 VN1: a fresh 10-class model logged from step 100 is already below
    0.23 = 0.1 x ln 10 there; an lr blow-up back above its start is an error, and a flat
    curve is a plateau, as with chance unknown."""
    blown = np.concatenate([np.linspace(0.20, 0.06, 20), np.linspace(0.08, 0.22, 10),
                            0.22 * (1 + 0.03 * np.sin(2.3 * np.arange(20)))])
    found = _said(diagnose(_logged_every_100(blown), num_classes=10))
    assert ("loss_exploding", Severity.ERROR) in found
    flat = 0.2 * (1 + 0.02 * np.sin(2.3 * np.arange(50)))
    plateau = [f for f in diagnose(_logged_every_100(flat), num_classes=10)
               if f.code == "plateau"]
    assert [f.severity for f in plateau] == [Severity.WARNING]
    assert "already_trained" not in plateau[0].evidence
