"""The simplest models that fit the data, built with nn.Sequential and sized from it.

One baseline per kind of data (METHOD.md §2: start simple, grow later):
tables/vectors (N, F) -> mlp; sequences (N, C, T) -> cnn1d (or gru); images (N, C, H, W) ->
cnn2d; token ids (N, T) int64 -> embedding_pool. Classification outputs (B, C) logits,
regression (B, 1).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwise.data.task import TaskData
from trainwise.data.token_ids import PADDING_ID  # masked out of the mean, its embedding stays 0
from trainwise.findings import TrainwiseError
from trainwise.model.class_weights import ClassWeightedCrossEntropy


class ModelError(TrainwiseError):
    """A model cannot be built or imported; the message says which and how to fix it."""


def mlp(num_inputs: int, num_outputs: int, width: int = 0, dropout: float = 0.1) -> nn.Sequential:
    """Two hidden layers: the baseline for tables and flat vectors."""
    width = width or min(256, max(32, 2 * num_inputs))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(num_inputs, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_outputs),
    )


def _conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(c_out), nn.ReLU()]


def cnn1d(num_channels: int, num_outputs: int, width: int = 0,
          dropout: float = 0.1) -> nn.Sequential:
    """A small 1-D CNN for sequences (N, C, T): four conv blocks, global pooling, one linear.

    Global max+mean pooling makes it indifferent to where a pattern sits in the sequence,
    which is what MNIST-1D's random translations need.
    """
    width = width or 32
    return nn.Sequential(
        *_conv_block(num_channels, width, 1),
        *_conv_block(width, width, 1),
        *_conv_block(width, 2 * width, 2),  # (B, 2w, T/2)
        *_conv_block(2 * width, 2 * width, 1),
        nn.AdaptiveMaxPool1d(1),  # (B, 2w, 1)
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * width, num_outputs),
    )


class SwapAxes(nn.Module):
    """(B, C, T) -> (B, T, C): a permute, never a view (a view would mix samples' values)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class LastStep(nn.Module):
    """nn.GRU returns (outputs (B, T, H), h_n); keep the output at the last step, (B, H)."""

    def forward(self, gru_out: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return gru_out[0][:, -1]


def gru(num_channels: int, num_outputs: int, width: int = 0,
        dropout: float = 0.1) -> nn.Sequential:
    """One GRU layer over time for sequences (N, C, T), its last step through a small head.

    The other choice for sequences: slower than cnn1d on CPU (T steps run one after another)
    but it sees order and long-range dependencies without a receptive-field limit.
    """
    width = width or 64
    return nn.Sequential(
        SwapAxes(),  # (B, T, C): batch_first GRU input
        nn.GRU(num_channels, width, batch_first=True),
        LastStep(),  # (B, H)
        nn.LayerNorm(width),  # the GRU state lives in (-1, 1); rescale before the head
        nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_outputs),
    )


def _conv2d_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


def cnn2d(num_channels: int, num_outputs: int, width: int = 0,
          dropout: float = 0.1) -> nn.Sequential:
    """A small 2-D CNN for images (N, C, H, W): three conv-BN-ReLU blocks, global average
    pooling, one linear.

    The stem has stride 2: on 28x28 inputs a stride-1 stem made a training step 2.7x slower on
    one CPU thread (86 vs 31 ms at batch 32), mostly full-resolution conv backward, for a
    baseline whose job is to run first, not to win.
    """
    width = width or 16
    return nn.Sequential(
        *_conv2d_block(num_channels, width, 2),  # (B, w, H/2, W/2)
        *_conv2d_block(width, 2 * width, 2),  # (B, 2w, H/4, W/4)
        *_conv2d_block(2 * width, 4 * width, 2),  # (B, 4w, H/8, W/8)
        nn.AdaptiveAvgPool2d(1),  # (B, 4w, 1, 1): any image size works
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4 * width, num_outputs),
    )


class EmbeddingPool(nn.Module):
    """Token ids (B, T) -> the mean of their embeddings over non-padding tokens, (B, D).

    A plain mean would count padding: the same sentence padded to 50 or to 200 tokens would
    give vectors 4x apart. A row of padding only gives the zero vector.
    """

    def __init__(self, vocab_size: int, dim: int, padding_id: int = PADDING_ID) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_id)
        self.padding_id = padding_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.padding_id).unsqueeze(-1)  # (B, T, 1)
        total = (self.embedding(ids) * mask).sum(1)  # (B, D)
        return total / mask.sum(1).clamp(min=1)


