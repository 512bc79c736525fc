"""fit on the slips a notebook makes (audit s16 N1, N5, N6, N14, N18, N19): each is refused
before the first step with check()'s cause and fix, or handled, never a raw torch error."""

from __future__ import annotations

import copy

import pytest
import torch
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.findings import TrainwiseError
from trainwise.train.loop import fit


def _loaders(x, y, batch_size=32):
    return (DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size),
            DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64))


def _mlp(width=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, width))


def _fit(model, train, val, loss_fn=None, **kwargs):
    kwargs.setdefault("optimizer", torch.optim.SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("max_epochs", 1)
    return fit(model, train, val, loss_fn=loss_fn or nn.CrossEntropyLoss(),
               fabric=Fabric(accelerator="cpu", devices=1), **kwargs)


def test_a_checkpoint_path_in_a_missing_folder_is_created(blobs, tmp_path):
    """N18: a notebook's checkpoint_path="ck/last.pt" raised a bare FileNotFoundError."""
    model = _mlp()
    path = tmp_path / "ck" / "deeper" / "last.pt"
    state = _fit(model, *_loaders(*blobs), checkpoint_path=path)
    assert path.is_file() and state.checkpoint_step == state.step == 8
