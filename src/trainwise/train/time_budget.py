"""train.max_minutes: a wall-clock budget for training (audit s10 S6: a student on a laptop
wanted "at most 20 minutes" and could only guess a max_epochs that fits).

The budget is checked at each epoch's end, never mid-epoch, so every epoch that ran is whole:
validated, checkpointed, seen by early stopping. Training stops there when one more epoch at
the pace so far would pass the budget. The finding says how many epochs fit, because a
decaying schedule (one-cycle, cosine) cut by the clock never reaches its low-lr end: setting
train.max_epochs to what fits lets it anneal inside the same budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trainwise.findings import Finding, info, warning


class TimeBudget:
    """Stops training (`state.should_stop`) at the first epoch end where another epoch would
    pass `max_minutes`, the time counted from fit's start (a resumed run starts a new budget)."""

    def __init__(self, max_minutes: float, clock: Callable[[], float] = time.monotonic,
                 agree: Callable[[bool], bool] = bool) -> None:
        self.budget = 60.0 * max_minutes
        self.clock = clock
        self.agree = agree  # several processes: rank 0's clock decides for all (each rank's
        # own would differ by milliseconds, and a rank left waiting in a collective hangs)
        self.started = clock()
        self.epochs = 0  # whole epochs run under this budget
        self.stopped_at: tuple[int, float] | None = None  # epoch, seconds per epoch

    def on_fit_start(self) -> None:
        self.started = self.clock()

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        self.epochs += 1
        elapsed = self.clock() - self.started
        pace = elapsed / self.epochs  # with validation and checkpoints, as the budget counts
        if state.should_stop or not self.agree(elapsed + pace > self.budget):
            return
        self.stopped_at = (int(row["epoch"]), pace)
        state.should_stop = True
        state.stop_reason = (f"train.max_minutes = {self.budget / 60:g} reached (another "
                             f"epoch at {seconds(pace)} s would pass it)")

    def finding(self, max_epochs: int, schedule: str) -> Finding | None:
        """None when the budget never stopped training; a warning when it cut a decaying
        schedule, info at a constant lr (nothing left unannealed)."""
        if self.stopped_at is None:
            return None
        epoch, pace = self.stopped_at
        fits = max(1, int(self.budget // pace))
        message = (f"Training stopped at epoch {epoch} of {max_epochs}: train.max_minutes = "
                   f"{self.budget / 60:g} allows about {fits} epoch(s) at {seconds(pace)} s "
                   "each on this machine.")
        if schedule == "constant":
            return info("train", "time_budget", message + " Raise train.max_minutes to train "
                        "longer.", stop_epoch=epoch, epochs_that_fit=fits,
                        seconds_per_epoch=round(pace, 2))
        return warning("train", "time_budget", message + f" The {schedule} schedule was planned "
                       f"for {max_epochs} epochs, so it was cut before its low-lr end.",
                       f"Set train.max_epochs = {fits} so the schedule runs its course within "
                       "the budget, or raise train.max_minutes (train stage).",
                       stop_epoch=epoch, epochs_that_fit=fits, seconds_per_epoch=round(pace, 2))


def seconds(value: float) -> str:
    """A duration in seconds to 2 significant digits below 10 s (0.031, 2.5: a sub-second
    epoch read "0 s" before), whole seconds above (25, 125)."""
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"
