"""The notebook slips find_lr and tune_lr refuse before any work: a Dataset where a DataLoader
goes, and an optimizer (object or class) where a function that builds one goes.

Both ran on as something else: a TensorDataset iterates as single (x_i, y_i) samples, which
an MLP and CrossEntropyLoss accept unbatched, so the range test took 30 one-sample steps and
blamed the model (lr_range_no_descent, audit s16 N2); `find_lr(..., torch.optim.AdamW)` failed
inside torch with "optimizer can only optimize Tensors" (audit s16 N17).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from trainwise.findings import TrainwiseError
from trainwise.train.evaluate import inputs_and_targets
from trainwise.train.fit_arguments import dataset_not_loader
from trainwise.train.position import inner_loader
from trainwise.tune.no_trace import no_trace, probe_loader
from trainwise.tune.probe_errors import MAKE_OPTIMIZER

WRAP_IT = "DataLoader(ds, batch_size=64, shuffle=True) (the batch_size you train with)"
WRAP_VAL = "DataLoader(ds, batch_size=64)"  # validation: any batch_size, no shuffle needed


def check_batched(loader: Iterable, name: str, call: str = "find_lr") -> None:
    """Refuse a map-style Dataset given as `name` to `call`, and a re-iterable whose first
    batch's targets have no batch dimension (one sample per item). A DataLoader passes unread
    (its batch_size=None case is lr_range_one_sample_per_step's warning); a one-shot iterator
    too (peeking would use up its first batch)."""
    if isinstance(inner_loader(loader), DataLoader) or isinstance(loader, Iterator):
        return
    kind = type(loader).__name__
    wrap = WRAP_VAL if name == "val_loader" else WRAP_IT
    if isinstance(loader, Dataset) and not isinstance(loader, IterableDataset):
        raise TrainwiseError(dataset_not_loader(call, name, loader, _use(name)))
    target = _first_target(loader)
    if target is not None and np.ndim(target) == 0:
        raise TrainwiseError(
            f"{name} (a {kind}) yields items whose target is a single value ({_shown(target)}), "
            f"not a batch of targets: one sample per item, so {_use(name)}. Batch it: "
            f"{name}={wrap} over a Dataset of these samples, or yield (x, y) batches whose "
            "first dimension is the batch.")


def _use(name: str) -> str:
    """What one sample per item does to the probe reading `name`."""
    if name == "val_loader":
        return "the short runs would be scored one sample per batch"
    return "every step would train on a single sample (the lr found: for one sample per step)"


def _first_target(loader: Iterable) -> Any:
    """The first batch's targets (None: no batch, or not an (x, y) batch, which the probe
    itself explains). The RNGs and the loader's generators are left as found."""
    with no_trace(torch.nn.Module(), loader):
        batch = next(iter(probe_loader(loader)), None)
    if batch is None:
        return None
    try:
        target = inputs_and_targets(batch)[1]
    except TrainwiseError:
        return None
    if torch.is_tensor(target):
        return target.detach().cpu()
    return target if isinstance(target, (int, float, np.number, np.ndarray)) else None


def _shown(target: Any) -> str:
    value = target.item() if hasattr(target, "item") else target
    return f"{value!r}, shape ()"


def check_make_optimizer(make_optimizer: Any, call: str) -> None:
    """Refuse an optimizer object or class given as make_optimizer: the probes build a fresh
    optimizer per seed and per candidate, through `call` (e.g. "make_optimizer(model)")."""
    if isinstance(make_optimizer, torch.optim.Optimizer):
        what = f"an optimizer object ({type(make_optimizer).__name__})"
    elif isinstance(make_optimizer, type) and issubclass(make_optimizer, torch.optim.Optimizer):
        what = f"the optimizer class {make_optimizer.__name__}"
    elif not callable(make_optimizer):
        what = f"a {type(make_optimizer).__name__}, which cannot be called"
    else:
        return
    raise TrainwiseError(
        f"make_optimizer is {what}; expected a function that builds a new optimizer for the "
        f"model it is given, called as {call} (a fresh one per seed, so every seed starts "
        f"alike and your own optimizer is never stepped). E.g. {MAKE_OPTIMIZER}.")
