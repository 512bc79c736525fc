"""A NaN/inf in the data of the batch fit stopped on: said as the data's fault, with the sample
and column, and the fix leads with the data stage (audit s15 B16). Oracle: the cell the test
itself corrupted."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.train.loop import fit
from trainwise.train.nonfinite_inputs import nonfinite_inputs


def _fit_with(x, y, blobs_val):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(*blobs_val), batch_size=60)
    return fit(model, train, val, optimizer=trainwise.make_adamw(model, 1e-3, 0.01),
               loss_fn=nn.CrossEntropyLoss(), max_epochs=2, log_every=4)


def test_a_nan_cell_is_named_with_its_sample_and_column(blobs):
    x, y = blobs
    x_train = x[:240].clone()
    x_train[177, 3] = float("nan")
    state = _fit_with(x_train, y[:240], (x[240:], y[240:]))
    assert state.nonfinite is not None
    assert state.nonfinite["nonfinite_inputs"] == [
        {"sample": 177, "part": "input", "value": "nan", "cells": 1, "columns": [3]}]
    divergence = [f for f in trainwise.diagnose(state.history, num_classes=3)
                  if f.code == "divergence"]
    assert len(divergence) == 1
    found = divergence[0]
    assert "sample 177 has NAN in input column 3" in found.message
    assert found.fix.startswith("Fix the data first (your data)")  # the API's words (s16 N9)
    assert "detect_anomaly" not in found.fix.split(".")[0]
    assert found.evidence["cause"] == "nonfinite_input"


def test_a_clean_batch_adds_nothing(blobs):
    """A NaN the model makes (inputs clean): no nonfinite_inputs, the old wording stays."""
    x, y = blobs
    dataset = TensorDataset(x, y)
    assert nonfinite_inputs(dataset, list(range(300))) == []


def test_targets_and_images_are_read_too():
    images = torch.zeros(4, 1, 3, 3)
    images[2, 0, 1, 2] = float("inf")
    targets = torch.tensor([0.0, float("nan"), 1.0, 2.0])
    found = nonfinite_inputs(TensorDataset(images, targets), [0, 1, 2, 3])
    assert found == [
        {"sample": 1, "part": "target", "value": "nan", "cells": 1},
        {"sample": 2, "part": "input", "value": "inf", "cells": 1, "first_position": [0, 1, 2]}]
