"""The training loop: one function, read top to bottom, every hook call written out.

Runs on Lightning Fabric, so the same code serves one CPU, one GPU, or N processes on several
machines: Fabric places the model and batches and does the backward pass (DDP averages the
gradients); we call `optimizer.step()`. On one device in 32-bit, where Fabric's wrappers have
nothing to do, the step calls the module and optimizer they wrap (`hot_path`). A loader batch
is one optimizer step's batch whatever the number of processes (train/sharding.py slices it)
and however many micro-batches it is accumulated from, so the effective batch, the step count
and the schedule never change.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.plugins.precision.precision import Precision
from lightning_fabric.strategies import SingleDeviceStrategy
from torch import nn

from trainwise.distributed import gather_objects, reduce_grad_norm, reduce_mean
from trainwise.findings import TrainwiseError
from trainwise.model.kept_state import module_modes, restore_modes
from trainwise.train.batch_checks import raise_step_error, scalar_loss
from trainwise.train.compiled import setup_model
from trainwise.train.dropout_rows import dropout_evidence
from trainwise.train.entry_checks import check_fit_entry
from trainwise.train.evaluate import inputs_and_targets, on_outputs_device
from trainwise.train.fit_arguments import check_fit_arguments
from trainwise.train.fit_inputs import (
    check_accumulation,
    check_batch_norm,
    check_val_loader,
    scheduler_steps,
)
from trainwise.train.fit_task import fit_task
from trainwise.train.grad_norms import GradNorms, loss_scaler, unscaled
from trainwise.train.home_device import back_on_the_cpu
from trainwise.train.interrupted import state_kept_on_interrupt
from trainwise.train.monitor import StepMonitor, current_lr
from trainwise.train.nonfinite_inputs import nonfinite_inputs
from trainwise.train.position import EpochProgress, inner_loader
from trainwise.train.resume import Checkpoints
from trainwise.train.sharding import evaluate_across_ranks, setup_loader


@dataclass
class TrainState:
    """What callbacks see and may change: set `should_stop` to end training (Keras style)."""

    step: int = 0
    epoch: int = 0
    should_stop: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    nonfinite: dict[str, Any] | None = None  # the step, epoch and sample indices of a NaN/inf
    resumed_from_step: int | None = None
    checkpoint_step: int | None = None  # the step of the last checkpoint written
    model: Any = None  # the module as Fabric set it up: evaluate with it (under FSDP the
    # user's module holds only this process's flat shards)

    def __repr__(self) -> str:
        """A summary: the default printed every history row and the whole model."""
        epochs = [row for row in self.history if row.get("kind") == "epoch"]
        last = {k: round(v, 4) for k, v in epochs[-1].items() if k.endswith("loss")
                and isinstance(v, float)} if epochs else {}
        stopped = f", stop_reason={self.stop_reason!r}" if self.stop_reason else ""
        nonfinite = f", nonfinite at step {self.nonfinite.get('step')}" if self.nonfinite else ""
        return (f"TrainState(step={self.step}, epoch={self.epoch}{stopped}{nonfinite}, "
                f"last epoch {last}, history={len(self.history)} rows in .history)")

    def plot(self, num_classes: int | None = None) -> Any:
        """The report's training curves of .history in one matplotlib Figure (history_figure)."""
        from trainwise.reporting.training_figures import history_figure  # matplotlib when asked
        return history_figure(self.history, num_classes=num_classes)


def emit(callbacks: Iterable[Any], event: str, **kwargs: Any) -> None:
    """Call `event` on every callback that has it, passing only the arguments it takes."""
    bind(callbacks, event)(**kwargs)


def bind(callbacks: Iterable[Any], event: str) -> Callable[..., None]:
    """`emit(callbacks, event, ...)` with the method and signature look-ups done once, for the
    event that fires every step (4 callbacks: ~8 us a step looked up each time)."""
    hooks = [(method, _parameters(getattr(method, "__func__", method)))
             for method in (getattr(callback, event, None) for callback in callbacks)
             if method is not None]

    def call(**kwargs: Any) -> None:
        state = kwargs.get("state")
        for method, accepted in hooks:
            method(**{k: v for k, v in kwargs.items() if k in accepted})
            if state is not None and state.should_stop and not state.stop_reason:
                # a callback that stops without saying why is still named (audit s12 L6)
                owner = getattr(method, "__self__", method)
                state.stop_reason = f"stopped by {type(owner).__name__}"
    return call


