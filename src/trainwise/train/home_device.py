"""`fit` without a Fabric picks the device itself (a GPU when there is one, loop.default_device);
a model the user built on the CPU goes back there afterwards, with its optimizer's state, as
Lightning's Trainer returns its module to the CPU at teardown. Left on the GPU, the user's next
`model(x)` on CPU inputs failed with "Expected all tensors to be on the same device" (seen on an
H100, session 14). A Fabric the user passes decides alone: the model stays where it put it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import torch
from torch import nn

from trainwise.model.forward_errors import device_of


@contextmanager
def back_on_the_cpu(model: nn.Module, optimizer: torch.optim.Optimizer, *,
                    device_chosen_by_fit: bool) -> Iterator[None]:
    """On exit (an error too): a model that was on the CPU and is now elsewhere is moved
    back, and the optimizer's state tensors that sit on that device with it. After an error
    the move is tried, but the error that stopped training stays the one raised: after a CUDA
    device-side assert every later CUDA call fails, `model.to("cpu")` too (review s14 VT6)."""
    home = device_of(model)  # a model without parameters reads as CPU: nothing to move
    if not device_chosen_by_fit or home.type != "cpu":
        yield
        return
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the training error says what happened; the move cannot
            _go_home(model, optimizer, home)
        raise
    _go_home(model, optimizer, home)


def _go_home(model: nn.Module, optimizer: torch.optim.Optimizer, home: torch.device) -> None:
    away = device_of(model)
    if away != home:
        model.to(home)
        _move_state(optimizer, away, home)


def _move_state(optimizer: torch.optim.Optimizer, away: torch.device,
                home: torch.device) -> None:
    """Adam's moments follow their parameter (its `step` counter stays on the CPU unless the
    optimizer is fused or capturable: only what sits on `away` moves)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device == away:
                state[key] = value.to(home)
