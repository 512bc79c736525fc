"""A machine that gets busy during training: torch's threads then contend with another
process for the cores, and a small model's step can get 100x slower (measured on 2 cores).

The setup stage pins the threads to the cores free at the start (console.configure_threads);
this callback looks again at each epoch's end, since a job started later is never seen
there (audit s10 S3: a CPU hog started mid-run left steps 4x slower and the run said
"no warnings").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from trainwise.console import load_average
from trainwise.findings import Finding, warning

# The load average counts our own threads (at most `threads` of it); more than half a core
# beyond all the cores means another process wants them too.
SLACK = 0.5
# ... and it must show in the time: an epoch this much slower than the fastest one before it,
# long enough to time (a tiny epoch's time is mostly noise). A busy machine that does not
# slow training down is not worth a warning.
SLOWER = 1.5
MIN_SECONDS = 1.0


class BusyCpuWatch:
    """At each epoch's end (one system call): the epoch's time per step, from its history row,
    against the fastest epoch's, and the 1-minute load average; keeps the busiest epoch that
    ran slow on more than one thread. Time per step, not per epoch: the first epoch after a
    resume is partial, and would make every whole epoch after it look slow. The first epoch
    seen is no reference either (it may be partial, and pays for warm-up)."""

    def __init__(self, load: Callable[[], float] = load_average, cores: int | None = None,
                 on_cpu: bool = True) -> None:
        self.load = load
        self.cores = cores or os.cpu_count() or 1
        self.on_cpu = on_cpu
        self.last_step: int | None = None
        self.fastest: float | None = None  # seconds per step of the fastest epoch so far
        self.busiest: tuple[float, int, int, float] | None = None  # load, epoch, threads, x

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        step, seconds = int(row.get("step", 0)), float(row.get("seconds", 0.0))
        last, self.last_step = self.last_step, step
        threads = torch.get_num_threads()
        if last is None or step <= last or not self.on_cpu or threads <= 1:
            return  # one thread cannot contend with itself; a GPU step waits on the GPU
        per_step, fastest = seconds / (step - last), self.fastest
        self.fastest = per_step if fastest is None else min(fastest, per_step)
        if fastest is None or seconds < MIN_SECONDS or per_step < SLOWER * fastest:
            return
        load = self.load()
        if load > self.cores + SLACK and (self.busiest is None or load > self.busiest[0]):
            self.busiest = (load, int(row.get("epoch", 0)), threads, per_step / fastest)

    def finding(self) -> Finding | None:
        if self.busiest is None:
            return None
        load, epoch, threads, slower = self.busiest
        return warning(
            "train", "busy_cpu_during_training",
            f"During training the machine got busy: epoch {epoch}'s steps took {slower:.1f}x as "
            f"long as the fastest epoch's before it, with a load average of {load:.1f} on "
            f"{self.cores} cores while torch ran {threads} CPU threads. Threads that contend "
            "with another process for the cores can make each step many times slower.",
            "Find the busy processes (`top`) and stop them, or train with one thread: "
            "`--set run.threads=1` (or OMP_NUM_THREADS=1) when you rerun or resume "
            "(`trainwise run --resume RUN_FOLDER --set run.threads=1`).",
            load=round(load, 2), cores=self.cores, threads=threads, epoch=epoch,
            slower=round(slower, 2))
