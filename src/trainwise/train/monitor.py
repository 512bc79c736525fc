"""Per-step signals (loss, global gradient norm, learning rate) without a per-step sync.

The loss and gradient norm stay on the device as 0-d tensors; every `log_every` steps they
are stacked and moved to the host in one transfer. A per-step `.item()` costs about 12% of
a small CNN's step time on the CPU (measured in ../shared/bench/peers_overhead.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import torch


def global_grad_norm(parameters: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """L2 norm over all gradients, as a 0-d tensor on the device (no host sync)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)  # one fused kernel launch per device/dtype group
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


class StepMonitor:
    """Buffers (loss, grad_norm) per step; `flush()` returns history rows."""

    def __init__(self, log_every: int = 10):
        self.log_every = log_every
        self._pending: list[tuple[int, int, torch.Tensor, torch.Tensor, float]] = []
        self._last_flush = time.perf_counter()
        self.num_nonfinite = 0
        self.first_nonfinite_step: int | None = None

    def record(self, step: int, epoch: int, loss: torch.Tensor, grad_norm: torch.Tensor,
               lr: float) -> list[dict[str, Any]]:
        self._pending.append((step, epoch, loss.detach(), grad_norm.detach(), lr))
        return self.flush() if len(self._pending) >= self.log_every else []

    def flush(self) -> list[dict[str, Any]]:
        if not self._pending:
            return []
        pairs = torch.stack([torch.stack([loss.float(), norm.float()])
                             for _, _, loss, norm, _ in self._pending]).cpu().tolist()
        now = time.perf_counter()
        seconds_per_step = (now - self._last_flush) / len(self._pending)
        self._last_flush = now
        rows = []
        for (step, epoch, _, _, lr), (loss, norm) in zip(self._pending, pairs, strict=True):
            if not (math.isfinite(loss) and math.isfinite(norm)):
                self.num_nonfinite += 1
                if self.first_nonfinite_step is None:
                    self.first_nonfinite_step = step
            rows.append({"kind": "step", "step": step, "epoch": epoch, "loss": loss,
                         "grad_norm": norm, "lr": lr, "seconds_per_step": seconds_per_step})
        self._pending.clear()
        return rows
