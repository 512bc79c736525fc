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
            if monitor.should_stop:                               # optional: NaN loss etc.
                break

The same history rows, findings, TensorBoard events and report as `trainwise run`. Nothing
syncs the device per step: the loss and gradient norms go to the host every `log_every` steps.
This module holds the calls in the order a loop makes them and the rows they record; how a
step's gradients are read is in monitor_gradients.py, what is diagnosed and printed (and when)
in monitor_findings.py.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, Findings, Severity
from trainwise.rundir import git_revision, library_versions, read_meta
from trainwise.train import monitor_misuse as misuse
from trainwise.train.dropout_rows import dropout_evidence
from trainwise.train.entry_checks import summed_loss
from trainwise.train.evaluate import evaluate
from trainwise.train.monitor import StepMonitor, current_lr
from trainwise.train.monitor_eval import (
    infer_task,
    mean_loss,
    one_row_per_prediction,
    rows_and_loss,
)
from trainwise.train.monitor_findings import MonitorFindings, one_line_verdict
from trainwise.train.monitor_folder import MONITOR_SOURCE, open_folder
from trainwise.train.monitor_gradients import StepGradients
from trainwise.train.monitor_targets import CALIBRATION_KEYS, target_findings
from trainwise.train.monitor_warmup import WarmupWatch


