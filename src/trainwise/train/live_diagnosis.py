"""The diagnosis while `fit` trains: the Monitor's live diagnosis (monitor_findings.py) as a fit
callback, so `trainwise run` says a divergence when it happens, not after the last epoch.

Same rules, same schedule, same stopping rule as `trainwise.Monitor`: at an epoch's end the
whole history is diagnosed (unless the last diagnosis took more than `share` of the thread's
CPU time since), the findings that name an event (LIVE_CODES) or an error are printed once
each, and an error-level finding ends training (the rules give an error only for a divergence
or a loss that exploded and ended no lower than it started: more epochs cannot help). The
rules that judge where training ended (still_improving, collapse, ...) wait for the end: half
way through, "still falling" is true of every healthy run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_common import TrainingPlan
from trainwise.train.monitor_findings import LIVE_CODES

RUN_SHARE = 0.05  # `trainwise run`'s share of the thread's CPU time for the diagnosis (the
# Monitor's is 1%): on a long run the diagnosis (~18 us a step row) grows with the history, and
# the share keeps it to 5% however long the run is.
CHEAP_SECONDS = 0.02  # ...but a diagnosis that took under 20 ms runs at every epoch end: the
# digits demo's epochs take ~55 ms of CPU and its diagnosis ~14 ms, so by the share alone a
# divergence found at epoch 2 (lr 3) was said at epoch 6, after the run. 20 ms an epoch is
# ~1100 step rows; past them the share decides, so this adds at most ~20 ms x the epochs of
# the first 1100 steps.

Say = Callable[[Finding, int], None]  # (finding, epoch it was found at) -> prints it


class LiveDiagnosis:
    """A fit callback: `diagnose(state.history)` at epoch ends; each event or error found is
    said once (`say`, default: one console line), kept in `findings`, and an error stops
    training (`state.should_stop`, with `state.stop_reason` naming the finding).

    `num_classes` and `plan` are diagnose()'s; `share`: the most of the thread's CPU time the
    diagnosis may take (the Monitor's 1% by default), unless it took under `cheap` seconds;
    `stop=False` only reports; `hint` ends
    the console line (where the fix is). Several processes: only rank 0 diagnoses (`active`),
    and `agree` (a broadcast from rank 0) gives every process its verdict, so all stop together.
    """

    def __init__(self, num_classes: int | None = None, plan: TrainingPlan | None = None, *,
                 share: float = 0.01, stop: bool = True, say: Say | None = None,
                 hint: str = "fixes: trainwise.diagnose(state.history)", active: bool = True,
                 agree: Callable[[str], str] = str, cheap: float = 0.0) -> None:
        self.active, self.agree = active, agree
        self.cheap = cheap  # seconds: a diagnosis this quick is due at every epoch end
        self.num_classes, self.plan, self.share, self.stop = num_classes, plan, share, stop
        self.say = say or (lambda finding, epoch: say_on_console(finding, epoch, hint))
        self.findings: list[Finding] = []  # every finding said so far, in order
        self._diagnosed: tuple[float, float] | None = None  # (thread CPU time, CPU s it took)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        if state.should_stop:  # the last epoch: the diagnosis after training says it all
            return
        error = self._diagnose_if_due(state.history, int(row["epoch"])) if self.active else ""
        error = self.agree(error)  # rank 0's verdict on every process, as TimeBudget's
        if self.stop and error:
            state.should_stop = True
            state.stop_reason = f"the diagnosis found {error} (an error)"

    def _diagnose_if_due(self, history: list[dict[str, Any]], epoch: int) -> str:
        """The code of the first error found, "" for none (or no diagnosis due)."""
        started = time.thread_time()
        if self._diagnosed is not None:
            when, took = self._diagnosed
            if took > max(self.share * (started - when), self.cheap):
                return ""
        found = diagnose(history, num_classes=self.num_classes, plan=self.plan)
        self._say_new(found, epoch)
        self._diagnosed = (started, time.thread_time() - started)
        return next((f.code for f in found if f.severity is Severity.ERROR), "")

    def _say_new(self, found: list[Finding], epoch: int) -> None:
        said = {f.code for f in self.findings}  # once per problem: a rise's onset step moves
        for finding in found:  # as the epochs come, and each would be said again
            live = finding.code in LIVE_CODES or finding.severity is Severity.ERROR
            if live and finding.severity is not Severity.INFO and finding.code not in said:
                said.add(finding.code)
                self.findings.append(finding)
                self.say(finding, epoch)


def say_on_console(finding: Finding, epoch: int, hint: str) -> None:
    """One line (above the progress bar, if any); the fix comes with the findings at the end."""
    from trainwise.console import print_live_finding  # loads rich

    print_live_finding(finding, epoch, hint)
