"""Measuring one batch size: peak memory and samples per second of real training steps.

On CUDA the caching allocator's own peak (`max_memory_allocated`) is the measurement. On the
CPU there is no resettable peak (ru_maxrss only ever grows), so the peak is estimated from
what a step must hold at once: parameters, gradients, optimizer state, the batch, and every
tensor autograd saves for the backward pass (counted by a saved-tensors hook, each storage
once). That misses backward temporaries, input-grad buffers and the allocator's overhead:
a small conv net's process memory grew 1.5-2.4x the estimate (audit s13 T9), more than
HEADROOM absorbs, so the finding calls it an estimate (batch_size.ESTIMATE_NOTE).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainwise.findings import TrainwiseError, error
from trainwise.model.input_tree import map_tensors, take, tensors
from trainwise.model.input_tree import num_rows as rows_of
from trainwise.train.batch_checks import forward_or_explain
from trainwise.tune.batch_size import (
    MAX_MICRO_BATCH,
    BatchSizeResult,
    Measurement,
    search_batch_size,
    sizes_to_try,
)
from trainwise.tune.no_trace import cuda_rng_kept, no_trace
from trainwise.tune.probe_errors import (
    ProbeStop,
    check_trainable,
    fresh_optimizer,
    nan_at_start,
    scalar_loss,
    wrong_dtype_stop,
)
from trainwise.tune.probe_precision import ProbeSteps

if TYPE_CHECKING:
    from lightning_fabric import Fabric

MAX_WARMUP_STEPS = 30  # before the measured step, one (allocation, kernel selection); under
# float16 until the loss scaler lets one through (it halves its scale after each overflow:
# from 65536 to the monitor's floor, MIN_LOSS_SCALE, in 26)
MIN_SECONDS = 0.3  # time at least this long (and >= 3 steps) for a stable samples/s
MAX_STEPS = 20
MEMINFO = "/proc/meminfo"
PROBE_LR = 1e-8  # speed does not depend on the lr; a tiny one cannot NaN


def memory_limit(device: torch.device) -> int:
    """Bytes a probe may use: free device memory on CUDA (plus what torch already holds),
    available RAM on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_allocated(device))
    available = _mem_available(MEMINFO)
    if available is not None:
        return available
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not on every platform (macOS)
        return 8 * 2**30


def _mem_available(meminfo: str) -> int | None:
    """Linux's MemAvailable: free memory plus the page cache and reclaimable buffers a new
    allocation can take. SC_AVPHYS_PAGES counts free pages only, on a machine that has read
    files often a small part of it. (psutil.virtual_memory().available reads this same line;
    it is not a dependency.) None where there is no /proc/meminfo."""
    try:
        with open(meminfo) as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # "MemAvailable:  123 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None  # kernels before 3.14 have no such line


def _tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def _state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad for p in params if p.grad is not None]
    states = [v for s in optimizer.state.values() for v in s.values()]
    return _tensor_bytes(model.parameters()) + _tensor_bytes(model.buffers()) \
        + _tensor_bytes(grads) + _tensor_bytes(states)


def _step(model, loss_fn, optimizer, x, y, saved: dict[int, int] | None,
          probe: ProbeSteps) -> tuple[bool, torch.Tensor]:
    """One training step: whether it was applied (False when a float16 loss scaler skipped
    it), and its loss (detached)."""
    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if saved is not None:  # one storage once: a view and its base share memory
            storage = tensor.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output = forward_or_explain(model, x, lambda inputs: probe.forward(model, inputs),
                                    explain=wrong_dtype_stop)  # a float64 model: check's words
        loss = scalar_loss(loss_fn(output, y), 0)
    optimizer.zero_grad(set_to_none=True)
    probe.backward(loss)
    return probe.step(optimizer), loss.detach()


def make_measure(model: nn.Module, loss_fn: Callable[..., torch.Tensor], x: Any,
                 y: torch.Tensor,
                 make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
                 fabric: Fabric | None = None) -> Callable[[int], Measurement]:
    """measure(batch_size): real steps on a deep copy of `model` with a fresh optimizer, on
    the first batch_size rows of (x, y), at `fabric`'s precision (mixed precision saves
    activations in 16 bits); the user's model and RNGs (the GPU's too) are left as found."""
    device = next(model.parameters()).device

    def measure(batch_size: int) -> Measurement:
        # x: a tensor, or a tuple/list/dict of them (several inputs): every one sliced
        xb = map_tensors(lambda t: t.to(device), take(x, slice(batch_size)))
        yb = y[:batch_size].to(device)
        with no_trace(model), cuda_rng_kept(device):  # dropout on a GPU draws from CUDA's
            probe = copy.deepcopy(model).train()
            optimizer = fresh_optimizer(make_optimizer(probe), probe)
            for group in optimizer.param_groups:
                group["lr"] = PROBE_LR
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            saved: dict[int, int] = {}
            probe_steps = ProbeSteps(fabric, device)
            _warm_up(probe, loss_fn, optimizer, xb, yb, probe_steps, batch_size)
            # then count the saved tensors of ONE step: keyed by address, two steps' would be
            # counted once or twice as the allocator reuses addresses
            _step(probe, loss_fn, optimizer, xb, yb, saved, probe_steps)
            peak = _peak(device, probe, optimizer, saved, xb, yb)
            speed = _samples_per_s(probe, loss_fn, optimizer, xb, yb, device, probe_steps)
            del probe, optimizer
        return Measurement(peak, speed, estimated=device.type != "cuda")

    return measure


