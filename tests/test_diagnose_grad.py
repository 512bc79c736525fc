"""The gradient-spike rule and the epoch's short last batch.

A mean gradient over b rows has noise ~ 1 / sqrt(b): the 14-row last batch of a 1294-row
training split (10 x 128 + 14) reads ~3x the norm of a 128-row batch with nothing wrong in
it, and a user audit saw it reported as an 8x spike with "look for corrupt samples". The
rule judges norms per full batch (x sqrt(rows / full)); a truly abnormal short batch still
spikes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.loop import fit
from trainwise.train.monitor import StepMonitor

STEPS_PER_EPOCH, NUM_EPOCHS, FULL, SHORT = 11, 15, 128, 14  # the digits run: 1294 rows


def _history(short_factor: float, record_sizes: bool = True, seed: int = 0) -> list[dict]:
    """Steady gradient norms (lognormal batch noise, sigma 0.3) whose every epoch-ending short
    batch reads `short_factor` x the others; the loss falls steadily."""
    rng = np.random.default_rng(seed)
    rows, step = [], 0
    for epoch in range(1, NUM_EPOCHS + 1):
        for batch in range(STEPS_PER_EPOCH):
            step += 1
            last = batch == STEPS_PER_EPOCH - 1
            norm = float(np.exp(rng.normal(0, 0.3))) * (short_factor if last else 1.0)
            row = {"kind": "step", "step": step, "epoch": epoch, "grad_norm": norm,
                   "loss": 2.0 * np.exp(-step / 80) + 0.1, "lr": 1e-3}
            if record_sizes:
                row["batch_size"] = SHORT if last else FULL
            rows.append(row)
        rows.append({"kind": "epoch", "epoch": epoch, "step": step,
                     "val_loss": 2.0 * np.exp(-step / 80) + 0.15})
    return rows


def test_the_short_last_batch_of_each_epoch_is_no_spike():
    # 8x, as the audit's digits run: sqrt(128 / 14) = 3.0x of it is the short batch's noise
    assert RULES["gradient_spike"](_history(8.0)) == []
    assert "gradient_spike" not in [f.code for f in diagnose(_history(8.0))]


def test_the_same_history_without_batch_sizes_spikes_and_says_the_spikes_end_epochs():
    """The rows are the evidence: without `batch_size` the rule cannot scale, so it says
    that every spike ends an epoch instead of sending the user to corrupt samples alone."""
    (finding,) = RULES["gradient_spike"](_history(8.0, record_sizes=False))
    assert finding.evidence["num_spikes"] >= NUM_EPOCHS - 2
    assert "every spike is the last step of an epoch" in finding.message
    assert "batch_size" in finding.message
    # spikes mid-epoch: no such note
    rows = _history(1.0, record_sizes=False)
    rows[5 * (STEPS_PER_EPOCH + 1) + 4]["grad_norm"] = 40.0
    (finding,) = RULES["gradient_spike"](rows)
    assert "last step of an epoch" not in finding.message


def test_an_abnormal_short_batch_still_spikes_and_is_named_as_short():
    rows = _history(3.0)
    at = next(r for r in rows if r.get("step") == 8 * STEPS_PER_EPOCH)  # epoch 8's last
    assert at["batch_size"] == SHORT
    at["grad_norm"] *= 100
    (finding,) = RULES["gradient_spike"](rows)
    assert finding.evidence["spike_steps"] == [8 * STEPS_PER_EPOCH]
    assert finding.evidence["batch_size_at_max"] == SHORT
    assert finding.evidence["full_batch_size"] == FULL
    assert "a 14-row batch" in finding.message


def test_the_message_says_what_the_sample_indices_index():
    rows = _history(1.0)
    rows[40]["grad_norm"] = 50.0
    rows[40]["sample_indices"] = [5, 9, 700]
    (finding,) = RULES["gradient_spike"](rows)
    assert "training samples 5, 9, 700" in finding.message
    assert "positions in the training split" in finding.message
    assert "split.npz" in finding.message


def test_the_monitor_records_batch_sizes_and_short_batches_keep_no_indices():
    """Short batches at 3x must not use up the indexed rows (capped per run) before a real
    spike: the monitor scales them as the rule does."""
    monitor = StepMonitor(log_every=1000)
    rng = np.random.default_rng(0)
    for step in range(1, 200):
        short = step % 11 == 0
        norm = float(np.exp(rng.normal(0, 0.1))) * (6.0 if short else 1.0)
        monitor.record(step, 1 + step // 11, torch.tensor(1.0), torch.tensor(norm), 0.1,
                       batch_size=SHORT if short else FULL, batch_indices=[step])
    rows = monitor.flush()
    assert [r["batch_size"] for r in rows[9:12]] == [FULL, SHORT, FULL]
    assert not any("sample_indices" in r for r in rows)


def test_fit_writes_each_steps_batch_size():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(70, 4, generator=generator), torch.randint(0, 2, (70,), generator=generator)
    train = DataLoader(TensorDataset(x, y), batch_size=32)  # 32 + 32 + 6
    model = nn.Linear(4, 2)
    state = fit(model, train, DataLoader(TensorDataset(x, y), batch_size=64),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=2, log_every=4)
    sizes = [r["batch_size"] for r in state.history if r["kind"] == "step"]
    assert sizes == [32, 32, 6, 32, 32, 6]
