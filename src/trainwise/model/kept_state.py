"""What a forward that must leave no trace puts back: every module's train/eval mode, one rule
for evaluation, fit, the probes' snapshot, shape_trace and preflight (review s14 VT8: four
copies, two restore styles); and the RNG of the device it ran on.

Each module's own mode, not model.training: model.train(True) would put a frozen backbone the
user set to eval back in train mode, and its BatchNorm statistics would drift from the next
step on (audit s14 G1: running_mean moved by 1.07 in one epoch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

Modes = list[tuple[nn.Module, bool]]


def module_modes(model: nn.Module) -> Modes:
    """Every module's train/eval mode, parents before children (restore_modes's order)."""
    return [(module, module.training) for module in model.modules()]


def restore_modes(modes: Modes) -> None:
    """Put back what module_modes read. train(mode) recurses, so a parent resets its
    children; each child then sets its own, as it comes after. Through train(), not the
    `training` attribute, a module that overrides train() still sees the call."""
    for module, mode in modes:
        module.train(mode)


@contextmanager
def kept_modes(model: nn.Module) -> Iterator[Modes]:
    """`with kept_modes(model): model.eval(); ...`: every module's mode back on exit, errors
    too."""
    modes = module_modes(model)
    try:
        yield modes
    finally:
        restore_modes(modes)


@contextmanager
def cuda_rng_kept(device: torch.device) -> Iterator[None]:
    """torch's CPU RNG, and the CUDA RNG of `device` when it is a GPU, come back on exit: a
    probe's dropout on the GPU draws from the CUDA generator, which `Snapshot` does not hold."""
    with torch.random.fork_rng(devices=[cuda_index(device)] if device.type == "cuda" else []):
        yield


def cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()
