"""METHOD §4's large-batch rule in the Monitor (audit s15 M11): a batch above 256 whose lr
never rose over the first steps had no warmup. Oracles: the schedules themselves (a constant
lr, torch's LinearLR warmup, OneCycleLR) and the batch size the test chose."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainwise
from trainwise.train.large_batch_rules import MAX_MICRO_BATCH


def _run(batch_size: int, schedule=None, steps: int = 12, per_sample: bool = False,
         tell: bool = True, accumulation: int = 1) -> list[trainwise.Finding]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.AdamW(trainwise.param_groups(model, 0.01), lr=1e-3)
    scheduler = schedule(optimizer) if schedule else None
    x, y = torch.randn(batch_size, 8), torch.randint(0, 3, (batch_size,))
    monitor = trainwise.Monitor(None, console=False, tensorboard=False, report=False)
    for _ in range(steps):
        optimizer.zero_grad()
        losses = nn.functional.cross_entropy(model(x), y, reduction="none")
        losses.mean().backward()
        monitor.step(losses if per_sample else losses.mean(), model, optimizer,
                     batch_size=batch_size if tell and not per_sample else None,
                     accumulation=accumulation)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return [f for f in monitor.findings() if f.code == "large_batch_no_warmup"]


def test_a_large_batch_at_a_constant_lr_is_told_to_warm_up():
    found = _run(MAX_MICRO_BATCH * 2)
    assert len(found) == 1
    assert found[0].evidence["batch_size"] == 512 and found[0].evidence["lr"] == 1e-3
    assert "LinearLR" in found[0].fix and "accumulation=K" in found[0].fix


def test_a_falling_schedule_from_step_one_has_no_warmup_either():
    cosine = _run(512, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100))
    assert len(cosine) == 1


def test_a_per_sample_loss_tells_the_batch_size():
    assert len(_run(512, per_sample=True)) == 1


@pytest.mark.parametrize("schedule", [
    lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=20),
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=100_000),
])
def test_a_warmup_silences_it(schedule):
    """OneCycleLR over 100k steps rises by under 0.1% in the first 10: any rise counts."""
    assert _run(512, schedule) == []


def test_batches_of_256_or_less_and_untold_sizes_are_left_alone():
    assert _run(MAX_MICRO_BATCH) == []
    assert _run(512, tell=False) == []


def test_the_effective_batch_of_accumulated_micro_batches_is_judged():
    # review s15 VT5: 8 micro-batches of 128 (1024 a step) at a constant lr passed silently,
    # and the fix's own "accumulate ... accumulation=K" silenced the warning with no warmup
    (found,) = _run(128, accumulation=8)
    assert found.evidence["batch_size"] == 1024 and found.evidence["micro_batch_size"] == 128
    assert "1024 rows (128 x 8 accumulated micro-batches)" in found.message
    assert "Accumulation does not replace it" in found.fix
    assert _run(128, accumulation=2) == []  # 256: at the limit, no warmup needed
