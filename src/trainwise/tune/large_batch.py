"""A batch larger than one step should hold: gradient accumulation over micro-batches of at
most MAX_MICRO_BATCH, the linear warmup a large effective batch needs, and the finding that
says both with the lr adjustment (METHOD.md §4)."""

from __future__ import annotations

import math
from typing import Any

import torch

from trainwise.findings import Finding, info, warning
from trainwise.train.large_batch_rules import (  # the Monitor's too (monitor_warmup)
    MAX_MICRO_BATCH,
    MIN_WARMUP_STEPS,
    WARMUP_SHARE,
)

WARMUP_CAP = 0.25  # ...and at most this share of a short run's steps, under the 30% one-cycle
# spends rising, so that the warmup never takes most of the training
MIN_WARMUP_RUN = 10  # steps: a run this short gets no warmup (the finding says so)


def accumulation_plan(effective_batch_size: int, micro_batch: int = MAX_MICRO_BATCH, *,
                      processes: int = 1) -> dict[str, Any]:
    """How to reach an effective batch above the micro-batch: each of `processes` takes its
    share of the batch and accumulates gradients over `accumulation_steps` micro-batches of
    it. The warmup is warmup_steps()'s (it depends on the schedule: a plan without one gave
    batch 128 under one-cycle 7 warmup steps where training runs none; review s12 VT6);
    `processes` is keyword-only so that a call still passing the old num_steps third fails.

    The gradient of a step is the whole effective batch's (the loop weights each micro-batch's
    loss by its share), so an lr measured at the effective batch (what the tune stage does)
    needs no change. An lr found for batches of `micro_batch` would: AdamW's lr scales about
    with sqrt(effective / micro) (the square-root rule; linear for SGD, Goyal et al. 2017).
    One-cycle already warms up (its first 30% of steps rise from lr/25); constant and cosine
    schedules get the linear warmup (warmup_schedule).
    """
    per_process = math.ceil(effective_batch_size / processes)
    steps = max(1, math.ceil(per_process / micro_batch))
    micro = math.ceil(per_process / steps)
    ratio = effective_batch_size / micro
    return {"micro_batch_size": micro, "accumulation_steps": steps,
            "effective_batch_size": effective_batch_size, "processes": processes,
            "lr_scale_adamw": math.sqrt(ratio), "lr_scale_sgd": ratio}


def accumulation_steps(batch_size: int, processes: int, configured: int) -> int:
    """Micro-batches per step: the configured number, or (when it is left at 1) as many as
    keep each process's micro-batch at or below MAX_MICRO_BATCH."""
    if configured > 1:
        return configured
    return accumulation_plan(batch_size, MAX_MICRO_BATCH, processes=processes)[
        "accumulation_steps"]


def warmup_schedule(optimizer: torch.optim.Optimizer, main: Any, warmup_steps: int) -> Any:
    """A linear warmup from lr/warmup_steps to the lr over `warmup_steps`, then `main` (None:
    a constant lr). Large effective batches need it (Goyal et al. 2017, §2.2)."""
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup_steps,
                                               total_iters=warmup_steps)
    if main is None:
        return warmup
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, main],
                                                 milestones=[warmup_steps])


def warmup_steps(batch_size: int, schedule: str, total_steps: int) -> int:
    """Linear warmup steps of a constant or cosine schedule at an effective batch above
    MAX_MICRO_BATCH (0 otherwise); one-cycle has its own."""
    if batch_size <= MAX_MICRO_BATCH or schedule == "onecycle":
        return 0
    return warmup_length(total_steps)


def warmup_length(total_steps: int) -> int:
    """WARMUP_SHARE of the steps, at least MIN_WARMUP_STEPS but at most WARMUP_CAP of them;
    0 on runs under MIN_WARMUP_RUN steps. 28 steps: 7; 100: 10; 1000: 50."""
    if total_steps < MIN_WARMUP_RUN:
        return 0
    return max(round(WARMUP_SHARE * total_steps),
               min(MIN_WARMUP_STEPS, round(WARMUP_CAP * total_steps)))


def _warmup_words(warmup: int, schedule: str, total_steps: int) -> str:
    """The warmup the large batch gets, and when the run is too short for the
    MIN_WARMUP_STEPS the method asks above MAX_MICRO_BATCH (METHOD.md §4), that it is."""
    if schedule == "onecycle":
        return "one-cycle's own warm-up (30% of the steps)"
    more = "train more epochs (or a batch of 256 or less) for a full one"
    if not warmup:
        return (f"no warmup: {total_steps} steps are too few for one (under "
                f"{MIN_WARMUP_RUN}); {more}")
    if warmup < MIN_WARMUP_STEPS:
        return (f"a linear warmup over the first {warmup} steps, a quarter of this short "
                f"run, where the method asks for at least {MIN_WARMUP_STEPS}; {more}")
    return f"a linear warmup over the first {warmup} steps"


def large_batch_finding(batch_size: int, total_steps: int, processes: int = 1,
                        configured: int = 1, schedule: str = "onecycle",
                        lr_measured: bool = True) -> Finding | None:
    """How the batch is trained when it is split into micro-batches or warmed up: gradient
    accumulation over micro-batches <= MAX_MICRO_BATCH (per process) and the warmup of a large
    effective batch. A warning when the configured accumulation still leaves micro-batches
    above MAX_MICRO_BATCH. None when neither applies."""
    steps = accumulation_steps(batch_size, processes, configured)
    micro = math.ceil(math.ceil(batch_size / processes) / steps)
    warmup = warmup_steps(batch_size, schedule, total_steps)
    if steps == 1 and warmup == 0 and micro <= MAX_MICRO_BATCH:
        return None
    plan = {**accumulation_plan(batch_size, MAX_MICRO_BATCH, processes=processes),
            "accumulation_steps": steps, "micro_batch_size": micro, "warmup_steps": warmup}
    if lr_measured:  # the lr is the effective batch's: a scale in the evidence read as one to
        # apply (lr_scale_adamw 1.414 beside "used as found"; audit s13 T16)
        plan = {k: v for k, v in plan.items() if not k.startswith("lr_scale")}
    where = f" on each of {processes} processes" if processes > 1 else ""
    if micro > MAX_MICRO_BATCH:
        return warning(
            "tune", "batch_size_above_micro",
            f"train.accumulate_grad_batches = {configured} leaves micro-batches of {micro}"
            f"{where}, above {MAX_MICRO_BATCH}, where batch-norm statistics and "
            "generalisation start to suffer (METHOD.md §4).",
            "Set train.accumulate_grad_batches to 1 (then chosen automatically) or a larger "
            "number.", **plan)
    split = (f"each step accumulates gradients over {steps} micro-batches of {micro}{where}"
             if steps > 1 else f"each process takes {micro} samples a step")
    if batch_size <= MAX_MICRO_BATCH:
        return info("tune", "gradient_accumulation",
                    f"Batch {batch_size}: {split} (train.accumulate_grad_batches).", **plan)
    warm = _warmup_words(warmup, schedule, total_steps)
    ratio = batch_size / micro
    lr = ("the lr is measured at this effective batch, so it is used as found" if lr_measured
          else f"train.lr is used as given; an lr picked for batches of {micro} would need "
               f"x{math.sqrt(ratio):.2g} (AdamW, square-root rule) or x{ratio:.2g} (SGD)")
    return info(
        "tune", "gradient_accumulation",
        f"Effective batch {batch_size}: {split} (never above {MAX_MICRO_BATCH}), with {warm}; "
        f"{lr}.", **plan)
