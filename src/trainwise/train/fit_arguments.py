"""fit's checks of its arguments' kinds, before Fabric or torch touch them: the commonest
notebook slips (a loss or optimizer class for an instance, a Dataset, a generator or a list of
batches for a DataLoader) otherwise end in errors that name neither the slip nor its fix:
"Boolean value of Tensor with more than one value is ambiguous", "__class__ assignment:
'Fabrictype' object layout differs", "Only PyTorch DataLoader are currently supported", or,
for a Dataset read as a loader, advice to change a final layer that is right (audit s16 N5,
N6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainwise.findings import TrainwiseError

MAKE_LOADER = "DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)"


def check_fit_arguments(train_loader: Any, val_loader: Any, optimizer: Any, loss_fn: Any,
                        max_epochs: Any) -> None:
    """Raise a TrainwiseError naming the argument, what it is, what fit expects and the fix."""
    if isinstance(loss_fn, type) or not callable(loss_fn):
        raise TrainwiseError(_loss_message(loss_fn))
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None)):
        raise TrainwiseError(_optimizer_message(optimizer))
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and not isinstance(loader, DataLoader):
            raise TrainwiseError(loader_message(name, loader))
    if not hasattr(max_epochs, "__index__") or isinstance(max_epochs, bool) or max_epochs < 1:
        raise TrainwiseError(f"fit(max_epochs={max_epochs!r}): expected an integer >= 1, the "
                             "number of passes over train_loader; max_epochs=0 trains nothing "
                             "and returns an empty history.")


def _loss_message(loss_fn: Any) -> str:
    if isinstance(loss_fn, type):  # fit would call nn.CrossEntropyLoss(outputs, targets):
        # a new loss whose `weight` is the outputs, then torch's "Boolean value ... ambiguous"
        name = loss_fn.__name__
        return (f"fit(loss_fn={name}) was given the class, not a loss: fit calls "
                f"loss_fn(outputs, targets), which for a class builds a new {name} from the "
                f"tensors. Pass an instance: loss_fn=nn.{name}() (note the brackets).")
    return (f"fit(loss_fn=...) was given {type(loss_fn).__name__}, which cannot be called; "
            "expected a loss called as loss_fn(outputs, targets) that returns one number: "
            "nn.CrossEntropyLoss() for classes, nn.MSELoss() for numbers.")


def _optimizer_message(optimizer: Any) -> str:
    build = ("torch.optim.AdamW(model.parameters(), lr=1e-3), or trainwise.make_adamw(model, "
             "lr=1e-3, weight_decay=0.01)")
    if isinstance(optimizer, type):
        return (f"fit(optimizer={optimizer.__name__}) was given the class, not an optimizer: "
                "fit steps an optimizer built on this model's parameters. Build it first: "
                f"optimizer={build}.")
    return (f"fit(optimizer=...) was given {type(optimizer).__name__}, which has no step(); "
            f"expected a torch.optim.Optimizer on the model's parameters: {build}.")


def dataset_not_loader(call: str, name: str, loader: Any, so: str) -> str:
    """A map-style Dataset given as `name` where a DataLoader goes, one text for fit, find_lr
    and tune_lr (review s16 VN9): what it is, what `call` would do with it (`so`), the fix."""
    shuffle = "" if name == "val_loader" else ", shuffle=True"
    return (f"{call}({name}=...) was given a {type(loader).__name__}, a Dataset, not a "
            "DataLoader: iterating a Dataset yields one sample at a time, with no batch "
            f"dimension, so {so}. Wrap it: {name}=DataLoader(dataset, batch_size=64{shuffle})"
            " (the batch_size you train with); if its items are whole batches already, "
            f"{name}=DataLoader(dataset, batch_size=None).")


def loader_message(name: str, loader: Any) -> str:
    """What `loader` is and the DataLoader to pass instead (fit replays a DataLoader's sampler
    to find a NaN's samples and checkpoints its position, so any other iterable is refused)."""
    kind = type(loader).__name__
    if isinstance(loader, Dataset):
        return dataset_not_loader("fit", name, loader, "fit, which trains on batches and "
                                  "replays a DataLoader's sampler, cannot take it")
    if isinstance(loader, (torch.Tensor, np.ndarray)) or (
            isinstance(loader, tuple) and len(loader) == 2
            and all(isinstance(part, (torch.Tensor, np.ndarray)) for part in loader)):
        what = "a tuple (x, y)" if isinstance(loader, tuple) else f"a {kind}"
        return (f"fit({name}=...) was given {what}, not a DataLoader. fit expects a "
                "torch DataLoader of (inputs, targets) batches: from tensors x, y, "
                f"{name}={MAKE_LOADER} (torch.as_tensor(...) first for numpy arrays).")
    return (f"fit({name}=...) was given a {kind} (a generator, a list of batches or another "
            "iterable); fit expects a torch DataLoader: it reads len(), replays its sampler to "
            "name the samples of a NaN and checkpoints its position, and a generator is used up "
            "after one epoch. Pass the DataLoader itself, or build one: "
            f"{name}={MAKE_LOADER}.")
