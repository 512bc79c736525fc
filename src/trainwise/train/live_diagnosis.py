"""The diagnosis while `fit` trains: the Monitor's live diagnosis (monitor_findings.py) as a fit
callback, so `trainwise run` says a divergence when it happens, not after the last epoch.

Same rules, same schedule, same stopping rule as `trainwise.Monitor`: at an epoch's end the
whole history is diagnosed (unless the last diagnosis took more than `share` of the thread's
CPU time since), the findings that name an event (LIVE_CODES) or an error are printed once
each (a warning once two diagnoses in a row find it), and an error-level finding ends
training (the rules give an error only for a divergence or a loss that exploded and ended no
lower than it started: more epochs cannot help). The rules that judge where training ended
(still_improving, collapse, ...) wait for the end: half way through, "still falling" is true
of every healthy run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_common import TrainingPlan
from trainwise.train.monitor_findings import LIVE_CODES

RUN_SHARE = 0.02  # `trainwise run`'s share of the thread's CPU time for the diagnosis: the
# Monitor's 1%, doubled as the Monitor doubles it for an epoch with a spike. On a long run the
# diagnosis (~18 us a step row) grows with the history; the share keeps it to 2% however long.
# By the share alone the digits demo (0.1 s epochs, ~15 ms a diagnosis) is diagnosed every
# ~8 epochs, and its divergence at lr 3 (found from epoch 2) was said at epoch 6, after the run;
# so an epoch whose mean training loss is above the first epoch's (which includes the loss at
# initialisation: a healthy run stays below it) is diagnosed whatever the share. A diagnosis
# at every epoch cost the digits demo 0.53 s of CPU on 5.3 s of training (10%).

Say = Callable[[Finding, int], None]  # (finding, epoch it was found at) -> prints it


class LiveDiagnosis:
    """A fit callback: `diagnose(state.history)` at epoch ends; each event or error found is
    said once (`say`, default: one console line), kept in `findings`, and an error stops
    training (`state.should_stop`, with `state.stop_reason` naming the finding).

    `num_classes` and `plan` are diagnose()'s; `share`: the most of the thread's CPU time the
    diagnosis may take (the Monitor's 1% by default), except at an epoch whose training loss
    is above the first epoch's (an explosion's sign: diagnosed at once); `stop=False` only
    reports; `hint` ends the console line (where the fix is). Several processes: only rank 0
    diagnoses (`active`), and `agree` (a broadcast from rank 0) gives every process its
    verdict, so all stop together.
    """

    def __init__(self, num_classes: int | None = None, plan: TrainingPlan | None = None, *,
                 share: float = 0.01, stop: bool = True, say: Say | None = None,
                 hint: str = "fixes: trainwise.diagnose(state.history)", active: bool = True,
                 agree: Callable[[str], str] = str) -> None:
        self.active, self.agree = active, agree
        self._first_train_loss: float | None = None  # the first epoch's: see RUN_SHARE
        self.num_classes, self.plan, self.share, self.stop = num_classes, plan, share, stop
        self.say = say or (lambda finding, epoch: say_on_console(finding, epoch, hint))
        self.findings: list[Finding] = []  # every finding said so far, in order
        self._diagnosed: tuple[float, float] | None = None  # (thread CPU time, CPU s it took)
        self._seen: set[str] = set()  # warnings the last diagnosis found, not yet said

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        if state.should_stop:  # the last epoch: the diagnosis after training says it all
            return
        error = self._diagnose_if_due(state.history, row) if self.active else ""
        error = self.agree(error)  # rank 0's verdict on every process, as TimeBudget's
        if self.stop and error:
            state.should_stop = True
            state.stop_reason = f"the diagnosis found {error} (an error)"

    def _diagnose_if_due(self, history: list[dict[str, Any]], row: dict[str, Any]) -> str:
        """The code of the first error found, "" for none (or no diagnosis due)."""
        started = time.thread_time()
        train_loss = row.get("train_loss")
        first = self._first_train_loss = (train_loss if self._first_train_loss is None
                                          else self._first_train_loss)
        rose = isinstance(train_loss, float) and not train_loss <= first  # a NaN rose too
        if self._diagnosed is not None and not rose:
            when, took = self._diagnosed
            if took > self.share * (started - when):
                return ""
        found = diagnose(history, num_classes=self.num_classes, plan=self.plan)
        self._say_new(found, int(row["epoch"]))
        self._diagnosed = (started, time.thread_time() - started)
        return next((f.code for f in found if f.severity is Severity.ERROR), "")

    def _say_new(self, found: list[Finding], epoch: int) -> None:
        """Errors at once; a warning once two diagnoses in a row find it: a rule that reads the
        whole run can retract a warning an epoch later (the zoo's healthy GRU had a
        gradient_spike at epoch 3 only; an unshuffled sequence run a vanishing_gradients at
        epoch 3 that ordered_batches explains from epoch 4 on), and what is said live must be
        what the diagnosis after training says too."""
        said = {f.code for f in self.findings}  # once per problem: a rise's onset step moves
        live = [f for f in found if f.severity is not Severity.INFO and f.code not in said
                and (f.code in LIVE_CODES or f.severity is Severity.ERROR)]
        for finding in live:
            if finding.severity is Severity.ERROR or finding.code in self._seen:
                self.findings.append(finding)
                self.say(finding, epoch)
        self._seen = {f.code for f in live}


def say_on_console(finding: Finding, epoch: int, hint: str) -> None:
    """One line (above the progress bar, if any); the fix comes with the findings at the end."""
    from trainwise.console import print_live_finding  # loads rich

    print_live_finding(finding, epoch, hint)
