"""Each process trains on its slice of every batch; evaluation gathers every slice back.

A loader batch is one optimizer step's batch whatever the number of processes: process r of W
takes `batch.tensor_split(W)[r]`. So every step sees the same samples as on one device, the
per-process batch is batch_size / W, and DDP's gradient average equals the one-device gradient
(tests/test_ddp.py). Torch's DistributedSampler instead deals whole samples round-robin from a
permutation seeded per epoch, so a 2-process run could not match a 1-process run step for step.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, Sampler

from trainwise.distributed import DistributedError, gather_rows
from trainwise.train.evaluate import evaluate, predict


class ShardedBatchSampler(Sampler[Any]):
    """Yields process `rank`'s slice of each index batch of `base` (a batch sampler)."""

    def __init__(self, base: Any, rank: int, world_size: int, num_rows: int, *,
                 drop_uneven: bool, as_list: bool):
        self.base, self.rank, self.world_size = base, rank, world_size
        self.drop_uneven, self.as_list = drop_uneven, as_list
        batch_size = int(base.batch_size)
        if drop_uneven and batch_size % world_size:
            raise DistributedError(f"train.batch_size {batch_size} does not split evenly over "
                                   f"{world_size} processes. Make it a multiple of "
                                   f"{world_size} (devices x num_nodes).")
        last = num_rows % batch_size
        # A last, smaller batch that does not split evenly would give the processes unequal
        # weight in DDP's average; it is skipped this epoch (the next epoch reshuffles).
        self._skip_last = drop_uneven and not getattr(base, "drop_last", False) \
            and last % world_size != 0

    def __len__(self) -> int:
        return len(self.base) - int(self._skip_last)

    def __iter__(self) -> Iterator[Any]:
        for number, batch in enumerate(self.base):
            if self._skip_last and number == len(self.base) - 1:
                break
            piece = torch.as_tensor(batch).tensor_split(self.world_size)[self.rank]
            if len(piece):
                yield piece.tolist() if self.as_list else piece


def _loader_options(loader: DataLoader) -> dict[str, Any]:
    options = {"num_workers": loader.num_workers, "collate_fn": loader.collate_fn,
               "pin_memory": loader.pin_memory, "timeout": loader.timeout,
               "worker_init_fn": loader.worker_init_fn, "generator": loader.generator,
               "multiprocessing_context": loader.multiprocessing_context}
    if loader.num_workers > 0:
        options.update(prefetch_factor=loader.prefetch_factor,
                       persistent_workers=loader.persistent_workers)
    return options


def shard_loader(loader: Any, rank: int, world_size: int, *,
                 drop_uneven: bool) -> DataLoader | None:
    """The same loader yielding only process `rank`'s slice of each batch; None when the
    loader has no batch sampler to wrap (an IterableDataset, a custom loader object)."""
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return None
    if loader.batch_sampler is not None:  # DataLoader(batch_size=B): lists of indices
        num_rows = len(getattr(loader.batch_sampler, "sampler", loader.dataset))
        sampler = ShardedBatchSampler(loader.batch_sampler, rank, world_size, num_rows,
                                      drop_uneven=drop_uneven, as_list=True)
        return DataLoader(loader.dataset, batch_sampler=sampler, **_loader_options(loader))
    if hasattr(loader.sampler, "batch_size"):  # data.tensors.to_loader: index tensors
        num_rows = len(loader.dataset)  # type: ignore[arg-type]
        sampler = ShardedBatchSampler(loader.sampler, rank, world_size, num_rows,
                                      drop_uneven=drop_uneven, as_list=False)
        return DataLoader(loader.dataset, sampler=sampler, batch_size=None,
                          **_loader_options(loader))
    return None


def setup_loader(fabric: Fabric, loader: Any, *, train: bool) -> Any:
    """Fabric's loader wrapper, over this process's slices when there are several."""
    if fabric.world_size == 1:  # no DistributedSampler, which Fabric's fsdp/ddp strategies
        # would add even for one process: it reorders the data and ignores the loader's seed
        return fabric.setup_dataloaders(loader, use_distributed_sampler=False)
    sharded = shard_loader(loader, fabric.global_rank, fabric.world_size, drop_uneven=train)
    if sharded is None:
        warnings.warn("this loader cannot be sliced per batch, so Fabric's DistributedSampler "
                      "deals it out: each process then takes a whole batch, and the effective "
                      "batch is world_size times the loader's", stacklevel=3)
        return fabric.setup_dataloaders(loader)
    return fabric.setup_dataloaders(sharded, use_distributed_sampler=False)


def num_steps_per_epoch(loader: Any, world_size: int) -> int:
    """Optimizer steps per epoch once the loader is sliced over `world_size` processes."""
    sharded = shard_loader(loader, 0, world_size, drop_uneven=True) if world_size > 1 else None
    return len(sharded if sharded is not None else loader)


def predictions_across_ranks(fabric: Fabric, model: nn.Module, loader: Any
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's outputs and targets of its slice of `loader`, gathered: the whole
    set's (N, C) and (N,) on each process."""
    outputs, targets = predict(model, loader)
    if fabric.world_size > 1:
        outputs, targets = gather_rows(fabric, outputs), gather_rows(fabric, targets)
    return outputs, targets


def loader_order(num_rows: int, batch_size: int, world_size: int) -> np.ndarray:
    """For an unshuffled loader of `batch_size` sliced over `world_size` processes, the
    loader position of each row predictions_across_ranks returns: gather_rows puts rank 0's
    slices of every batch first, then rank 1's, ... (tensor_split's pieces, as
    ShardedBatchSampler takes them). `restored[order] = gathered` puts them back in order."""
    batches = [np.arange(start, min(start + batch_size, num_rows))
               for start in range(0, num_rows, batch_size)]
    pieces = [np.array_split(batch, world_size)[rank] for rank in range(world_size)
              for batch in batches]
    return np.concatenate(pieces) if pieces else np.array([], dtype=np.int64)


def evaluate_across_ranks(fabric: Fabric, model: nn.Module, loader: Any, loss_fn: nn.Module,
                          task: str, prefix: str = "val", confusion: bool = False,
                          target_units: Any = None) -> dict[str, Any]:
    """Metrics over every process's slice together: the same numbers as on one device
    (`target_units`: see evaluate)."""
    if fabric.world_size == 1:
        return evaluate(model, loader, loss_fn, task, prefix, confusion, target_units)
    # The gathered predictions go through evaluate's own metric code (an identity "model"
    # replays them), so one device and many compute the metrics the same way.
    outputs, targets = predictions_across_ranks(fabric, model, loader)
    return evaluate(nn.Identity(), [(outputs, targets)], loss_fn, task, prefix, confusion,
                    target_units)


def loss_across_ranks(fabric: Fabric, model: nn.Module, loader: Any, loss_fn: nn.Module
                      ) -> float:
    """evaluate_across_ranks' loss alone (no calibration statistics): for frequent checks."""
    return float(loss_fn(*predictions_across_ranks(fabric, model, loader)))
