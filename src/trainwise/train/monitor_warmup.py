"""METHOD §4 for a user's own loop: "above 256, use warmup and gradient accumulation". The
Monitor sees each step's lr and (when told) its batch size; a batch above MAX_MICRO_BATCH
whose lr never rose over the first MIN_WARMUP_STEPS steps started at its peak (audit s15 M11:
batch 1024 at a constant lr passed silently). `trainwise run` plans both itself
(tune/large_batch.py; the thresholds are train/large_batch_rules.py's, shared). Watched over
the first steps only: after them, Monitor.step drops the watch and pays nothing per step.
"""

from __future__ import annotations

from trainwise.findings import Finding, warning
from trainwise.train.large_batch_rules import MAX_MICRO_BATCH, MIN_WARMUP_STEPS, WARMUP_SHARE


class WarmupWatch:
    """The lr and batch size of steps 1..MIN_WARMUP_STEPS; `done` once it has judged them.
    A warmup (LinearLR, one-cycle, a hand-written ramp) raises the lr in these steps by any
    amount; a constant, cosine or step schedule never does (a constant lr repeats exactly)."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.batch_size = 0
        self.done = False

    def add(self, batch_size: int | None, lr: float | None) -> Finding | None:
        """Take one step's batch size and lr; a finding, once, at the last watched step."""
        if lr is None or batch_size is None:  # not told: nothing to judge, stop watching
            self.done = True
            return None
        self.lrs.append(float(lr))
        self.batch_size = max(self.batch_size, int(batch_size))
        if len(self.lrs) < MIN_WARMUP_STEPS:
            return None
        self.done = True
        if self.batch_size <= MAX_MICRO_BATCH or max(self.lrs[1:]) > self.lrs[0]:
            return None
        return no_warmup(self.batch_size, self.lrs[0])


def no_warmup(batch_size: int, lr: float) -> Finding:
    least = MIN_WARMUP_STEPS
    return warning(
        "train", "large_batch_no_warmup",
        f"Batches of {batch_size} rows (above {MAX_MICRO_BATCH}) start at the full learning "
        f"rate: the lr never rose over the first {least} steps ({lr:.3g} at step 1), so there "
        f"is no warmup. METHOD §4: above {MAX_MICRO_BATCH}, use warmup and gradient "
        "accumulation; the first steps of a large batch at the full lr can diverge or settle "
        "in a worse region (Goyal et al. 2017).",
        f"Warm the lr up linearly over the first {WARMUP_SHARE:.0%} of the run's steps (at least "
        f"{least}): warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/"
        f"{least}, total_iters=W), then your schedule with torch.optim.lr_scheduler."
        "SequentialLR(optimizer, [warmup, main], milestones=[W]), stepped once per optimizer "
        "step (OneCycleLR warms up itself). If memory is short, accumulate gradients over "
        f"micro-batches of at most {MAX_MICRO_BATCH} rows and call monitor.step(loss, model, "
        "optimizer, accumulation=K) once per optimizer step.",
        batch_size=batch_size, lr=lr, watched_steps=least)
