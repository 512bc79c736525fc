"""What the user sees in the terminal: progress bars, the thread warning, the summary table."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trainwise.amounts import loss_text
from trainwise.findings import Finding, Severity, warning

console = Console(stderr=True, highlight=False)
# `--quiet` (quieted): progress bars, epoch and short-run lines, stage timings and the stage
# table are left out; the run folder, warnings and errors, the verdict and the report's path are
# still said (audit s15 O12: ~60 progress lines per run in a CI log)
CHATTER: ContextVar[bool] = ContextVar("chatter", default=True)


def say(text: str) -> None:
    """A progress line: printed unless the command was run with --quiet."""
    if CHATTER.get():
        console.print(text, soft_wrap=True)


@contextmanager
def quieted(quiet: bool = True) -> Iterator[None]:
    """Progress lines and bars off inside (`trainwise ... --quiet`)."""
    token = CHATTER.set(not quiet)
    try:
        yield
    finally:
        CHATTER.reset(token)

_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch reads them at start-up


def load_average() -> float:
    """The 1-minute load average (0 where the system has none, e.g. Windows)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def configure_threads(requested: int = 0) -> tuple[int, list[Finding]]:
    """Pin torch's CPU threads to the cores that are free right now.

    torch starts one thread per core; when another process keeps those cores busy, the
    threads of a small model wait on each other and a step can get 100x slower (measured
    on a 2-core machine). So with `requested=0` we take the idle cores from the load average,
    unless the user chose a count already (OMP_NUM_THREADS / MKL_NUM_THREADS): that is kept,
    and only named when it exceeds the idle cores.
    """
    cores = os.cpu_count() or 1
    if requested > 0:
        torch.set_num_threads(requested)
        return requested, []
    load = load_average()
    free = max(1, int(cores - load + 0.5))
    chosen = next((name for name in THREAD_VARIABLES if os.environ.get(name)), None)
    if chosen:
        threads = torch.get_num_threads()
        if load < 1.0 or threads <= free:
            return threads, []
        return threads, [_busy(load, cores, threads, f"{chosen}={os.environ[chosen]} asks for "
                               f"{threads} threads, more than the ~{free} idle; kept as asked")]
    threads = min(free, cores)
    torch.set_num_threads(threads)
    picked = [_picked(threads, cores, load)]
    if load >= 1.0 and threads < cores:
        return threads, [_busy(load, cores, threads, f"torch would start {cores} threads and "
                               f"contend with them, so trainwise pinned it to {threads}"), *picked]
    return threads, picked


def _picked(threads: int, cores: int, load: float) -> Finding:
    """The count chosen from the load is not in config.toml (a rerun on another machine
    should use that machine's cores), but float sums split over another count of threads round
    differently: the audit's 1- vs 2-thread runs differed from step 19 on (1.5571671 vs
    1.5571672), which over 40 epochs can move early stopping and the tuned lr."""
    return Finding(
        "setup", Severity.INFO, "threads_auto",
        f"run.threads = 0: trainwise chose {threads} CPU thread(s) from the {cores} cores and "
        f"the load ({load:.1f}); a rerun under another load may choose another count and then "
        "differ in the last digits.",
        {"threads": threads, "cores": cores, "load": round(load, 2)},
        f"For bitwise reruns pin the count: --set run.threads={threads} (or OMP_NUM_THREADS).")


def _busy(load: float, cores: int, threads: int, what: str) -> Finding:
    return warning(
        "setup", "busy_cpu",
        f"Other processes keep about {load:.1f} of {cores} cores busy (the 1-minute load "
        f"average, which also counts a run that just ended); {what}.",
        "If training is slow, look for the busy processes (`top`) and stop them; to choose "
        "the thread count yourself, set run.threads (or OMP_NUM_THREADS).",
        load=round(load, 2), cores=cores, threads=threads)


def progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    disable=not CHATTER.get())