def embedding_pool(vocab_size: int, num_outputs: int, width: int = 0,
                   dropout: float = 0.1) -> nn.Sequential:
    """Bag of embeddings for token ids (N, T): embed, mean-pool (padding masked), MLP head."""
    width = width or 64
    return nn.Sequential(
        EmbeddingPool(vocab_size, width),  # (B, D)
        # Embeddings start at std 0.01 (init policy); LayerNorm gives the head unit-scale
        # features from the first step instead of 100x-small ones.
        nn.LayerNorm(width),
        nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_outputs),
    )


def import_model(spec: str, folder: str | Path = "") -> type[nn.Module]:
    """'package.module:Class' -> the class; the user's own model, imported (not exec'd).
    `folder`: where the module was found when the run started (model.folder), tried before
    the working folder when the module is not on sys.path."""
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(_import_user_module(module_name, folder), class_name)
    except ModelError:
        raise
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"could not import model '{spec}': {exc}. Use 'package.module:Class' "
                         "with the module on your PYTHONPATH.") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"'{spec}' is not an nn.Module subclass.")
    return cls


def module_folder(name: str, folders: list[Path]) -> Path | None:
    """The first of `folders` (absolute) holding module `name` ('pkg.mod') as a file:
    name.py or name/__init__.py. A folder merely named like the module (data in `models/`
    beside models.py) is a namespace package to Python, and holds no model."""
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        base = folder.joinpath(*name.split("."))
        if base.with_name(base.name + ".py").is_file() or (base / "__init__.py").is_file():
            return folder
    return None


def _import_user_module(name: str, folder: str | Path = "") -> Any:
    """import_module(name), also finding a module in `folder` or the working folder (as
    `python script.py` finds one beside it: the `trainwise` console script does not put the
    working folder on sys.path). That folder is appended to sys.path, once, and last, so it
    cannot shadow an installed package."""
    top = name.split(".")[0]
    try:
        module = importlib.import_module(name)
        if getattr(module, "__file__", None) is not None:
            return module
        _forget(name)  # a namespace package: a folder named like the module, not the module
    except ModuleNotFoundError as exc:
        if exc.name != top:  # the user's module was found, and itself imports a missing one
            raise
    folders = [Path(f) for f in (folder, Path.cwd()) if f]
    holding = module_folder(name, folders)
    if holding is None:
        where = ", ".join(str(f) for f in dict.fromkeys(f.resolve() for f in folders))
        raise ModelError(f"could not import model module '{name}': no {name}.py on the Python "
                         f"path (sys.path) or in these folders: {where}. Use 'module:Class' "
                         f"with {top}.py in the working folder or beside the config, or add its "
                         "folder to PYTHONPATH (PYTHONPATH=path/to/folder trainwise ...).")
    if str(holding) not in sys.path:
        sys.path.append(str(holding))
    importlib.invalidate_caches()  # a module written after the first import try is seen too
    return importlib.import_module(name)


