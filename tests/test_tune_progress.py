"""What the tune stage shows while it works: a bar of range-test and short-run steps with an
ETA, and piped one line per short run (audit s10, S2: minutes of a bare spinner before)."""

from __future__ import annotations

import re

import torch
from torch import nn

from trainwise.config import TuneConfig
from trainwise.console import ProgressBar, TuneProgress, console, progress
from trainwise.data.tensors import to_loader
from trainwise.tune.search import tune_lr

LINE = re.compile(r"tune: short run (\d+)(?:/(\d+)| \(widening (\d+)\)): peak lr (\S+), "
                  r"validation loss (\S+) in [\d.]+ s")


def test_the_bar_counts_every_planned_step_and_piped_each_short_run_prints_a_line(blobs):
    x, y = blobs
    train = to_loader(x[:240], y[:240], 32, shuffle=True, seed=0)  # 8 steps an epoch
    val = to_loader(x[240:], y[240:], 60, shuffle=False, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    assert not console.is_terminal  # as piped to a log
    with console.capture() as captured, progress() as bar:
        shown = TuneProgress(bar)
        result = tune_lr(model, nn.CrossEntropyLoss(), train, val,
                         lambda m, lr=None: torch.optim.AdamW(m.parameters(), lr=lr or 1e-3),
                         max_epochs=10, config=TuneConfig(num_steps=30, num_seeds=2),
                         progress=shown)
        (task,) = bar.tasks
    candidates = result.short.candidates
    # 2 range-test seeds x 30 steps, then each short run's 5 epochs x 8 steps (2 of 10 epochs
    # raised towards 50 steps, at most half of them)
    assert result.short.num_steps == 40
    assert task.total == 2 * 30 + len(candidates) * 40 == task.completed
    lines = LINE.findall(captured.get())
    grid = sum(1 for c in candidates if c.round == 0)  # planned first; a widening: no total
    assert [(int(k), n, w) for k, n, w, _, _ in lines] == [
        (k, str(grid), "") if c.round == 0 else (k, "", str(c.round))
        for k, c in enumerate(candidates, 1)]
    assert [float(lr) for *_, lr, _ in lines] == [float(f"{c.lr:.3g}") for c in candidates]
    assert [float(v) for *_, v in lines] == [float(f"{c.val_loss:.4g}") for c in candidates]


def test_the_piped_epoch_line_gives_the_epochs_seconds():
    with console.capture() as captured, progress() as bar:
        shown = ProgressBar(bar, total_steps=20)
        shown.on_step_end([{"loss": 1.0}] * 10)
        shown.on_epoch_end({"epoch": 1, "val_loss": 0.5, "seconds": 2.345})
    assert "epoch 1  val_loss 0.5000  2.3 s" in captured.get()