class ProgressBar:
    """A training progress bar as a callback: steps advance it, epochs update its text."""

    def __init__(self, bar: Progress, total_steps: int, description: str = "train",
                 max_minutes: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self.bar = bar
        self.task = bar.add_task(description, total=total_steps, info="")
        self.prefix = "" if description == "train" else f"{description}: "  # piped lines
        self.budget = 60.0 * max_minutes  # train.max_minutes; 0: none
        self.clock, self.started = clock, clock()

    def on_fit_start(self) -> None:
        self.started = self.clock()  # as TimeBudget counts it

    def budget_left(self) -> float | None:
        """Seconds until train.max_minutes stops training; None without a budget."""
        return max(0.0, self.budget - (self.clock() - self.started)) if self.budget else None

    def on_step_end(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.bar.update(self.task, advance=len(rows), info=f"loss {rows[-1]['loss']:.4f}")

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        info = epoch_line(row)
        self.bar.update(self.task, info=info)
        # one kept line per epoch, piped or at a terminal (there above the live bar, whose own
        # text each epoch replaces): train_loss beside val_loss shows overfitting as it starts
        seconds = f"  {row['seconds']:.1f} s" if "seconds" in row else ""
        left = _time_left(self.bar, self.task, self.budget_left())
        say(f"{self.prefix}{info}{seconds}{left}")


def epoch_line(row: dict[str, Any]) -> str:
    """"epoch 3  train_loss 0.1520  val_loss 0.1131  val_acc 0.972  bal_acc 0.972": 97
    characters at most with the time and ETA ("  12.3 s  ~59 min left") to epoch 999, losses
    under 10: one terminal row ("val_bal_acc" made it 101)."""
    train_loss = row.get("train_loss")
    line = f"epoch {row['epoch']}" + (f"  train_loss {loss_text(train_loss)}"
                                      if isinstance(train_loss, (int, float)) else "")
    line += f"  val_loss {loss_text(row['val_loss'])}"
    if "val_accuracy" in row:
        line += f"  val_acc {row['val_accuracy']:.3f}"
    if "val_balanced_accuracy" in row:  # the rare classes' view, beside accuracy
        line += f"  bal_acc {row['val_balanced_accuracy']:.3f}"
    return line


def print_live_finding(finding: Finding, epoch: int, hint: str = "see the report") -> None:
    """A problem the diagnosis found during training, in one line (the fix follows with the
    findings at the end): "error    [train] loss_exploding at epoch 3: The loss exploded: ...
    (see the report)"."""
    style = _SEVERITY_STYLE[finding.severity]
    console.print(f"[{style}]{finding.severity.value:7}[/] {escape(f'[{finding.stage}]')} "
                  f"{finding.code} at epoch {epoch}: {escape(_shorten(finding.message, 100))} "
                  f"({hint})", soft_wrap=True)


class TuneProgress:
    """The tune stage's bar: the range test's and the short runs' optimizer steps against those
    planned so far (a widening plans one run more), with an ETA; piped, where the bar prints
    nothing, one line per finished short run (as training prints one per epoch).

    tune_lr calls `plan` and `finished`; inside a short run fit calls `on_step_end`."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.done, self.total = bar, 0, 0
        self.task = bar.add_task("tune", total=None, info="")

    def plan(self, steps: int, what: str) -> None:
        self.total += steps
        self.bar.update(self.task, total=self.total, info=what)

    def on_step_end(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.bar.update(self.task, advance=len(rows))

    def finished(self, steps: int, line: str) -> None:
        """A range-test seed or a short run ended: its `steps` count as done (one that
        diverged early too), and `line` says how it went."""
        self.done += steps  # the bar's text stays short ("short run 2/5 done"): the bar
        self.bar.update(self.task, completed=self.done, info=line.split(":")[0] + " done")
        if not console.is_terminal and line.startswith("short run"):
            say(f"tune: {line}{_time_left(self.bar, self.task)}")


def _time_left(bar: Progress, task_id: Any, budget_left: float | None = None) -> str:
    """The bar's ETA as words ("  ~4 min left"), or "" before rich has a rate; at most
    `budget_left` (train.max_minutes' seconds left: a 3 s budget over 10^12 epochs said
    "~236885217 min left", audit s15 K16)."""
    task = next(t for t in bar.tasks if t.id == task_id)
    left = task.time_remaining
    if left is None or task.finished:
        return ""
    if budget_left is not None:
        left = min(left, budget_left)
    return f"  ~{left / 60:.0f} min left" if left >= 90 else f"  ~{left:.0f} s left"


def stage_table(stages: list[dict[str, Any]], until: str = "evaluate",
                stopped_at: str | None = None) -> Table:
    """One row per stage: time, counts of findings, and the most serious message. The title
    says how far the command was to go (`until`) and, when an error ended it early, where."""
    title = "trainwise run" if until == "evaluate" else f"trainwise, up to the {until} stage"
    if stopped_at:
        title += f": stopped at the {stopped_at} stage"
    table = Table(title=title, show_lines=False)
    for column in ("stage", "seconds", "result", "headline"):
        table.add_column(column)
    for stage in stages:
        findings: list[Finding] = stage["findings"]
        worst = max(findings, key=lambda f: f.severity, default=None)  # the first of the worst
        result = worst.severity.value if worst else "ok"
        style = _SEVERITY_STYLE.get(worst.severity, "") if worst else "green"
        headline = worst.message if worst and worst.severity is not Severity.INFO else (
            findings[0].message if findings else "")
        table.add_row(stage["name"], f"{stage['seconds']:.1f}", f"[{style}]{result}[/]",
                      escape(_shorten(headline)))
    return table


def _shorten(message: str, width: int = 110) -> str:
    """The message's first sentence when it fits, else cut at a word with an ellipsis: a
    cut mid-word ("...`trainwise find-lr` stops") reads as if the message were complete."""
    first = re.split(r"(?<=[.!?])\s(?=[A-Z])", message, maxsplit=1)[0]  # not at "e.g. x"
    if len(first) <= width:
        return first
    return first[:width - 1].rsplit(" ", 1)[0].rstrip(",;:(") + "…"


def print_notes(notes: list[str]) -> None:
    """What loading and splitting did to the data (files skipped, images converted or
    resized, rows dropped): the report lists them too, but a user who reads only the
    terminal should not train on changed data without being told."""
    for note in notes:
        say(f"[dim]{'note':7}[/] {escape(note)}")


def print_findings(findings: list[Finding], minimum: Severity = Severity.WARNING) -> None:
    for f in findings:
        if f.severity >= minimum:
            style = _SEVERITY_STYLE[f.severity]
            # escaped: rich reads '[data]' in a message (or the stage tag) as a style and
            # drops it, so "na_values = [...] in [data]" printed as "in )"
            console.print(f"[{style}]{f.severity.value:7}[/] {escape(f'[{f.stage}]')} "
                          f"{escape(f.message)}")
            if f.fix:
                console.print(f"         fix: {escape(f.fix)}")