@functools.lru_cache(maxsize=256)
def _parameters(function: Any) -> frozenset[str]:
    # inspect.signature costs ~30 us a call: per step and callback, ~2% of a small CNN's step
    return frozenset(inspect.signature(function).parameters)


Backward = Callable[[torch.Tensor], None]


def hot_path(fabric: Fabric, model: Any, optimizer: Any) -> tuple[Any, Backward, Any]:
    """(the module to call forward, the backward to run, the optimizer to step) per step.

    Fabric's module, backward and optimizer wrappers do real work under mixed precision, DDP
    and FSDP; on one device in 32-bit they only add Python (input and output conversions that
    return their argument, a backward hook on every output, three layers of step dispatch):
    ~170 us a step, 4-5% of the small CNN's step (docs/benchmarks.md, issue 5 notes). There
    the step calls what they wrap; `model` and `optimizer` stay wrapped for everything else.
    """
    direct = (fabric.world_size == 1 and type(fabric.strategy) is SingleDeviceStrategy
              and type(fabric.strategy.precision) is Precision
              and not any(callable(getattr(callback, "on_after_optimizer_step", None))
                          for callback in fabric._callbacks))
    if not direct:
        return model, fabric.backward, optimizer
    # _forward_module, not .module: after torch.compile it is the compiled one
    return model._forward_module, torch.Tensor.backward, optimizer.optimizer


_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


@contextlib.contextmanager
def cheap_cuda_checks(device: torch.device) -> Iterator[None]:
    """While training on the CPU of a machine where NVML sees no GPU, torch asks the CUDA
    runtime whether CUDA is available (~3 us) instead of NVML (~80 us).

    Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1, so that asking never initialises
    CUDA (which would poison fork()); with CUDA never initialised torch then loads NVML again
    on every ask, and Adam and AdamW ask on every step: 2% of the small CNN's step. With no GPU
    in sight there is no CUDA state for fork() to inherit; the variable is put back after.
    """
    if device.type != "cpu" or os.environ.get(_NVML_CHECK) != "1" or torch.cuda.is_available():
        yield
        return
    del os.environ[_NVML_CHECK]
    try:
        yield
    finally:
        os.environ[_NVML_CHECK] = "1"


def micro_batches(x: torch.Tensor, y: torch.Tensor,
                  accumulate: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, bool]]:
    """(x_i, y_i, weight_i, is_last): `accumulate` slices whose weighted losses sum to the
    batch mean (weight_i = len(y_i) / len(y), exact even when the slices differ in size)."""
    if accumulate == 1:
        yield x, y, 1.0, True
        return
    pieces = [(xi, yi) for xi, yi in zip(_split_rows(x, accumulate), y.tensor_split(accumulate),
                                         strict=True) if len(yi)]
    for number, (xi, yi) in enumerate(pieces):
        yield xi, yi, len(yi) / len(y), number == len(pieces) - 1


def _split_rows(x: Any, parts: int) -> list[Any]:
    """`x` cut into `parts` slices of rows, as tensor_split cuts a tensor: a tensor, or a dict,
    tuple or list of them (a model taking several inputs), each slice of the same kind."""
    if isinstance(x, torch.Tensor):
        return list(x.tensor_split(parts))
    if isinstance(x, dict):
        cut = {key: _split_rows(value, parts) for key, value in x.items()}
        return [{key: cut[key][i] for key in x} for i in range(parts)]
    if isinstance(x, (tuple, list)):
        cut_items = [_split_rows(value, parts) for value in x]
        return [type(x)(items[i] for items in cut_items) for i in range(parts)]
    raise TrainwiseError(f"a batch's inputs are a {type(x).__name__}, which cannot be cut into "
                         "micro-batches: give tensors (or dicts, tuples of them), or a batch "
                         "size that needs no accumulation (train.accumulate_grad_batches = 1, "
                         "batch size <= 256).")


def accumulate(fabric: Fabric, model: Any, forward: Any, backward: Backward, loss_fn: nn.Module,
               x: torch.Tensor, y: torch.Tensor, num_micro: int, step: int = 0) -> torch.Tensor:
    """Forward and backward over `num_micro` slices of the batch; returns the batch's mean loss
    (detached). DDP syncs the gradients once, in the last slice's backward. A loss that is not
    one number is refused with find_lr's message, naming `step`."""
    step_loss = torch.zeros((), device=fabric.device)
    for x_micro, y_micro, weight, is_last in micro_batches(x, y, num_micro):
        with fabric.no_backward_sync(model, enabled=not is_last):
            # numel() reads metadata (~0.1 us) against a step of > 256 rows (MAX_MICRO_BATCH)
            loss = scalar_loss(loss_fn(forward(x_micro), y_micro), step) * weight
            backward(loss)
        step_loss += loss.detach()
    return step_loss


