"""Leave no trace: snapshot what a tuning probe may change, and write it back afterwards.

A probe (range test, short run, batch-size trial) trains the user's own model. Finders that
restore only the weights change the training that follows (fastai#3013, Lightning#6675,
davidtvs#11): batch-norm statistics, RNG streams and the sampler's generator move too.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

# cuda_rng_kept: also imported from here (tune/batch_probe.py)
from trainwise.model.kept_state import cuda_index, cuda_rng_kept, module_modes, restore_modes


def loader_generators(loader: Iterable | None) -> list[torch.Generator]:
    """The loader's own generators (each one once): DataLoader(generator=...), a
    RandomSampler(generator=...) and a batch sampler's own (e.g. one that buckets by length);
    a loader without them draws from the global torch RNG."""
    found: list[torch.Generator] = []
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (loader, getattr(loader, "sampler", None), batch_sampler,
                  getattr(batch_sampler, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


def probe_loader(loader: Any) -> Any:
    """The loader a probe iterates: with persistent workers, a shallow copy without the
    user's cached iterator, so the probe neither creates the workers the user's training will
    keep (seeded by the probe's generator state) nor advances the random state inside
    running ones (their augmentation), which no snapshot can restore. The copy's own workers
    end with it. A Fabric-wrapped loader iterates its `_dataloader`: that one is copied. Any
    other loader: itself."""
    inner = getattr(loader, "_dataloader", None)
    if inner is not None and probe_loader(inner) is not inner:
        wrapper = copy.copy(loader)
        wrapper._dataloader = probe_loader(inner)
        return wrapper
    if not (getattr(loader, "persistent_workers", False) and hasattr(loader, "_iterator")):
        return loader
    copied = copy.copy(loader)
    copied._iterator = None
    return copied


class Snapshot:
    """The model's weights, buffers (batch-norm statistics), grads, requires_grad flags and
    train/eval modes; the torch CPU, numpy and python RNGs; the loader's generators. CUDA RNG
    is left to `torch.random.fork_rng` around the probe, for the device it uses."""

    def __init__(self, model: nn.Module, loader: Iterable | None = None):
        self.model = model
        self.tensors = {name: t.detach().clone() for name, t in _named_tensors(model)}
        self.grads = [(p, None if p.grad is None else p.grad.detach().clone())
                      for p in model.parameters()]
        self.requires_grad = [(p, p.requires_grad) for p in model.parameters()]
        self.training = module_modes(model)
        self.torch_cpu = torch.get_rng_state()
        self.numpy = np.random.get_state()
        self.python = random.getstate()
        self.generators = [(g, g.get_state()) for g in loader_generators(loader)]

    def restore_model(self) -> None:
        """Weights, buffers, grads, flags and modes only (between the seeds of one probe)."""
        with torch.no_grad():
            for name, tensor in _named_tensors(self.model):
                tensor.copy_(self.tensors[name])  # in place: the user's optimizer keeps its params
        for p, grad in self.grads:
            p.grad = None if grad is None else grad.clone()
        for p, flag in self.requires_grad:
            p.requires_grad_(flag)
        restore_modes(self.training)

    def restore(self) -> None:
        self.restore_model()
        torch.set_rng_state(self.torch_cpu)
        np.random.set_state(self.numpy)
        random.setstate(self.python)
        for generator, state in self.generators:
            generator.set_state(state)


@contextmanager
def seeded(seed: int, loader: Iterable | None, device: torch.device) -> Iterator[None]:
    """Run a probe from a known random state: the torch CPU RNG (and the CUDA RNG of
    `device` only), python, numpy and the loader's generators all seeded with `seed`.

    torch's RNGs come back on exit (fork_rng); python, numpy and the loader's generators are
    left to the enclosing `no_trace`. fork_rng covers only the device in use: seeding every
    CUDA device would queue a lazy seed that outlives the probe (torch.manual_seed does that).
    """
    with cuda_rng_kept(device):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.default_generators[cuda_index(device)].manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        for generator in loader_generators(loader):
            generator.manual_seed(seed)
        yield


@contextmanager
def no_trace(model: nn.Module, loader: Iterable | None = None) -> Iterator[Snapshot]:
    """`with no_trace(model, loader) as snapshot: ...` restores everything on exit, errors too."""
    snapshot = Snapshot(model, loader)
    try:
        yield snapshot
    finally:
        snapshot.restore()


def _named_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from (("param:" + n, p) for n, p in model.named_parameters())
    yield from (("buffer:" + n, b) for n, b in model.named_buffers())
