"""Per-step signals (loss, global and per-layer gradient norms, learning rate, throughput)
without a per-step sync.

The loss and gradient norms stay on the device as tensors; every `log_every` steps they are
concatenated and moved to the host in one transfer. A per-step `.item()` costs about 12% of
a small CNN's step time on the CPU (measured in ../shared/bench/peers_overhead.py).
Per-layer norms (measured by grad_norms.GradNorms with the same fused `_foreach_norm` as the
global norm) come every `layer_every` steps and ride along in that transfer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainwise.train.diagnose_dip import DIP_RATIO
from trainwise.train.diagnose_grad import SPIKE_MADS, SPIKE_MIN_PRIOR, SPIKE_RATIO, SPIKE_WINDOW

MAX_INDEXED_ROWS = 50  # rows that carry sample_indices: spikes are rare; a flood is not news
INDEXED_SKIPS = 3  # float16 steps skipped after the first applied one whose samples are kept
MIN_LOSS_SCALE = 2.0**-10  # a float16 skip at a loss scale at or below this is a failure: see
# StepMonitor. Below 1 the scaler still has a use (float16's own range, 65504, can overflow
# with gradients that are large but real), so the floor is lower; from the default 65536 a
# gradient that is NaN or inf whatever the scale stops the run after 26 skips
Locate = Callable[[int], "list[int] | None"]  # step -> sample indices of that step's batch


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The highest lr among the groups: the one a schedule's peak and the range test refer
    to (a backbone at 1e-4 beside a head at 1e-2 reads 1e-2)."""
    return max(float(group["lr"]) for group in optimizer.param_groups)


@dataclass(slots=True)  # one per step: slots make it ~2x cheaper to build
class _Pending:
    step: int
    epoch: int
    loss: torch.Tensor
    grad_norm: torch.Tensor | None
    lr: float | None
    layer_norms: torch.Tensor | None
    batch_size: int | None
    batch_indices: Any
    interval: float | None  # seconds since the previous step of the same epoch
    inverse_scale: torch.Tensor | None  # float16: 1 / the loss scale of the step's backward