def sample_indices(fabric: Fabric, progress: EpochProgress, step: int) -> list[int] | None:
    """The samples of this epoch's step `step` (replayed from the sampler, every process's)."""
    per_rank = gather_objects(fabric, progress.batch_indices(step - progress.first_step - 1))
    return None if any(part is None for part in per_rank) else sum(per_rank, [])


def stop_if_nonfinite(fabric: Fabric, state: TrainState, monitor: StepMonitor,
                      progress: EpochProgress) -> None:
    """On the first non-finite loss or gradient norm: stop, and record the samples of that
    step (replayed from the sampler, gathered from every process)."""
    step = monitor.first_nonfinite_step
    if step is None or state.nonfinite is not None:
        return
    batch_index = step - progress.first_step - 1
    indices = sample_indices(fabric, progress, step)
    state.should_stop, state.stop_reason = True, f"non-finite loss or gradient at step {step}"
    state.nonfinite = {"step": step, "epoch": progress.epoch, "batch_in_epoch": batch_index,
                       "sample_indices": indices}
    # the batch's own NaN/inf cells, read back from the data set: the diagnosis then leads
    # with the data stage, not detect_anomaly (audit s15 B16)
    bad_inputs = nonfinite_inputs(getattr(inner_loader(progress.loader), "dataset", None),
                                  indices)
    if bad_inputs:
        state.nonfinite["nonfinite_inputs"] = bad_inputs
        for row in state.history:
            if row.get("kind") == "step" and row.get("step") == step:
                row["nonfinite_inputs"] = bad_inputs