def _warm_up(probe, loss_fn, optimizer, xb, yb, probe_steps: ProbeSteps,
             batch_size: int) -> None:
    """Step until one is applied: a float16 step the loss scaler skips creates no optimizer
    state (AdamW's 2 floats a weight) and runs ~2x faster than one that is applied. The
    first step's loss must be finite: at PROBE_LR a NaN there is the model's or the data's,
    and every size would then be timed on NaN arithmetic and the largest picked."""
    for number in range(MAX_WARMUP_STEPS):
        applied, loss = _step(probe, loss_fn, optimizer, xb, yb, None, probe_steps)
        if number == 0 and not math.isfinite(float(loss)):  # one sync, at the first step
            raise nan_at_start("batch_size_nan_at_start", float(loss), PROBE_LR)
        if applied:
            return
    raise TrainwiseError(
        f"The float16 loss scaler skipped all {MAX_WARMUP_STEPS} steps of the batch-size "
        f"probe at batch {batch_size}: the gradients are NaN or inf whatever the scale. Train "
        "at run.precision = \"bf16-mixed\" or \"32-true\", or check the model and data (check "
        "stage).")


def _peak(device, probe, optimizer, saved, xb, yb) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return _state_bytes(probe, optimizer) + sum(saved.values()) + _tensor_bytes([*tensors(xb), yb])


def _samples_per_s(probe, loss_fn, optimizer, xb, yb, device, probe_steps) -> float:
    steps, started = 0, time.perf_counter()
    while steps < MAX_STEPS and (steps < 3 or time.perf_counter() - started < MIN_SECONDS):
        _step(probe, loss_fn, optimizer, xb, yb, None, probe_steps)
        steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return steps * rows_of(xb) / (time.perf_counter() - started)


def find_batch_size(model: nn.Module, loss_fn: Callable[..., torch.Tensor], x: Any,
                    y: torch.Tensor, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
                    num_rows: int, fabric: Fabric | None = None) -> BatchSizeResult:
    """The batch-size search with real measurements on the model's device (at `fabric`'s
    precision); `x` (a tensor, or a tuple/list/dict of them for several inputs) and `y`
    hold at least MAX_MICRO_BATCH training rows (or all of them),
    `num_rows` the training set size.

    Problems (nothing to train, no training rows, a loss not finite at the first step) come
    back as error findings, with batch_size 0; `x` holding fewer rows than the sizes the
    search measures raises TrainwiseError."""
    limit = 0
    try:
        check_trainable(model, "batch_size_nothing_to_train")
        _check_rows(rows_of(x), num_rows)  # a tuple's len would count its inputs (G13)
        limit = memory_limit(next(model.parameters()).device)
        batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        return search_batch_size(make_measure(model, loss_fn, x, y, make_optimizer, fabric),
                                 memory_limit=limit, max_size=num_rows, batch_norm=batch_norm)
    except ProbeStop as stop:
        return BatchSizeResult(0, limit, findings=[stop.finding])


def _check_rows(rows: int, num_rows: int) -> None:
    """Each size is measured on x[:size]: fewer rows than the size would time a smaller
    batch under its name (40 rows "measured" as 64 and 128, with the same peak memory)."""
    if num_rows < 1:
        raise ProbeStop(error(
            "tune", "batch_size_no_rows",
            f"The training set has no rows (num_rows={num_rows}): there is no batch to "
            "measure, and no batch size to train with.",
            "Check the split (stage 'split'): the training part is empty; or data.max_samples "
            "keeps too few rows (stage 'data')."))
    needed = max(sizes_to_try(num_rows))
    if rows < needed:
        raise TrainwiseError(
            f"x holds {rows} rows, but on num_rows={num_rows} training rows the search "
            f"measures batches of up to {needed}: those would be timed on the same {rows} "
            f"rows. Pass at least {needed} training rows as x and y (e.g. x[:"
            f"{MAX_MICRO_BATCH}]), or num_rows=len(x) when x is the whole training set.")