class Monitor:
    """Per-step signals and per-epoch evaluation and diagnosis for a user's own loop.

    run_dir: the run's folder (history.jsonl, findings.json, tensorboard/, report.html); None
    keeps everything in memory. A folder that already holds a Monitor run is refused unless
    told what to do with it: resume=True continues it (for a loop that resumes from its own
    checkpoint, saved at an epoch's end: the rows of an unfinished last epoch are dropped, and
    steps and epochs count on from the last finished one; on a new folder it starts a new run,
    so one script serves both), overwrite=True deletes it. A `trainwise run` folder is refused.
    log_every: steps between device->host transfers; layer_every: steps between per-layer
    gradient norms (0: never). task: "classification" or "regression"; None infers it from
    the first evaluation (integer targets and 2-D outputs: classification).

    `should_stop` turns True once the loss or gradient norm becomes NaN or inf (found at the
    next transfer, within `log_every` steps: more steps cannot help, so the loop may `break`)
    or a call of the loop is an error (targets outside a loss's range). A loss that exploded is
    said as "It may recover" and training goes on: the verdict at close() judges it.
    """

    def __init__(self, run_dir: str | Path | None = None, *, resume: bool = False,
                 overwrite: bool = False, log_every: int = 10, layer_every: int = 50,
                 task: str | None = None, num_classes: int | None = None,
                 tensorboard: bool = True, console: bool = True, report: bool = True):
        self.task, self.num_classes = task, num_classes
        self.console, self.make_report = console, report
        self.history: list[dict[str, Any]] = []
        self.num_steps, self.epoch = 0, 1
        self._steps = StepMonitor(log_every, layer_every)
        self._lr: float | None = None
        self._epoch_started = time.perf_counter()
        self._epoch_first_row = 0  # where this epoch's rows start in `history`
        self._accumulation = 1
        self._closed = False
        self._warmup: WarmupWatch | None = WarmupWatch()  # METHOD §4's large-batch warmup
        self.run, earlier = None, []
        if run_dir is not None:
            self.run, earlier = open_folder(Path(run_dir), resume=resume, overwrite=overwrite)
        self._found = MonitorFindings(self._steps, self.run, console)  # what it says, and when
        self._gradients = StepGradients(self._steps, self._found.say_once)
        if earlier:
            self._continue(earlier)
        self._tensorboard = None
        if self.run is not None and tensorboard:
            from trainwise.train.callbacks import TensorBoardLogger  # loads tensorboard

            self._tensorboard = TensorBoardLogger(self.run.tensorboard_dir)

    @property
    def should_stop(self) -> bool:
        """True once the loss became NaN or inf (divergence) or a loop call is an error: the
        finding, printed when found, says what to change before training again."""
        return self._found.stop

    # the three calls in the loop ---------------------------------------------------------
    def step(self, loss: torch.Tensor | float, model: nn.Module | None = None,
             optimizer: torch.optim.Optimizer | None = None, *, batch_indices: Any = None,
             batch_size: int | None = None, lr: float | None = None,
             scaler: torch.amp.GradScaler | None = None, accumulation: int = 1) -> None:
        """Record one optimizer step; call it after `loss.backward()`, before `zero_grad()` and
        before any gradient clipping (clipping changes the gradients: afterwards their norm
        reads the threshold, and spikes go unseen).

        model: for the global and per-layer gradient norms. optimizer: for the learning rate,
        the highest among its groups (or pass `lr`), and a check, once, that its weight decay
        spares biases and normalisation weights. batch_indices: the batch's sample indices, kept
        only for the steps whose gradient norm spikes (they show up in the finding's
        evidence). batch_size: the rows of this step's (micro-)batch (else
        len(batch_indices), or the first dimension of a per-sample loss): with it, an effective
        batch (batch_size x accumulation) above 256 whose lr does not rise over the first 10
        steps (no warmup) is warned about, once (METHOD §4).
        scaler: with float16 autocast, your torch.amp.GradScaler (call this after
        `scaler.scale(loss).backward()`, before `scaler.step`): the gradient norms are
        unscaled (unless `scaler.unscale_` already ran this step: for the optimizer passed,
        or, when none is, for any; pass it when one scaler serves several) and the steps the
        scaler skips are marked "skipped", not diagnosed as divergence, as in `fit`.
        accumulation: with gradient accumulation over K micro-batches, each loss divided by K
        before its backward, call step once per optimizer step (after the K-th backward) with
        that loss and accumulation=K: the loss is logged times K, at the scale of the
        validation loss.
        """
        self.num_steps += 1
        loss_t = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        if loss_t.numel() != 1:
            loss_t = loss_t.float().mean()
        elif loss_t.dim() or loss_t.dtype != torch.float32:  # each op costs 2-4 us a step
            loss_t = loss_t.float().reshape(())
        if accumulation != 1:
            self._accumulation = accumulation
            loss_t = loss_t * accumulation
        grad_norm = layer_norms = inverse_scale = None
        if model is not None:
            grad_norm, layer_norms, inverse_scale = self._gradients.measure(
                self.num_steps, model, optimizer, scaler)
        if lr is None and optimizer is not None:
            lr = current_lr(optimizer)
        self._lr = lr
        if batch_size is None and batch_indices is not None:
            batch_size = len(batch_indices)
        if self._warmup is not None:  # the first MIN_WARMUP_STEPS steps only
            self._watch_warmup(batch_size, lr, loss, accumulation)
        self._add_steps(self._steps.record(
            self.num_steps, self.epoch, loss_t, grad_norm, lr, layer_norms=layer_norms,
            batch_size=batch_size, batch_indices=batch_indices, inverse_scale=inverse_scale))

    def evaluate(self, model: nn.Module, loader: Any, loss_fn: Any) -> dict[str, Any]:
        """Evaluate on the validation loader ((x, y) or (x, y, ...) batches), end the epoch,
        diagnose the history so far; returns the epoch row. The shapes end_epoch takes, batch
        by batch (per-token outputs may differ in length between batches)."""
        self._check_loss_fn(loss_fn)
        outputs, targets, loss, found = rows_and_loss(model, loader, loss_fn)
        # the heavy dropout layers, for the diagnosis to name (heavy_regularisation)
        return self._finish_epoch({**self._checked_metrics(outputs, targets, loss, found),
                                   **dropout_evidence(model)})

    def end_epoch(self, val_loss: float | None = None, *, outputs: torch.Tensor | None = None,
                  targets: torch.Tensor | None = None, loss_fn: Any = None,
                  **metrics: float) -> dict[str, Any]:
        """End the epoch from your own evaluation: the validation outputs (N, C) and targets
        (N,) with `loss_fn` (all the metrics and the confidence histogram), or just `val_loss`
        and any `val_*` metrics you computed. Also taken: one logit per sample with
        BCEWithLogitsLoss (binary classification), one logit per label (N, K) with multi-hot
        targets (N, K) under BCEWithLogitsLoss (multi-label: each label scored as a binary
        prediction), class probabilities (N, C) as targets of CrossEntropyLoss (soft labels:
        scored against their argmax), per-token logits (N, T, C) with targets (N, T)
        (targets below 0, e.g. ignore_index, left out of the metrics), and a per-sample
        loss (its mean)."""
        row: dict[str, Any] = dict(metrics)
        if outputs is not None and targets is not None and loss_fn is not None:
            self._check_loss_fn(loss_fn)
            outputs, targets = outputs.detach(), targets.detach()
            loss = mean_loss(loss_fn, outputs, targets)  # the user's loss, on their shapes
            found = target_findings(outputs, targets, loss_fn)
            row.update(self._checked_metrics(
                *one_row_per_prediction(outputs, targets, loss_fn), loss, found))
        elif val_loss is not None:
            row["val_loss"] = float(val_loss)
        return self._finish_epoch(row)

    # results -----------------------------------------------------------------------------
    def findings(self) -> Findings:
        """Diagnosis of the history so far (pure rules; see trainwise.diagnose), and how the
        loop calls the monitor (e.g. monitor_no_gradients, monitor_no_validation); a Findings,
        which a notebook shows as a table (review s16 VN7)."""
        self._add_steps(self._steps.flush())
        return Findings(self._found.all_found(self.history, self.num_classes))

    def close(self) -> Findings:
        """Flush, diagnose, write findings.json and report.html; returns the findings."""
        found = self.findings()
        verdict = one_line_verdict(found)
        if self.run is not None and not self._closed:
            self.run.write_findings(found)
            self.run.write_json("meta.json", self._meta(verdict))
            if self._tensorboard is not None:
                self._tensorboard.on_fit_end()
            if self.make_report:
                from trainwise.reporting import build_report  # loads matplotlib

                build_report(self.run.path)
        self._closed = True
        self._found.print_new(found)
        where = f"; report: {self.run.report_path}" if self.run and self.make_report else ""
        self._found.print_line(verdict + where)
        return found

    def __repr__(self) -> str:
        """Where it writes and how far the loop got; no diagnosis (findings() runs one): the
        default <... object at 0x7f...> said nothing in a notebook (user audit s16 N15)."""
        folder = f"'{self.run.path}'" if self.run is not None else "None (in memory)"
        epochs = [r for r in self.history if r.get("kind") == "epoch"]
        last = epochs[-1].get("val_loss") if epochs else None
        val = f", last val_loss {last:.4g}" if isinstance(last, int | float) else ""
        state = ", closed" if self._closed else ", should_stop" if self.should_stop else ""
        counts = ", ".join(f"{n} {word}{'' if n == 1 else 's'}"
                           for n, word in ((self.num_steps, "step"), (len(epochs), "epoch")))
        return (f"<Monitor run_dir={folder}: {counts}{val}{state}; .findings() diagnoses, "
                ".close() writes the run>")

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        """On an exception in the loop: its finding instead of a verdict on the training, the
        files written from what was collected, and the exception raised on (returns None)."""
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            self.close()
            return
        if isinstance(exc, KeyboardInterrupt):  # the user's decision, not an error (s16 N12)
            self._found.interrupted = (self.num_steps, self.epoch)
        else:
            self._found.raised = [misuse.loop_raised(exc, self.num_steps, self.epoch)]
        try:
            self.close()
        except Exception as failed:  # the loop's own exception is the one to see
            print(f"trainwise.Monitor: could not write the run after the loop raised: "
                  f"{failed!r}", file=sys.stderr)

    # internals ---------------------------------------------------------------------------
    def _continue(self, rows: list[dict[str, Any]]) -> None:
        """Go on from an earlier run's finished epochs (open_folder kept up to an epoch row)."""
        assert self.run is not None
        self.history = rows
        last = rows[-1]
        self.num_steps, self.epoch = int(last["step"]), int(last["epoch"]) + 1
        self._epoch_first_row, self._lr = len(rows), last.get("lr")
        self._warmup = None  # a continued run's first steps are not the run's first
        # zeros from here on are measured, not a misplaced call
        self._gradients.nonzero_norm_seen = True
        data = read_meta(self.run.path).get("data") or {}
        self.task = self.task or data.get("task")
        self.num_classes = self.num_classes or data.get("num_classes")
        self._found.print_line(f"continuing {self.run.path} at epoch {self.epoch}, step "
                               f"{self.num_steps + 1} ({self.epoch - 1} epoch(s) kept)")

    def _watch_warmup(self, batch_size: int | None, lr: float | None, loss: Any,
                      accumulation: int) -> None:
        """Feed the warmup watch; a per-sample loss (N, ...) tells the batch size when
        batch_size was not given."""
        assert self._warmup is not None
        if batch_size is None and isinstance(loss, torch.Tensor) and loss.dim() >= 1:
            batch_size = int(loss.shape[0])
        found = self._warmup.add(batch_size, lr, accumulation)
        if found is not None:
            self._found.say_once(found)
        if self._warmup.done:
            self._warmup = None

    def _check_loss_fn(self, loss_fn: Any) -> None:
        summed = summed_loss(loss_fn, "train", "monitor.evaluate / end_epoch")
        if summed is not None:  # said once (say_once): a check of the object, not per epoch
            self._found.say_once(summed)

    def _checked_metrics(self, outputs: torch.Tensor, targets: torch.Tensor,
                         loss: torch.Tensor, found: list[Finding]) -> dict[str, Any]:
        """_metrics, after saying (once each) what target_findings found; only the loss when
        one is an error (targets the loss cannot learn from: their metrics would mislead)."""
        for finding in found:
            self._found.say_once(finding)
        if any(f.severity is Severity.ERROR for f in found):
            return {"val_loss": float(loss)}
        row = self._metrics(outputs, targets, loss)
        if any(f.code == "soft_label_metrics" for f in found):
            row = {key: value for key, value in row.items() if key not in CALIBRATION_KEYS}
        return row

    def _metrics(self, outputs: torch.Tensor, targets: torch.Tensor,
                 loss: torch.Tensor) -> dict[str, Any]:
        """The epoch's validation metrics from rows (N, C) / (N,) and the loss already taken."""
        task = self.task = self.task or infer_task(outputs, targets)
        if task == "classification" and self.num_classes is None:
            self.num_classes = int(outputs.shape[1])
        return evaluate(nn.Identity(), [(outputs, targets)], lambda *_: loss, task)

    def _add_steps(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._gradients.blank_zero_norms(rows)
        self.history.extend(rows)
        if self.run is not None:
            self.run.append_history(rows)
        if self._tensorboard is not None:
            self._tensorboard.on_step_end(rows)
        self._found.after_steps(self.history, self.num_classes)

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
        scaled = misuse.scaled_loss(row, self._accumulation, losses) if self.epoch == 1 else None
        if scaled is not None:
            self._found.say_once(scaled)
        self._found.after_epoch(self.history, self.num_classes)
        self.epoch += 1
        self._epoch_first_row = len(self.history)
        self._epoch_started = time.perf_counter()
        return row

    def _meta(self, verdict: str) -> dict[str, Any]:
        assert self.run is not None
        return {"name": self.run.path.name, "created": datetime.now().isoformat(timespec="seconds"),
                "source": MONITOR_SOURCE, "verdict": verdict, "versions": library_versions(),
                "git_revision": git_revision(),
                "data": {"task": self.task, "num_classes": self.num_classes}}

