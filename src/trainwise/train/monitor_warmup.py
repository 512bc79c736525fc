"""METHOD §4 for a user's own loop: "above 256, use warmup and gradient accumulation". The
Monitor sees each step's lr and (when told) its batch size and accumulation; an effective
batch (micro-batch x accumulation) above MAX_MICRO_BATCH
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
        self.batch_size = 0  # rows per micro-batch
        self.accumulation = 1  # micro-batches per optimizer step
        self.done = False

    def add(self, batch_size: int | None, lr: float | None,
            accumulation: int = 1) -> Finding | None:
        """Take one step's micro-batch size, lr and accumulation; a finding, once, at the last
        watched step. The effective batch (batch_size x accumulation) is judged: METHOD §4 ties
        warmup to it (review s15 VT5: 8 x 128 = 1024 at a constant lr passed silently)."""
        if lr is None or batch_size is None:  # not told: nothing to judge, stop watching
            self.done = True
            return None
        self.lrs.append(float(lr))
        self.batch_size = max(self.batch_size, int(batch_size))
        self.accumulation = max(self.accumulation, int(accumulation))
        if len(self.lrs) < MIN_WARMUP_STEPS:
            return None
        self.done = True
        effective = self.batch_size * self.accumulation
        if effective <= MAX_MICRO_BATCH or max(self.lrs[1:]) > self.lrs[0]:
            return None
        return no_warmup(self.batch_size, self.lrs[0], self.accumulation)


def no_warmup(batch_size: int, lr: float, accumulation: int = 1) -> Finding:
    least, effective = MIN_WARMUP_STEPS, batch_size * accumulation
    rows = (f"{effective} rows" if accumulation == 1 else
            f"{effective} rows ({batch_size} x {accumulation} accumulated micro-batches)")
    return warning(
        "train", "large_batch_no_warmup",
        f"Optimizer steps of {rows}, above {MAX_MICRO_BATCH}, start at the full learning "
        f"rate: the lr never rose over the first {least} steps ({lr:.3g} at step 1), so there "
        f"is no warmup. METHOD §4: above {MAX_MICRO_BATCH}, use warmup and gradient "
        "accumulation; the first steps of a large batch at the full lr can diverge or settle "
        "in a worse region (Goyal et al. 2017).",
        f"Warm the lr up linearly over the first {WARMUP_SHARE:.0%} of the run's steps (at least "
        f"{least}): warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/"
        f"{least}, total_iters=W), then your schedule with torch.optim.lr_scheduler."
        "SequentialLR(optimizer, [warmup, main], milestones=[W]), stepped once per optimizer "
        "step (OneCycleLR warms up itself). Accumulation does not replace it: it only saves "
        f"memory (micro-batches of at most {MAX_MICRO_BATCH} rows, monitor.step(loss, model, "
        "optimizer, batch_size=rows per micro-batch, accumulation=K) once per optimizer step), "
        "and the step still sees the whole effective batch.",
        batch_size=effective, micro_batch_size=batch_size, accumulation=accumulation, lr=lr,
        watched_steps=least)