def _forget(name: str) -> None:
    """Drop `name` and its parents from sys.modules, so the next import searches again (a
    regular module anywhere on sys.path wins over a namespace package)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        sys.modules.pop(".".join(parts[:i]), None)


BASELINES = {"mlp": mlp, "cnn1d": cnn1d, "gru": gru, "cnn2d": cnn2d,
             "embedding_pool": embedding_pool}
AUTO = {"table": "mlp", "vector": "mlp", "sequence": "cnn1d", "image": "cnn2d",
        "tokens": "embedding_pool"}
# name -> (x.ndim it needs, what that shape is)
_SHAPES = {"cnn1d": (3, "sequences shaped (N, C, T)"), "gru": (3, "sequences shaped (N, C, T)"),
           "cnn2d": (4, "images shaped (N, C, H, W)"), "embedding_pool": (2, "token ids (N, T)")}


def vocab_size(data: TaskData) -> int:
    """Largest token id + 1, over the pool and the held-out part (an id seen only in the test
    set must still have a row, or the embedding raises an IndexError at test time)."""
    arrays = [a for a in (data.x, data.x_test) if a is not None and a.size]
    low = min(int(a.min()) for a in arrays)
    if low < 0:
        raise ModelError(f"token ids must be >= 0, found {low}. Map the vocabulary to 0..V-1 "
                         f"(0 = padding) before building the model.")
    return max(int(a.max()) for a in arrays) + 1


def _check_fits(name: str, data: TaskData) -> None:
    """Shape and dtype fit the baseline. Images may be uint8 (the split makes them float32);
    only token ids must stay integers, and only embedding_pool takes them."""
    integer = not np.issubdtype(data.x.dtype, np.floating)
    way_out = f"Use model.name = \"{AUTO.get(data.kind, 'mlp')}\" for {data.kind} data"
    if name == "embedding_pool" and data.kind != "tokens":
        raise ModelError(f"embedding_pool embeds token ids, but this data was read as "
                         f"{data.kind} data ({data.x.dtype}, shape {data.x.shape}): its values "
                         "would reach the model as floats. If X holds integer token ids (0 = "
                         "padding), set "
                         "data.kind = \"tokens\" in [data] (a .npz X of 0-padded integer rows "
                         f"is read so by itself). {way_out} if its values are features.")
    if name in _SHAPES and data.x.ndim != _SHAPES[name][0]:
        raise ModelError(f"{name} needs {_SHAPES[name][1]}; got {data.x.shape}. {way_out}, "
                         f"or reshape the inputs to fit {name}.")
    if name == "embedding_pool" and not integer:
        raise ModelError(f"embedding_pool needs integer token ids; got {data.x.dtype}. "
                         "Map each token to an int64 id (0 = padding) when building the data.")
    if name != "embedding_pool" and data.kind == "tokens":
        raise ModelError(f"{name} cannot read token ids (a float of an id is meaningless). "
                         "Use model.name = \"embedding_pool\" for token ids.")


def baseline_name(kind: str, name: str = "auto") -> str:
    """The BASELINES entry that `build_model` builds for data of `kind` (model.name)."""
    return _auto(kind) if name == "auto" else name


def _auto(kind: str) -> str:
    if kind not in AUTO:
        raise ModelError(f"no baseline for data of kind '{kind}'; kinds with one: "
                         f"{', '.join(AUTO)}. Use one of those kinds, or name a model: "
                         f"{', '.join(BASELINES)} or 'package.module:Class'.")
    return AUTO[kind]


def build_model(data: TaskData, name: str = "auto", width: int = 0,
                dropout: float = 0.1, folder: str = "", target: str = "") -> nn.Module:
    """The baseline for this data, or the user's class (called with no arguments).

    "auto" picks by data.kind: table/vector -> mlp, sequence -> cnn1d, image -> cnn2d,
    tokens -> embedding_pool. Outputs (B, num_classes) logits, or (B, 1) for regression.
    `folder`: model.folder, where a 'module:Class' module was found when the run started.
    `data` may also be what run(data=...) takes; `target` then names a DataFrame's target.
    """
    if ":" in name:
        return import_model(name, folder)()
    if not isinstance(data, TaskData):  # (x, y), a dict of arrays: as run(data=...) takes
        from trainwise.data.in_memory import as_task_data
        data = as_task_data(data, target, verb="build_model")
    name = baseline_name(data.kind, name)
    if name not in BASELINES:
        raise ModelError(f"unknown model '{name}'. Use \"auto\", "
                         f"{', '.join(repr(n) for n in BASELINES)} or 'package.module:Class'.")
    _check_fits(name, data)
    if name == "mlp":
        size = int(np.prod(data.input_shape))  # flattened: (N, ...) -> (N, F)
    elif name == "embedding_pool":
        size = vocab_size(data)
    else:
        size = data.x.shape[1]  # channels of (N, C, T) or (N, C, H, W)
    return BASELINES[name](size, data.num_classes or 1, width, dropout)


def loss_function(task: str, class_weights: torch.Tensor | None = None) -> nn.Module:
    """Cross-entropy on logits (B, C) vs labels (B,), per-class weighted when `class_weights`
    (C,) is given (model/class_weights.py); MSE on (B,) vs (B,) for regression."""
    if task != "classification":
        return RegressionLoss()
    if class_weights is not None:
        return ClassWeightedCrossEntropy(class_weights)
    return nn.CrossEntropyLoss()


class RegressionLoss(nn.Module):
    """MSE that refuses the silent (B, 1) vs (B,) broadcast, which averages a (B, B) matrix."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.ndim == 2 and output.shape[1] == 1:
            output = output.squeeze(1)
        if output.shape != target.shape:
            lone = " On this batch of one sample the batch dimension is gone: a .squeeze() " \
                "in forward drops it too (use .squeeze(-1) or .flatten())." \
                if output.ndim == 0 and target.shape == (1,) else ""
            raise ModelError(f"regression output shape {tuple(output.shape)} does not match "
                             f"target shape {tuple(target.shape)}; make the model output (B,) "
                             f"or (B, 1).{lone}")
        return nn.functional.mse_loss(output, target)
