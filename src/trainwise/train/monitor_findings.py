"""What a `trainwise.Monitor` finds and says while the user's loop runs: the diagnosis during the
run (and how much of the thread's time it may take), the findings about how the loop calls the
monitor (each said once), the loop's own exception, the console lines and the one-line verdict.

Separate from user_monitor.py, where the Monitor records the steps and epochs the loop hands
it: this side only reads that history and the step monitor's counts, and decides what to print
and whether the run should stop.

One stop rule for the Monitor and `fit`'s LiveDiagnosis (stops_training): a live diagnosis ends
training only on a non-finite loss (divergence). A loss that exploded (loss_exploding's error)
is said as a warning, "It may recover" (may_recover), and training goes on: digits trained with
one-cycle at lr 1 to 2.5 over 12 epochs exploded (an error at epochs 2-5, then error and warning
in turn to epoch 10) and recovered to validation losses of 0.53-1.82; every live stop rule on
loss_exploding tried in review s12 (one diagnosis; two in a row once the lr stopped rising)
killed some of them. The diagnosis after training, which sees where the loss ended, judges it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from trainwise.findings import Finding, Severity
from trainwise.rundir import RunDir
from trainwise.train import monitor_misuse as misuse
from trainwise.train.diagnose import diagnose, withheld_at_interrupt
from trainwise.train.entry_checks import explained_by_optimizer
from trainwise.train.live_trigger import ValRiseTrigger
from trainwise.train.loop_terms import for_own_loop
from trainwise.train.monitor import StepMonitor

LIVE_DIAGNOSIS_SHARE = 0.01  # the diagnosis after an epoch is skipped while its last run took
# more than 1% of the time since: it reads the whole history (~18 us per step row), so over a
# long run of a small model it would otherwise grow to rival the epoch itself. Time here is
# this thread's CPU time: the share of the training thread's own work, whatever else runs in
# the process (wall time would let a busy process diagnose more often; bench/overhead.py
# times contenders taking turns in threads). Where the thread waits (a GPU, loader workers)
# its CPU time runs slower than the clock, so diagnoses come less often, never more.
# Two events are not left to that schedule: a NaN/inf loss or gradient norm is diagnosed at the
# flush that brings it to the host (once: the run is lost from there), and an epoch with a
# gradient spike or dip the step monitor flagged may take twice the share (at most 2% in all).

# Printed as soon as found: events that happened.
LIVE_CODES = frozenset({"divergence", "loss_exploding", "gradient_spike", "gradient_dip",
                        "vanishing_gradients", "ordered_batches", "overfitting",
                        "systematically_wrong"})
# The rest judge where training ended (lr too low: "still falling steadily" is
# true of every healthy run halfway through) and are printed by close(). Of those, the ones a
# run cut short by Ctrl-C cannot support are diagnose's END_RULES (withheld_at_interrupt).


class DiagnosisSchedule:
    """When a live diagnosis is due (the Monitor's and `fit`'s LiveDiagnosis): unless the last
    one took more than `share` (default LIVE_DIAGNOSIS_SHARE) of the thread's CPU time since.
    Call due() before diagnosing (it marks the start) and done() after."""

    def __init__(self, share: float | None = None) -> None:
        self.share = LIVE_DIAGNOSIS_SHARE if share is None else share  # read now: patchable
        self._last: tuple[float, float] | None = None  # (thread CPU time, CPU s it took)
        self._started = 0.0

    def due(self, scale: float | None = 1.0) -> bool:
        """Whether to diagnose now at `scale` x the share (None: whatever the last one took)."""
        self._started = time.thread_time()
        if scale is None or self._last is None:
            return True
        when, took = self._last
        return not took > scale * self.share * (self._started - when)  # inf x 0: due

    def done(self) -> None:
        self._last = (self._started, time.thread_time() - self._started)


Said = set[tuple[str, Severity]]  # (code, severity) of each finding said live


def live_problems(found: list[Finding], said: Said, seen: set[str]
                  ) -> tuple[list[Finding], set[str]]:
    """What one live diagnosis says: (the findings to say now, the codes to pass as `seen` to
    the next call). Events (LIVE_CODES) and errors, each (code, severity) once (a rise's onset
    step moves from one diagnosis to the next); an error at once, a warning once two
    diagnoses in a row find it: a rule that reads the whole run can retract a warning an
    epoch later (the zoo's healthy GRU had a gradient_spike at epoch 3 only; an unshuffled
    sequence run a vanishing_gradients at epoch 3 that ordered_batches explains from epoch 4
    on), and what is said live must be what the diagnosis after training says too."""
    live = [f for f in found if f.severity is not Severity.INFO
            and (f.code, f.severity) not in said
            and (f.code in LIVE_CODES or f.severity is Severity.ERROR)]
    now = [f for f in live if f.severity is Severity.ERROR or f.code in seen]
    return now, {f.code for f in live}


RECOVER = "It may recover (the diagnosis after training judges it): "  # first: the console
# line is cut at its width, and the message of loss_exploding alone fills it


def stops_training(found: list[Finding]) -> str:
    """The code of the error that ends training live, "" for none: only a divergence (a NaN
    or inf loss: every step after it is NaN too). See the module docstring for why not
    loss_exploding."""
    lost = any(f.code == "divergence" and f.severity is Severity.ERROR for f in found)
    return "divergence" if lost else ""


def may_recover(found: list[Finding]) -> list[Finding]:
    """The findings as said live: each error but the one that stops training (stops_training)
    said as a warning, which the diagnosis after training may confirm as an error."""
    stop = stops_training(found)
    return [f if f.severity is not Severity.ERROR or f.code == stop else replace(
        f, severity=Severity.WARNING, message=RECOVER + f.message) for f in found]


class MonitorFindings:
    """The findings of one Monitor run: diagnosed from its history when due, written to the
    run folder's findings.json (`run`, None: in memory only), each warning or error printed
    once (`console`), and `stop` set once the diagnosis finds a divergence (stops_training) or
    a call of the loop is an error (say_once)."""

    def __init__(self, steps: StepMonitor, run: RunDir | None, console: bool):
        self._steps, self._run, self.console = steps, run, console
        self.stop = False
        self.misuse: list[Finding] = []  # how the loop calls the monitor, said once each
        self.raised: list[Finding] = []  # the loop's exception, from Monitor.__exit__
        self.interrupted: tuple[int, int] | None = None  # Ctrl-C's (step, epoch), __exit__'s
        self._reported: set[tuple[str, int | None, Severity]] = set()
        self._schedule = DiagnosisSchedule()
        self._val_rise = ValRiseTrigger()  # a validation loss far above its best: at once
        self._said_live: Said = set()
        self._seen: set[str] = set()  # live warnings the last diagnosis found, not yet said
        self._unusual_diagnosed = 0  # the step monitor's spikes/dips a diagnosis has seen
        self._nonfinite_diagnosed = False

    def after_steps(self, history: list[dict[str, Any]], num_classes: int | None) -> None:
        """Diagnose at once when these step rows brought the first NaN/inf to the host."""
        if self._steps.first_nonfinite_step is not None and not self._nonfinite_diagnosed:
            self._nonfinite_diagnosed = True  # once: from a NaN on, every step is NaN
            self._diagnose_live(history, num_classes, scale=None)

    def after_epoch(self, history: list[dict[str, Any]], num_classes: int | None) -> None:
        """Diagnose at an epoch's end, on the LIVE_DIAGNOSIS_SHARE schedule; at once after a
        validation loss 1.25x its best (live_trigger)."""
        unusual = self._steps.num_unusual > self._unusual_diagnosed  # a spike or dip to judge
        rose = self._val_rise.due(history[-1].get("val_loss") if history else None)
        self._diagnose_live(history, num_classes,
                            scale=None if rose else 2 if unusual else 1)

    def all_found(self, history: list[dict[str, Any]], num_classes: int | None
                  ) -> list[Finding]:
        """The diagnosis of the whole history, with the findings about the loop's calls."""
        found = explained_by_optimizer(diagnose_own_loop(history, num_classes), self.misuse)
        found, stopped = self._interrupted(found)
        # a loop that raised never got to its evaluation: its exception says why
        missing = [] if self.raised or stopped else misuse.missing_signals(history, self.misuse)
        said = self.misuse + missing + self.raised
        notes = [f for f in said if f.severity is Severity.INFO]  # e.g. how targets are scored
        problems = [f for f in said if f.severity is not Severity.INFO]
        if problems:  # "healthy" claims too much when a signal was never measured
            found = [f for f in found if f.code != "healthy"] + problems
        return notes + found + stopped  # the verdict reads the last finding: "healthy" or
        # the interrupt stays last

    def _interrupted(self, found: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        """After Ctrl-C: (the findings less END_RULES and "healthy", which would judge where
        a run cut short ended, [the interrupt note naming those withheld]); else (found, [])."""
        if self.interrupted is None:
            return found, []
        kept, withheld = withheld_at_interrupt(found)
        return kept, [misuse.loop_interrupted(*self.interrupted, withheld)]

    def say_once(self, finding: Finding) -> None:
        """Print a finding about the loop or its data the first time it comes (an info note
        too: it says how something is scored); an error also stops the run."""
        if all(f.code != finding.code for f in self.misuse):
            self.misuse.append(finding)
            self.stop = self.stop or finding.severity is Severity.ERROR
            if finding.severity is Severity.INFO and self.console:
                from trainwise.console import print_findings  # loads rich

                print_findings([finding], minimum=Severity.INFO)
            else:
                self.print_new([finding])

    def print_new(self, found: list[Finding]) -> None:
        """Each warning or error once, when it first appears (an error said live as "It may
        recover" is printed again if the diagnosis after training confirms it)."""
        new = [f for f in found if f.severity is not Severity.INFO
               and (f.code, f.step, f.severity) not in self._reported]
        self._reported.update((f.code, f.step, f.severity) for f in new)
        if self.console and new:
            from trainwise.console import print_findings  # loads rich

            print_findings(new)

    def print_line(self, text: str) -> None:
        """A line about the run itself (continued, or the verdict at its end)."""
        if not self.console:
            return
        from trainwise.console import console  # loads rich

        console.print(f"trainwise.Monitor: {text}")

    def _diagnose_live(self, history: list[dict[str, Any]], num_classes: int | None,
                       scale: float | None) -> None:
        """Diagnose now, unless the last diagnosis took more than `scale` x the share of the
        thread's CPU time since (None: whatever it took)."""
        if not self._schedule.due(scale):
            return
        self._unusual_diagnosed = self._steps.num_unusual
        found = may_recover(diagnose_own_loop(history, num_classes))
        if self._run is not None:  # what was said: close() writes the verdict after training
            self._run.write_findings(found)
        now, self._seen = live_problems(found, self._said_live, self._seen)
        self._said_live.update((f.code, f.severity) for f in now)
        self.print_new(now)
        self.stop = self.stop or bool(stops_training(found))
        self._schedule.done()


def diagnose_own_loop(history: list[dict[str, Any]], num_classes: int | None) -> list[Finding]:
    """The rules' findings, their fixes said for a hand-written loop (loop_terms)."""
    found = diagnose(history, num_classes=num_classes, fix_terms="config")  # the rules' words
    return [for_own_loop(f) for f in found]


def one_line_verdict(found: list[Finding]) -> str:
    """One line for the console and the report: the first error's message leads (it is why
    the run failed), then the count of problems; with none, the healthy finding's message."""
    problems = [f for f in found if f.severity is not Severity.INFO]
    if not problems:
        return found[-1].message.rstrip(".")
    counted = f"{len(problems)} training problem(s): {', '.join(f.code for f in problems)}"
    first_error = next((f for f in problems if f.severity is Severity.ERROR), None)
    return counted if first_error is None else f"{first_error.message.rstrip('.')} ({counted})"