def model_device(model: nn.Module) -> dict[str, Any]:
    """Fabric's accelerator and devices for where the model's parameters are now: a Fabric
    on another device would move the user's model there (a CPU one moved a GPU model back)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if device.type in ("cuda", "mps"):
        return {"accelerator": device.type, "devices": [device.index or 0]}
    return {"accelerator": "cpu", "devices": 1}


def default_device(model: nn.Module) -> dict[str, Any]:
    """For a `fit` given no Fabric: the model's GPU, else Fabric's "auto" choice (a GPU when
    there is one), as `trainwise run` chooses with run.accelerator = "auto"."""
    found = model_device(model)
    return {"accelerator": "auto", "devices": 1} if found["accelerator"] == "cpu" else found


def fit(
    model: nn.Module,
    train_loader: Any,
    val_loader: Any,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    max_epochs: int,
    task: str | None = None,
    scheduler: Any = None,
    fabric: Fabric | None = None,
    callbacks: Iterable[Any] = (),
    log_every: int = 10,
    layer_every: int = 50,
    grad_clip: float = 0.0,
    accumulate_grad_batches: int = 1,
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 0,
    checkpoint_extra: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
    target_units: Any = None,
    scheduler_interval: str = "step",
) -> TrainState:
    """Train `model`, evaluating on `val_loader` after every epoch (required: a missing or
    empty one is refused; make one with trainwise.split).

    `accumulate_grad_batches=k` cuts each loader batch into k micro-batches, forward and
    backward on each, then one optimizer step: memory only, the step, the effective batch
    (the loader's batch_size) and the step count are unchanged. Unlike Lightning's
    accumulate_grad_batches (k loader batches per step, a k-times larger effective batch):
    for that, raise the DataLoader's batch_size. k above the loader's batch_size is refused.

    Callback events: on_fit_start, on_step_end(rows), on_epoch_end(row), on_fit_end; a callback
    with state_dict/load_state_dict is checkpointed. One that sets state.should_stop without a
    state.stop_reason gets "stopped by <its class name>". The scheduler, if any, is stepped once per
    optimizer step (`scheduler_interval="step"`, Lightning's default: OneCycleLR or a cosine
    over the total steps) or once per epoch, after the epoch's evaluation
    (`scheduler_interval="epoch"`: StepLR(step_size=1), MultiStepLR and CosineAnnealingLR
    written in epochs, which stepped per batch would decay once per batch instead: one that
    ends within the first epoch under "step" is warned about, train/fit_inputs.py).
    ReduceLROnPlateau is refused (it needs the validation loss: step it in an on_epoch_end
    callback with row["val_loss"]). Step rows carry per-layer gradient norms every `layer_every`
    steps (0: never), and the rows of a gradient spike or a NaN their batch's `sample_indices`.
    With `checkpoint_path`, the full training state is written there at the start, every
    `checkpoint_every` optimizer steps (0: never mid-epoch) and at each epoch end, never after a
    non-finite loss; `resume_state` (a loaded checkpoint) continues it. Without `fabric`,
    training runs on one device: the model's own when it is on a GPU (or MPS), else Fabric's
    "auto" choice (a GPU when there is one), as `trainwise run` chooses (run.accelerator); a
    model fit moved off the CPU goes back there at the end, with its optimizer's state. A
    loss_fn holding tensors (class weights) is run with them on the outputs' device, in the
    training steps and in evaluation on the host alike (evaluate.on_outputs_device).
    `task` ("classification" / "regression") left None is read from one validation batch, as
    the Monitor reads it, and shapes evaluation cannot score stop here (train/fit_task.py);
    whatever the task, check()'s loss rules run on that batch (a (B, 1) vs (B,) broadcast, labels
    beyond the output width: train/first_batch.py; trainwise's own runs, checked before, skip
    the read: fit_task.loss_rules_checked) and the arguments' kinds are checked first
    (train/fit_arguments.py). A Ctrl-C re-raises with the TrainState so far as `.state`.
    `target_units` (regression): undoes what was done to the targets for training, so that the
    validation MAE, RMSE and R^2 are in the target's own units (evaluate.evaluate).
    Train/eval modes: a model given in train mode trains with each submodule in the mode it
    came in (`model.train(); model.backbone.eval()` keeps a frozen backbone's BatchNorm
    statistics and dropout off); a model given in eval mode trains all in train mode.
    Evaluation puts every module's own mode back after; modes a callback sets (a backbone
    unfrozen into train mode) are kept, and only a model left wholly in eval trains in the
    modes it came in again at the next epoch. A torch.compile'd model trains
    through its compilation, compiled before or after lightning_fabric was imported
    (train/compiled.py).
    """
    check_fit_arguments(train_loader, val_loader, optimizer, loss_fn, max_epochs)
    step_scheduler, epoch_scheduler = scheduler_steps(
        scheduler, scheduler_interval, train_loader, max_epochs if resume_state is None else None)
    check_val_loader(val_loader)
    check_fit_entry(model, optimizer, loss_fn)  # the user's own objects, before Fabric wraps them
    # the modes the user set (a frozen backbone in eval) are the ones it trains in, set once:
    # evaluation puts them back itself, and a callback's own (unfreezing) stay (review s14 VT3)
    if not model.training:
        model.train()
    user_modes = module_modes(model)
    with back_on_the_cpu(model, optimizer, device_chosen_by_fit=fabric is None):
        fabric = fabric or Fabric(**default_device(model))
        check_accumulation(train_loader, accumulate_grad_batches, fabric.world_size)
        check_batch_norm(model, train_loader, accumulate_grad_batches, fabric.world_size)
        model, optimizer = setup_model(fabric, model, optimizer)  # also a compiled model
        forward, backward, step_optimizer = hot_path(fabric, model, optimizer)
        # before a step, not after an epoch; from the user's own loss, whose type says the task
        # (on_outputs_device's wrapper of a pos_weight BCE would pass for a regression loss)
        task, *labels = fit_task(model, val_loader, loss_fn, task)  # and check()'s loss rules
        loss_fn = on_outputs_device(loss_fn)
        train_loader = setup_loader(fabric, train_loader, train=True)
        val_loader = setup_loader(fabric, val_loader, train=False)
        callbacks = list(callbacks)
        on_step_end = bind(callbacks, "on_step_end")
        state = TrainState(model=model)
        progress = EpochProgress(train_loader, fabric.device)
        # per-layer every `layer_every` steps; spikes get their samples
        grad_norms = GradNorms(model)
        scaler = loss_scaler(fabric)  # float16: gradients are scaled until the optimizer step
        monitor = StepMonitor(log_every, layer_every, grad_norms.layer_names,
                              locate=lambda step: sample_indices(fabric, progress, step),
                              loss_scaled=scaler is not None)
        optimizer.zero_grad(set_to_none=True)
        checkpoints = Checkpoints(fabric, checkpoint_path, checkpoint_every, checkpoint_extra or {},
                                  model=model, optimizer=optimizer, scheduler=scheduler,
                                  callbacks=callbacks, state=state, progress=progress)
        checkpoints.begin(resume_state)  # restores it, or writes the step-0 checkpoint
        emit(callbacks, "on_fit_start", state=state, model=model, optimizer=optimizer)
        loss = None  # the last forward's loss: a failed backward's error names its shape

        # Ctrl-C: the state so far goes out on the KeyboardInterrupt (audit s16 N19)
        with cheap_cuda_checks(fabric.device), state_kept_on_interrupt(state, monitor):
            while progress.epoch <= max_epochs and not state.should_stop:
                epoch = state.epoch = progress.epoch
                if not any(module.training for module in model.modules()):
                    model.train()  # left wholly in eval (a callback): the user's modes again,
                    restore_modes(user_modes)  # a frozen backbone back in eval (audit s14 G5)
                started = time.perf_counter()
                lr = current_lr(step_optimizer)  # an epoch resumed at its end runs no step
                for batch in progress.start_epoch(epoch, state.step):  # resumed: skips done ones
                    x, y = inputs_and_targets(batch)
                    try:  # costs nothing until it raises (Python 3.11's zero-cost try)
                        if accumulate_grad_batches == 1:
                            loss = loss_fn(forward(x), y)
                            backward(loss)
                            step_loss = loss.detach()
                        else:
                            step_loss = accumulate(fabric, model, forward, backward, loss_fn, x, y,
                                                   accumulate_grad_batches, state.step + 1)
                    except (RuntimeError, IndexError) as failure:  # as find_lr, check say it
                        raise_step_error(failure, model, x, loss, state.step + 1, y, *labels)
                        raise
                    grad_norm, layer_norms, inverse_scale = unscaled(scaler, *grad_norms(
                        per_layer=monitor.layer_due(state.step + 1)))
                    grad_norm = reduce_grad_norm(fabric, grad_norm)  # (), no host sync
                    if grad_clip > 0:
                        fabric.clip_gradients(model, optimizer, max_norm=grad_clip,
                                              error_if_nonfinite=False)
                    # the lr this step uses: read after step_scheduler() it is the next step's
                    # (audit s14 G2: one-cycle warm-up rows were one step ahead)
                    lr = current_lr(step_optimizer)
                    step_optimizer.step()
                    step_optimizer.zero_grad(set_to_none=True)
                    step_scheduler()
                    state.step += 1
                    progress.batches_done += 1
                    progress.loss_sum += step_loss
                    rows = monitor.record(state.step, epoch, reduce_mean(fabric, step_loss),
                                          grad_norm, lr,
                                          layer_norms=layer_norms, batch_size=len(y),
                                          inverse_scale=inverse_scale)
                    state.history.extend(rows)
                    on_step_end(state=state, rows=rows)
                    # flush first: only steps known finite are saved
                    if checkpoints.due(state.step):
                        rows = monitor.flush()
                        state.history.extend(rows)
                        on_step_end(state=state, rows=rows)
                    stop_if_nonfinite(fabric, state, monitor, progress)
                    checkpoints.save_if_due(state.step)
                    if state.should_stop:
                        break

                rows = monitor.flush()
                state.history.extend(rows)
                on_step_end(state=state, rows=rows)
                stop_if_nonfinite(fabric, state, monitor, progress)
                loss_sum = float(reduce_mean(fabric, progress.loss_sum))
                row = {"kind": "epoch", "epoch": epoch, "step": state.step,
                       "train_loss": loss_sum / max(progress.batches_done, 1),
                       **evaluate_across_ranks(fabric, model, val_loader, loss_fn, task,
                                                target_units=target_units),
                       **dropout_evidence(model),  # names heavy dropout (heavy_regularisation)
                       "lr": lr, "seconds": time.perf_counter() - started}
                state.history.append(row)
                emit(callbacks, "on_epoch_end", state=state, row=row, model=model)
                # after the epoch row, whose lr is the one the epoch's last step used (per step
                # or per epoch alike; read now, a per-step schedule would show the next epoch's)
                epoch_scheduler()
                progress.finish_epoch()
                checkpoints.save()  # not after a non-finite loss: last.pt stays the last good state

        emit(callbacks, "on_fit_end", state=state, model=model)
        return state
