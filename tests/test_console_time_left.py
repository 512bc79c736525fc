"""Audit s15 K16: the epoch line's "~N min left" ignored train.max_minutes (a 3 s budget over
10^12 epochs said "~236885217 min left"): it is capped by the budget left."""

from __future__ import annotations

from rich.progress import Progress

from trainwise.console import ProgressBar, console


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _epoch_line(max_minutes: float) -> str:
    clock = _Clock()
    with console.capture() as captured, Progress(console=console, get_time=clock) as bar:
        shown = ProgressBar(bar, total_steps=10**6, max_minutes=max_minutes, clock=clock)
        shown.on_fit_start()
        for _ in range(10):  # 10 steps a second: 10^6 steps take ~28 hours
            clock.now += 0.1
            shown.on_step_end([{"loss": 1.0}])
        shown.on_epoch_end({"epoch": 1, "val_loss": 0.5, "seconds": 1.0})
    return captured.get()


def test_the_time_left_is_capped_by_the_time_budget():
    assert "~2 s left" in _epoch_line(0.05)  # 3 s budget, 1 s gone
    assert "min left" not in _epoch_line(0.05)
    assert "~1667 min left" in _epoch_line(0.0)  # no budget: the steps' pace alone
    assert "~1667 min left" in _epoch_line(10**4)  # a budget longer than the run: no cap