class StepMonitor:
    """Buffers per-step tensors; every `log_every` steps `flush()` returns history rows.

    `locate(step)`, when given, finds the sample indices of a past step's batch; they are
    attached (as `sample_indices`) only to rows that look like a gradient spike against the
    trailing median (the rule in diagnose_grad, minus its whole-run condition) and to the first
    non-finite row, so the user can look at those samples.
    """

    def __init__(self, log_every: int = 10, layer_every: int = 50,
                 layer_names: Sequence[str] = (), locate: Locate | None = None,
                 loss_scaled: bool = False):
        self.log_every, self.layer_every = max(1, log_every), layer_every
        # float16: a finite loss with a non-finite gradient norm at a loss scale above
        # MIN_LOSS_SCALE is a step the scaler skipped (marked "skipped"), not a failure: the
        # scale may have caused the overflow, and the scaler halves it. Once it is that low the
        # gradient itself is inf or NaN: a failure, as at 32-bit.
        self.loss_scaled, self._indexed_skips, self._applied = loss_scaled, 0, False
        self.layer_names, self.locate = list(layer_names), locate
        self._pending: list[_Pending] = []
        self._last: tuple[int, float] | None = None  # (epoch, time) of the previous step
        self._recent: deque[float] = deque(maxlen=SPIKE_WINDOW)  # finite grad norms
        self._indexed_rows = 0
        self._full_batch = 0  # the largest batch seen: a full one
        self.num_nonfinite = 0
        self.first_nonfinite_step: int | None = None
        self.num_unusual = 0  # steps whose norm _is_spike flagged: a Monitor diagnoses sooner

    def layer_due(self, step: int) -> bool:
        """Per-layer norms at step 1 (the reference at initialisation) and every K steps."""
        return self.layer_every > 0 and (step == 1 or step % self.layer_every == 0)

    def record(self, step: int, epoch: int, loss: torch.Tensor, grad_norm: torch.Tensor | None,
               lr: float | None, *, layer_norms: torch.Tensor | None = None,
               batch_size: int | None = None, batch_indices: Any = None,
               inverse_scale: torch.Tensor | None = None) -> list[dict[str, Any]]:
        now = time.perf_counter()
        interval = now - self._last[1] if self._last and self._last[0] == epoch else None
        self._last = (epoch, now)  # an interval across epochs would count the evaluation
        self._pending.append(_Pending(
            step, epoch, _scalar(loss), None if grad_norm is None
            else _detached(grad_norm), lr, None if layer_norms is None else _detached(layer_norms),
            batch_size, batch_indices, interval, inverse_scale))
        return self.flush() if len(self._pending) >= self.log_every else []

    def flush(self) -> list[dict[str, Any]]:
        if not self._pending:
            return []
        values = self._to_host()
        timing = _throughput(self._pending)
        rows = []
        for item, (loss, norm, layers, inverse) in zip(self._pending, values, strict=True):
            row: dict[str, Any] = {"kind": "step", "step": item.step, "epoch": item.epoch,
                                   "loss": loss, "grad_norm": norm, "lr": item.lr, **timing}
            if item.batch_size:  # the short last batch of an epoch is noisier (diagnose_grad)
                row["batch_size"] = item.batch_size
            if layers is not None:
                row["layer_grad_norms"] = dict(zip(self.layer_names, layers, strict=True))
            finite = math.isfinite(loss) and (norm is None or math.isfinite(norm))
            skipped = (self.loss_scaled and not finite and math.isfinite(loss)
                       and inverse is not None and inverse < 1.0 / MIN_LOSS_SCALE)
            self._applied = self._applied or finite
            if skipped:
                row["skipped"] = True
                self._indexed_skips += self._applied  # not the start's, while the scale settles
            bad = not finite and not skipped
            first_bad = bad and self.first_nonfinite_step is None
            self.num_nonfinite += bad
            if first_bad:
                self.first_nonfinite_step = item.step
            if (first_bad or (skipped and self._applied and self._indexed_skips <= INDEXED_SKIPS)
                    or (finite and norm is not None
                        and self._is_spike(self._per_full_batch(norm, item.batch_size)))):
                indices = self._indices(item)
                if indices is not None:
                    row["sample_indices"] = indices
                    self._indexed_rows += 1
            rows.append(row)
        self._pending.clear()
        return rows

    def _to_host(self) -> list[tuple[float, float | None, list[float] | None, float | None]]:
        """One device->host transfer for every pending tensor, gathered by a few stacks (one
        op per tensor per step cost ~2 us each: ~1% of a small CNN's step)."""
        pending = self._pending
        device = pending[0].loss.device
        norms = [item.grad_norm for item in pending if item.grad_norm is not None]
        layers = [item.layer_norms for item in pending if item.layer_norms is not None]
        parts = [torch.stack([item.loss for item in pending]).float()]  # (N,)
        if norms:
            parts.append(torch.stack(norms).float().to(device))  # (N_norms,)
        parts += [layer.float().to(device) for layer in layers]  # (L,) each
        scales = [item.inverse_scale for item in pending if item.inverse_scale is not None]
        if scales:
            parts.append(torch.stack(scales).float().to(device))  # (N_scales,)
        flat = torch.cat(parts).cpu().tolist()
        at_scales = len(flat) - len(scales)
        losses, at = flat[:len(pending)], len(pending)
        out = []
        at_layers = at + len(norms)
        for item, loss in zip(pending, losses, strict=True):
            norm = layer_values = None
            if item.grad_norm is not None:
                norm, at = flat[at], at + 1
            if item.layer_norms is not None:
                count = len(item.layer_norms)
                layer_values, at_layers = flat[at_layers: at_layers + count], at_layers + count
            inverse = None
            if item.inverse_scale is not None:
                inverse, at_scales = flat[at_scales], at_scales + 1
            out.append((loss, norm, layer_values, inverse))
        return out

    def _per_full_batch(self, norm: float, batch_size: int | None) -> float:
        """The norm as a full batch (the largest seen) would give it, as the spike rule
        judges it (diagnose_grad.per_full_batch): the short last batches of epochs must not
        use up the MAX_INDEXED_ROWS before a real spike comes."""
        if not batch_size:
            return norm
        self._full_batch = max(self._full_batch, batch_size)
        return norm * math.sqrt(batch_size / self._full_batch)

    def _is_spike(self, norm: float) -> bool:
        """A spike (far above) or a dip (below DIP_RATIO: a batch fitted to zero, see
        diagnose_dip) against the trailing window of finite norms, which this call extends.
        Either way the row keeps its batch's sample indices, so the user can look at it."""
        spike = False
        # cheap pre-filter: a norm within SPIKE_RATIO of the window's minimum cannot be
        # SPIKE_RATIO above its median, nor one above DIP_RATIO of its maximum a dip
        if len(self._recent) >= SPIKE_MIN_PRIOR and (norm > SPIKE_RATIO * min(self._recent)
                                                     or norm < DIP_RATIO * max(self._recent)):
            window = np.fromiter(self._recent, dtype=np.float64)
            median = float(np.median(window))
            mad = float(np.median(np.abs(window - median)))
            spike = median > 0 and ((norm > SPIKE_RATIO * median
                                     and norm > median + SPIKE_MADS * mad)
                                    or norm < DIP_RATIO * median)
        self.num_unusual += spike
        self._recent.append(norm)
        return spike

    def _indices(self, item: _Pending) -> list[int] | None:
        if self._indexed_rows >= MAX_INDEXED_ROWS:
            return None
        if item.batch_indices is not None:
            return torch.as_tensor(item.batch_indices).flatten().tolist()
        return self.locate(item.step) if self.locate is not None else None


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    # detach() only where it does something: each tensor op costs 2-4 us a step on the CPU
    return tensor.detach() if tensor.requires_grad else tensor


def _scalar(loss: torch.Tensor) -> torch.Tensor:
    loss = _detached(loss)
    return loss if loss.dim() == 0 else loss.reshape(())  # () for the stack in _to_host


def _throughput(pending: list[_Pending]) -> dict[str, float]:
    """Seconds per step (and samples per second when batch sizes are known) over the steps of
    this window; the first step of an epoch is left out, its interval holds the evaluation."""
    timed = [item for item in pending if item.interval is not None]
    seconds = sum(item.interval for item in timed)  # type: ignore[misc]
    if not timed or seconds <= 0:
        return {}
    out = {"seconds_per_step": seconds / len(timed)}
    if all(item.batch_size for item in timed):
        out["samples_per_second"] = sum(item.batch_size for item in timed) / seconds  # type: ignore[misc]
    return out
