"""Whether the batch a NaN/inf loss came from held a NaN/inf itself, read back from the data
set at the stop (once, never per step): then the data, not an operation or the lr, made it,
and detect_anomaly finds no faulty operation to name (audit s15 B16: x[777, 3] = nan, and
the fix sent the user to anomaly mode). The finding's words are diagnose_nonfinite.input_fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MAX_SAMPLES = 20  # samples listed: a NaN column in a whole table is said by the first few
MAX_COLUMNS = 10  # columns listed per sample


def _tensors(value: Any, name: str) -> list[tuple[str, torch.Tensor]]:
    """(name, floating tensor) pairs of a sample's part: a tensor or array, or a tuple, list
    or dict of them (a model taking several inputs); integer parts cannot hold a NaN."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        value = torch.from_numpy(value)
    if isinstance(value, torch.Tensor):
        return [(name, value)] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _tensors(item, f"{name}[{key!r}]")]
    if isinstance(value, (tuple, list)):
        return [pair for i, item in enumerate(value) for pair in _tensors(item, f"{name}[{i}]")]
    return []


def _bad_cells(name: str, tensor: torch.Tensor) -> dict[str, Any] | None:
    bad = ~torch.isfinite(tensor.detach())
    if not bad.any():
        return None
    found: dict[str, Any] = {"part": name, "value": "nan" if tensor[bad].isnan().any() else "inf",
                             "cells": int(bad.sum())}
    if tensor.dim() == 1:  # a table's row: the columns are what the user can look up
        found["columns"] = bad.nonzero().flatten()[:MAX_COLUMNS].tolist()
    elif tensor.dim() > 1:
        found["first_position"] = bad.nonzero()[0].tolist()
    return found


def _sample_parts(item: Any) -> list[tuple[str, Any]]:
    """A data set item's (name, part): (inputs, target) for a pair, (inputs, target, ...)
    beyond it (the rest is not trained on), the item itself otherwise."""
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return [("input", item[0]), ("target", item[1])]
    return [("input", item)]


def nonfinite_inputs(dataset: Any, indices: list[int] | None) -> list[dict[str, Any]]:
    """[{sample, part, value, cells, columns | first_position}] for the samples at `indices`
    whose input or target holds a NaN/inf; [] when none does or the data set cannot be read
    by index (an IterableDataset). Under fork_rng: an augmentation drawing random numbers
    leaves the run's RNG as it was."""
    if dataset is None or not indices or not hasattr(dataset, "__getitem__"):
        return []
    found = []
    with torch.random.fork_rng(devices=[]):
        for index in indices:
            try:
                item = dataset[index]
            except Exception:  # a data set that cannot be read back: nothing to say, not a crash
                return found
            for part, value in _sample_parts(item):
                for name, tensor in _tensors(value, part):
                    cells = _bad_cells(name, tensor)
                    if cells is not None:
                        found.append({"sample": int(index), **cells})
            if len(found) >= MAX_SAMPLES:
                break
    return found
