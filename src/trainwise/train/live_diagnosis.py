"""The diagnosis while `fit` trains: the Monitor's live diagnosis (monitor_findings.py) as a fit
callback, so `trainwise run` says a divergence when it happens, not after the last epoch.

Same rules, same schedule (DiagnosisSchedule), same "what to say" policy (live_problems) as
`trainwise.Monitor`: at an epoch's end the whole history is diagnosed (unless the last
diagnosis took more than `share` of the thread's CPU time since), the findings that name an
event (LIVE_CODES) or an error are printed once each (a warning once two diagnoses in a row
find it). Training stops only on a divergence (NaN/inf; stops_training, shared with the
Monitor); a loss that exploded is said as a warning, "It may recover" (may_recover), and the
diagnosis after training judges it: digits with one-cycle at lr 1-2.5 exploded (an error at
epochs 2-5, error and warning in turn to epoch 10) and recovered to validation losses of
0.53-1.82, and every live stop rule on loss_exploding tried in review s12 killed some of them.
The rules that judge where training ended (still_improving, collapse, ...) wait for the end:
half way through, "still falling" is true of every healthy run.

fit stops on a NaN/inf loss itself, before the epoch's end (so no live diagnosis runs there):
on_fit_end then says the divergence, since a notebook's fit has no diagnosis after training and
"It may recover" must not be the last word (audit s16 N4). With `max_epochs` given (`trainwise
run`'s marker: its diagnosis after training says it all) it stays silent: the recipe's line named
a finding its report did not hold, at another step (review s16 VN2). A new fit (not a resume) starts
afresh: a re-run cell with the same object is diagnosed as the new training it is (N13).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from trainwise.findings import Finding, Findings
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_common import TrainingPlan
from trainwise.train.live_trigger import ValRiseTrigger
from trainwise.train.monitor_findings import (
    DiagnosisSchedule,
    live_problems,
    may_recover,
    stops_training,
)

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
    said once (`say`, default: one console line), kept in `findings`, and a divergence stops
    training (`state.should_stop`, with `state.stop_reason` naming the finding).

    `num_classes` and `plan` are diagnose()'s; `share`: the most of the thread's CPU time the
    diagnosis may take (the Monitor's LIVE_DIAGNOSIS_SHARE by default), except at an epoch
    whose training loss is above the first epoch's (an explosion's sign: diagnosed at once) and
    after a validation loss 1.25x its best (live_trigger: overfitting, said within ~3 epochs);
    `max_epochs`: fit's, given when a diagnosis after training follows (`trainwise run`): the
    last epoch and a NaN stop are left to it (None: every epoch is diagnosed when due, and a
    NaN stop is said at fit's end); `stop=False` only reports; `hint` ends the console line
    (where the fix is). Several processes: only rank 0 diagnoses (`active`), and `agree` (a
    broadcast from rank 0) gives every process its verdict, so all stop together. Checkpointed
    (state_dict): a resumed run does not say again what it said, nor move its reference loss.
    """

    def __init__(self, num_classes: int | None = None, plan: TrainingPlan | None = None, *,
                 share: float | None = None, max_epochs: int | None = None, stop: bool = True,
                 say: Say | None = None, hint: str = "fixes: trainwise.diagnose(state.history)",
                 active: bool = True, agree: Callable[[str], str] = str) -> None:
        self.active, self.agree, self.max_epochs = active, agree, max_epochs
        self.num_classes, self.plan, self.stop, self.share = num_classes, plan, stop, share
        self.say = say or (lambda finding, epoch: say_on_console(finding, epoch, hint))
        self._start_afresh()

    def _start_afresh(self) -> None:
        self.schedule = DiagnosisSchedule(self.share)
        self.val_rise = ValRiseTrigger()  # a validation loss far above its best: at once
        self.findings = Findings()  # every finding said so far, in order (a notebook's table)
        self._first_train_loss: float | None = None  # the first epoch's: see RUN_SHARE
        self._seen: set[str] = set()  # warnings the last diagnosis found, not yet said

    def on_fit_start(self, state: Any) -> None:
        """A new training starts afresh (audit s16 N13: the same object in a re-run notebook
        cell said nothing, its reference loss the last fit's first epoch); a resumed one keeps
        what load_state_dict restored (fit calls this after restoring it)."""
        if state.resumed_from_step is None:
            self._start_afresh()

    def on_fit_end(self, state: Any) -> None:
        """fit stopped on a NaN/inf loss (state.nonfinite) before any live diagnosis saw it:
        the divergence is said now, an error (audit s16 N4: the only line was "It may
        recover", and fit returned as if training had ended well). Not with `max_epochs`:
        a diagnosis after training follows, and it says it (review s16 VN2)."""
        said = bool(stops_training(self.findings))  # a live diagnosis said the divergence
        follows = self.max_epochs is not None  # the recipe diagnoses after fit
        if not self.active or state.nonfinite is None or said or follows:
            return
        found = diagnose(state.history, num_classes=self.num_classes, plan=self.plan)
        for finding in found:
            if stops_training([finding]):  # the divergence error
                self.findings.append(finding)
                self.say(finding, int(state.epoch))

    def __repr__(self) -> str:
        """What it said so far, by code (the findings themselves are in .findings): the default
        <... object at 0x7f...> said nothing in a notebook (user audit s16 N15)."""
        codes = ", ".join(f"{f.severity.value} {f.code}" for f in self.findings[:6])
        more = ", ..." if len(self.findings) > 6 else ""
        return (f"LiveDiagnosis(said={len(self.findings)}{': ' if codes else ''}{codes}{more}, "
                f"stop={self.stop})")

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        if state.should_stop or (self.max_epochs is not None and row["epoch"] >= self.max_epochs):
            return  # the run ends here: the diagnosis after training says it all
        error = self._diagnose_if_due(state.history, row) if self.active else ""
        error = self.agree(error)  # rank 0's verdict on every process, as TimeBudget's
        if self.stop and error:
            state.should_stop = True
            state.stop_reason = f"the diagnosis found {error} (an error)"

    def _diagnose_if_due(self, history: list[dict[str, Any]], row: dict[str, Any]) -> str:
        """The code of the error that ends training, "" for none (or no diagnosis due)."""
        train_loss = row.get("train_loss")
        if self._first_train_loss is None:
            self._first_train_loss = train_loss
        first = self._first_train_loss
        rose = isinstance(train_loss, float) and not train_loss <= first  # a NaN rose too
        rose = self.val_rise.due(row.get("val_loss")) or rose  # called every epoch: it counts
        if not self.schedule.due(None if rose else 1.0):
            return ""
        found = diagnose(history, num_classes=self.num_classes, plan=self.plan)
        self._say_new(may_recover(found), int(row["epoch"]))
        self.schedule.done()
        return stops_training(found)

    def _say_new(self, found: list[Finding], epoch: int) -> None:
        """What live_problems picks, said and kept in `findings`."""
        said = {(f.code, f.severity) for f in self.findings}
        now, self._seen = live_problems(found, said, self._seen)
        for finding in now:
            self.findings.append(finding)
            self.say(finding, epoch)

    def state_dict(self) -> dict[str, Any]:
        """What was said and seen and the reference loss: fit checkpoints it. The findings as
        findings.json writes them: evidence may hold numpy scalars, which
        torch.load(weights_only=True) refuses."""
        said = json.dumps([f.to_dict() for f in self.findings], default=str)
        return {"findings": said, "seen": sorted(self._seen),
                "first_train_loss": self._first_train_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Also a checkpoint from before the stop rule was divergence only: its "lost_streak"
        (diagnoses in a row that found loss_exploding) has nothing left to count."""
        self.findings = Findings(Finding.from_dict(row) for row in json.loads(state["findings"]))
        self._seen = set(state["seen"])
        self._first_train_loss = state["first_train_loss"]


def say_on_console(finding: Finding, epoch: int, hint: str) -> None:
    """One line (above the progress bar, if any); the fix comes with the findings at the end."""
    from trainwise.console import print_live_finding  # loads rich

    print_live_finding(finding, epoch, hint)
