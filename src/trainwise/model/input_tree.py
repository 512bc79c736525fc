"""A model's inputs as the API takes them: one tensor, or a tuple/list/dict of tensors for a
model whose forward(self, inputs) unpacks several (README: ((x1, x2), y) batches).

The checks slice, move, zero and permute inputs; doing that through these helpers keeps one
code path for both forms (audit s14 G3: check crashed on `x[:512].to(device)` of a tuple).
Rows are counted on the first tensor: every tensor of one batch holds the same samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

from trainwise.findings import TrainwiseError


def tensors(x: Any) -> list[torch.Tensor]:
    """The tensors in x, in order (x itself when it is one)."""
    return [leaf for leaf in pytree.tree_leaves(x) if isinstance(leaf, torch.Tensor)]


def map_tensors(fn: Callable[[torch.Tensor], Any], x: Any) -> Any:
    """x with fn applied to each tensor; containers keep their type, other leaves stay."""
    return pytree.tree_map(lambda leaf: fn(leaf) if isinstance(leaf, torch.Tensor) else leaf, x)


def first_tensor(x: Any) -> torch.Tensor:
    found = tensors(x)
    if not found:
        raise TrainwiseError(
            f"the inputs are a {type(x).__name__} holding no tensor; expected a tensor, or a "
            "tuple/list/dict of tensors (one per model input) with the samples along dim 0. "
            "Convert them with torch.as_tensor before the call.")
    return found[0]


def num_rows(x: Any) -> int:
    """Samples in x: the first tensor's length (a tuple's len would count its inputs)."""
    return len(first_tensor(x))


def take(x: Any, index: Any) -> Any:
    """Rows `index` (a slice or index tensor) of every tensor in x."""
    return map_tensors(lambda t: t[index.to(t.device) if torch.is_tensor(index) else index], x)


def shapes(x: Any) -> Any:
    """x's shape as a list, or a list of them for several inputs (JSON-ready evidence)."""
    if isinstance(x, torch.Tensor):
        return list(x.shape)
    return [list(t.shape) for t in tensors(x)]


def describe(x: Any) -> str:
    """'(8, 10) (torch.float32)', or '(8, 5) (torch.float32), (8, 5) (torch.int64)' per input."""
    return ", ".join(f"{tuple(t.shape)} ({t.dtype})" for t in tensors(x))
