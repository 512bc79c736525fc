"""A machine that gets busy during training: torch's threads then contend with another
process for the cores, and a small model's step can get 100x slower (measured on 2 cores).

The setup stage pins the threads to the cores free at the start (console.configure_threads);
this callback looks again at each epoch's end, since a job started later is never seen
there (audit s10 S3: a CPU hog started mid-run left steps 4x slower and the run said
"no warnings").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from trainwise.findings import Finding, warning

# The load average counts our own threads (at most `threads` of it); more than half a core
# beyond all the cores means another process wants them too.
SLACK = 0.5
# ... and it must show in the time: an epoch this much slower than the fastest one before it,
# long enough to time (a tiny epoch's time is mostly noise). A busy machine that does not
# slow training down is not worth a warning.
SLOWER = 1.5
MIN_SECONDS = 1.0


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


class BusyCpuWatch:
    """At each epoch's end (a clock read and one system call): the epoch's time and the
    1-minute load average; keeps the busiest epoch that ran slow on more than one thread."""

    def __init__(self, load: Callable[[], float] = _load, cores: int | None = None,
                 on_cpu: bool = True, clock: Callable[[], float] = time.perf_counter) -> None:
        self.load, self.clock = load, clock
        self.cores = cores or os.cpu_count() or 1
        self.on_cpu = on_cpu
        self.started = clock()
        self.fastest: float | None = None  # seconds of the fastest epoch so far
        self.busiest: tuple[float, int, int, float] | None = None  # load, epoch, threads, x

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        now = self.clock()
        seconds, self.started = now - self.started, now
        threads = torch.get_num_threads()
        if not self.on_cpu or threads <= 1:
            return  # one thread cannot contend with itself; a GPU step waits on the GPU
        fastest = self.fastest
        self.fastest = seconds if fastest is None else min(fastest, seconds)
        if fastest is None or seconds < MIN_SECONDS or seconds < SLOWER * fastest:
            return
        load = self.load()
        if load > self.cores + SLACK and (self.busiest is None or load > self.busiest[0]):
            self.busiest = (load, int(row.get("epoch", 0)), threads, seconds / fastest)

    def finding(self) -> Finding | None:
        if self.busiest is None:
            return None
        load, epoch, threads, slower = self.busiest
        return warning(
            "train", "busy_cpu_during_training",
            f"During training the machine got busy: epoch {epoch} took {slower:.1f}x as long as "
            f"the fastest before it, with a load average of {load:.1f} on {self.cores} cores "
            f"while torch ran {threads} CPU threads. Threads that contend with another process "
            "for the cores can make each step many times slower.",
            "Find the busy processes (`top`) and stop them, or train with one thread: "
            "`--set run.threads=1` (or OMP_NUM_THREADS=1) when you rerun or resume "
            "(`trainwise run --resume RUN_FOLDER --set run.threads=1`).",
            load=round(load, 2), cores=self.cores, threads=threads, epoch=epoch,
            slower=round(slower, 2))
