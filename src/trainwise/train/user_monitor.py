"""`trainwise.Monitor`: the signals and the diagnosis of `fit`, inside a loop you already have.

    with trainwise.Monitor("runs/mine") as monitor:               # added line 1
        for epoch in range(num_epochs):
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                monitor.step(loss, model, optimizer)             # added line 2
                optimizer.step()
            monitor.evaluate(model, val_loader, loss_fn)          # added line 3

The same history rows, findings, TensorBoard events and report as `trainwise run`. Nothing
syncs the device per step: the loss and gradient norms go to the host every `log_every` steps.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, Severity, TrainwiseError, warning
from trainwise.rundir import RunDir, git_revision, library_versions
from trainwise.train.diagnose import diagnose
from trainwise.train.evaluate import evaluate
from trainwise.train.monitor import GradNorms, StepMonitor, current_lr, unscaled
from trainwise.train.monitor_eval import (
    infer_task,
    mean_loss,
    one_row_per_prediction,
    rows_and_loss,
)

_OWN_FILES = ("history.jsonl", "findings.json", "report.html", "meta.json")
LIVE_DIAGNOSIS_SHARE = 0.01  # the diagnosis after an epoch is skipped while its last run took
# more than 1% of the time since: it reads the whole history (~18 us per step row), so over a
# long run of a small model it would otherwise grow to rival the epoch itself. Time here is
# this thread's CPU time: the share of the training thread's own work, whatever else runs in
# the process (wall time would let a busy process diagnose more often; bench/overhead.py
# times contenders taking turns in threads). Where the thread waits (a GPU, loader workers)
# its CPU time runs slower than the clock, so diagnoses come less often, never more.

# Printed as soon as found: events that happened.
LIVE_CODES = frozenset({"divergence", "loss_exploding", "gradient_spike", "gradient_dip",
                        "vanishing_gradients", "ordered_batches", "overfitting"})
# The rest judge where training ended (lr too low: "still falling steadily" is
# true of every healthy run halfway through) and are printed by close().


class Monitor:
    """Per-step signals and per-epoch evaluation and diagnosis for a user's own loop.

    run_dir: the run's folder (history.jsonl, findings.json, tensorboard/, report.html); files
    of an earlier Monitor run there are replaced (a `trainwise run` folder is refused: its
    results would be lost). None keeps everything in memory.
    log_every: steps between device->host transfers; layer_every: steps between per-layer
    gradient norms (0: never). task: "classification" or "regression"; None infers it from
    the first evaluation (integer targets and 2-D outputs: classification).
    """

    def __init__(self, run_dir: str | Path | None = None, *, log_every: int = 10,
                 layer_every: int = 50, task: str | None = None, num_classes: int | None = None,
                 tensorboard: bool = True, console: bool = True, report: bool = True):
        self.task, self.num_classes = task, num_classes
        self.console, self.make_report = console, report
        self.history: list[dict[str, Any]] = []
        self.num_steps, self.epoch = 0, 1
        self._steps = StepMonitor(log_every, layer_every)
        self._norms: tuple[int, GradNorms] | None = None  # (id(model), its norms)
        self._lr: float | None = None
        self._epoch_started = time.perf_counter()
        self._epoch_first_row = 0  # where this epoch's rows start in `history`
        self._reported: set[tuple[str, int | None]] = set()
        self._diagnosed: tuple[float, float] | None = None  # (thread CPU time, CPU s it took)
        self._closed = False
        self._misuse: list[Finding] = []  # how the loop calls the monitor, said once each
        self.run = _fresh_run(Path(run_dir)) if run_dir is not None else None
        self._tensorboard = None
        if self.run is not None and tensorboard:
            from trainwise.train.callbacks import TensorBoardLogger  # loads tensorboard

            self._tensorboard = TensorBoardLogger(self.run.tensorboard_dir)

    # the three calls in the loop ---------------------------------------------------------
    def step(self, loss: torch.Tensor | float, model: nn.Module | None = None,
             optimizer: torch.optim.Optimizer | None = None, *, batch_indices: Any = None,
             batch_size: int | None = None, lr: float | None = None,
             scaler: torch.amp.GradScaler | None = None) -> None:
        """Record one optimizer step; call it after `loss.backward()`, before `zero_grad()` and
        before any gradient clipping (clipping changes the gradients: afterwards their norm
        reads the threshold, and spikes go unseen).

        model: for the global and per-layer gradient norms. optimizer: for the learning rate,
        the highest among its groups (or pass `lr`). batch_indices: the batch's sample indices, kept
        only for the steps whose gradient norm spikes (they show up in the finding's
        evidence). scaler: with float16 autocast, your torch.amp.GradScaler (call this after
        `scaler.scale(loss).backward()`, before `scaler.step`): the gradient norms are
        unscaled (unless `scaler.unscale_` already ran this step: for the optimizer passed,
        or, when none is, for any; pass it when one scaler serves several) and the steps the
        scaler skips are marked "skipped", not diagnosed as divergence, as in `fit`.
        """
        self.num_steps += 1
        loss_t = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        if loss_t.numel() != 1:
            loss_t = loss_t.float().mean()
        elif loss_t.dim() or loss_t.dtype != torch.float32:  # each op costs 2-4 us a step
            loss_t = loss_t.float().reshape(())
        grad_norm = layer_norms = inverse_scale = None
        if model is not None:
            norms_of = self._grad_norms(model)
            grad_norm, layer_norms = norms_of(per_layer=self._steps.layer_due(self.num_steps))
            if not norms_of.had_gradients:  # not a vanishing gradient: nothing to measure
                grad_norm = layer_norms = None
                self._say_once(_no_gradients(self.num_steps))
            elif scaler is not None and scaler.is_enabled():
                self._steps.loss_scaled = True
                norms = unscaled(scaler, grad_norm, layer_norms)
                inverse_scale = norms[2]
                if not _unscaled_already(scaler, optimizer):
                    grad_norm, layer_norms = norms[0], norms[1]
        if lr is None and optimizer is not None:
            lr = current_lr(optimizer)
        self._lr = lr
        if batch_size is None and batch_indices is not None:
            batch_size = len(batch_indices)
        self._add_steps(self._steps.record(
            self.num_steps, self.epoch, loss_t, grad_norm, lr, layer_norms=layer_norms,
            batch_size=batch_size, batch_indices=batch_indices, inverse_scale=inverse_scale))

    def evaluate(self, model: nn.Module, loader: Any, loss_fn: Any) -> dict[str, Any]:
        """Evaluate on the validation loader ((x, y) or (x, y, ...) batches), end the epoch,
        diagnose the history so far; returns the epoch row. The shapes end_epoch takes, batch
        by batch (per-token outputs may differ in length between batches)."""
        return self._finish_epoch(self._metrics(*rows_and_loss(model, loader, loss_fn)))

    def end_epoch(self, val_loss: float | None = None, *, outputs: torch.Tensor | None = None,
                  targets: torch.Tensor | None = None, loss_fn: Any = None,
                  **metrics: float) -> dict[str, Any]:
        """End the epoch from your own evaluation: the validation outputs (N, C) and targets
        (N,) with `loss_fn` (all the metrics and the confidence histogram), or just `val_loss`
        and any `val_*` metrics you computed. Also taken: one logit per sample with
        BCEWithLogitsLoss (binary classification), per-token logits (N, T, C) with targets
        (N, T) (targets below 0, e.g. ignore_index, left out of the metrics), and a
        per-sample loss (its mean)."""
        row: dict[str, Any] = dict(metrics)
        if outputs is not None and targets is not None and loss_fn is not None:
            outputs, targets = outputs.detach(), targets.detach()
            loss = mean_loss(loss_fn, outputs, targets)  # the user's loss, on their shapes
            row.update(self._metrics(*one_row_per_prediction(outputs, targets, loss_fn), loss))
        elif val_loss is not None:
            row["val_loss"] = float(val_loss)
        return self._finish_epoch(row)

    # results -----------------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        """Diagnosis of the history so far (pure rules; see trainwise.diagnose), and how the
        loop calls the monitor (e.g. monitor_no_gradients)."""
        self._add_steps(self._steps.flush())
        found = diagnose(self.history, num_classes=self.num_classes)
        if self._misuse:  # "healthy" claims too much when no gradient was ever measured
            found = [f for f in found if f.code != "healthy"] + self._misuse
        return found

    def close(self) -> list[Finding]:
        """Flush, diagnose, write findings.json and report.html; returns the findings."""
        found = self.findings()
        if self.run is not None and not self._closed:
            self.run.write_findings(found)
            self.run.write_json("meta.json", self._meta())
            if self._tensorboard is not None:
                self._tensorboard.on_fit_end()
            if self.make_report:
                from trainwise.reporting import build_report  # loads matplotlib

                build_report(self.run.path)
        self._closed = True
        self._print(found)
        self._print_verdict(found)
        return found

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # internals ---------------------------------------------------------------------------
    def _grad_norms(self, model: nn.Module) -> GradNorms:
        if self._norms is None or self._norms[0] != id(model):
            self._norms = (id(model), GradNorms(model))
            self._steps.layer_names = self._norms[1].layer_names
        return self._norms[1]

    def _metrics(self, outputs: torch.Tensor, targets: torch.Tensor,
                 loss: torch.Tensor) -> dict[str, Any]:
        """The epoch's validation metrics from rows (N, C) / (N,) and the loss already taken."""
        task = self.task = self.task or infer_task(outputs, targets)
        if task == "classification" and self.num_classes is None:
            self.num_classes = int(outputs.shape[1])
        return evaluate(nn.Identity(), [(outputs, targets)], lambda *_: loss, task)

    def _say_once(self, finding: Finding) -> None:
        if all(f.code != finding.code for f in self._misuse):
            self._misuse.append(finding)
            self._print([finding])

    def _add_steps(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.history.extend(rows)
        if self.run is not None:
            self.run.append_history(rows)
        if self._tensorboard is not None:
            self._tensorboard.on_step_end(rows)

    def _finish_epoch(self, metrics: dict[str, Any]) -> dict[str, Any]:
        self._add_steps(self._steps.flush())
        # the epoch's step rows are all on the host now: no device-side running sum needed
        losses = [r["loss"] for r in self.history[self._epoch_first_row:]
                  if r.get("kind") == "step"]
        train_loss = sum(losses) / len(losses) if losses else None
        row = {"kind": "epoch", "epoch": self.epoch, "step": self.num_steps,
               "train_loss": train_loss, **metrics, "lr": self._lr,
               "seconds": time.perf_counter() - self._epoch_started}
        self.history.append(row)
        if self.run is not None:
            self.run.append_history([row])
        if self._tensorboard is not None:
            self._tensorboard.on_epoch_end(row)
            self._tensorboard.writer.flush()  # live: an epoch's curves show up right away
        self._diagnose_live()
        self.epoch += 1
        self._epoch_first_row = len(self.history)
        self._epoch_started = time.perf_counter()
        return row

    def _diagnose_live(self) -> None:
        started = time.thread_time()
        if self._diagnosed is not None:
            when, took = self._diagnosed
            if took > LIVE_DIAGNOSIS_SHARE * (started - when):
                return
        found = diagnose(self.history, num_classes=self.num_classes)
        if self.run is not None:
            self.run.write_findings(found)
        self._print([f for f in found if f.code in LIVE_CODES])
        self._diagnosed = (started, time.thread_time() - started)

    def _print(self, found: list[Finding]) -> None:
        """Each warning or error once, when it first appears."""
        new = [f for f in found if f.severity is not Severity.INFO
               and (f.code, f.step) not in self._reported]
        self._reported.update((f.code, f.step) for f in new)
        if self.console and new:
            from trainwise.console import print_findings  # loads rich

            print_findings(new)

    def _print_verdict(self, found: list[Finding]) -> None:
        if not self.console:
            return
        from trainwise.console import console  # loads rich

        problems = [f for f in found if f.severity is not Severity.INFO]
        verdict = (f"{len(problems)} training problem(s): {', '.join(f.code for f in problems)}"
                   if problems else found[-1].message.rstrip("."))
        where = f"; report: {self.run.report_path}" if self.run and self.make_report else ""
        console.print(f"trainwise.Monitor: {verdict}{where}")

    def _meta(self) -> dict[str, Any]:
        assert self.run is not None
        return {"name": self.run.path.name, "created": datetime.now().isoformat(timespec="seconds"),
                "source": "trainwise.Monitor", "versions": library_versions(),
                "git_revision": git_revision(),
                "data": {"task": self.task, "num_classes": self.num_classes}}


def _unscaled_already(scaler: torch.amp.GradScaler, optimizer: Any) -> bool:
    """Whether `scaler.unscale_(optimizer)` ran since the last update (the clipping pattern):
    GradScaler keeps that per optimizer, in a private dict (read defensively: an unknown
    layout counts as not unscaled)."""
    from torch.amp.grad_scaler import OptState

    states = getattr(scaler, "_per_optimizer_states", None)
    if not isinstance(states, dict):
        return False
    if optimizer is None:  # not passed: any optimizer unscaled this step (usually the only one)
        return any(isinstance(state, dict) and state.get("stage") is OptState.UNSCALED
                   for state in states.values())
    state = states.get(id(optimizer))  # .get: a defaultdict must not grow an entry here
    return isinstance(state, dict) and state.get("stage") is OptState.UNSCALED


def _fresh_run(path: Path) -> RunDir:
    """The folder, without the files of an earlier Monitor run (they would mix two runs).
    A folder whose meta.json says another tool wrote it (a `trainwise run`) is refused."""
    source = _written_by(path / "meta.json")
    if source not in (None, "trainwise.Monitor"):
        raise TrainwiseError(
            f"{path} holds {source}; a Monitor there would delete its history, findings and "
            "report files. Give the Monitor a folder of its own, e.g. "
            "trainwise.Monitor(\"runs/my-loop\").")
    for name in _OWN_FILES:
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "tensorboard", ignore_errors=True)
    return RunDir(path)


def _written_by(meta: Path) -> str | None:
    """What wrote a folder's meta.json, in words: "trainwise.Monitor" for a Monitor's, None
    when there is no such file."""
    try:
        text = meta.read_text()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("source") == "trainwise.Monitor":
        return "trainwise.Monitor"
    if isinstance(data, dict) and {"config_tag", "stage_seconds"} <= data.keys():
        return "the results of a `trainwise run` (its meta.json says so)"
    return "a meta.json that no trainwise.Monitor wrote"


def _no_gradients(step: int) -> Finding:
    return warning(
        "train", "monitor_no_gradients",
        f"monitor.step found no gradient on the model at step {step}, so no gradient norm is "
        "logged: it was called before loss.backward() or after optimizer.zero_grad().",
        "Call monitor.step(loss, model, optimizer) after loss.backward() and before "
        "optimizer.step() / zero_grad().", step=step)
