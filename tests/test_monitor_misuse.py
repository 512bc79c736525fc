"""Rules on how a loop calls the Monitor (monitor_misuse.py), on the audit's own numbers."""

from __future__ import annotations

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
