"""fit's move of a model back to the CPU (train/home_device.py). A meta device stands in for a
GPU whose CUDA context a device-side assert poisoned: every copy out of it fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.train.home_device import back_on_the_cpu


def _model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Linear(2, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_a_failed_move_back_does_not_replace_the_training_error():
    # review s14 VT6: the move back raised NotImplementedError (cannot copy out of meta)
    model, optimizer = _model_and_optimizer()
    with pytest.raises(RuntimeError, match="the training step's own error"):
        with back_on_the_cpu(model, optimizer, device_chosen_by_fit=True):
            model.to("meta")
            raise RuntimeError("the training step's own error")


def test_the_move_back_is_still_tried_after_an_error():
    model, optimizer = _model_and_optimizer()
    moves = []
    with pytest.raises(RuntimeError, match="boom"):
        with back_on_the_cpu(model, optimizer, device_chosen_by_fit=True):
            model.to("meta")
            model.to = lambda device: moves.append(device)  # a move that succeeds
            raise RuntimeError("boom")
    assert moves == [torch.device("cpu")]


def test_a_failed_move_back_after_normal_training_is_raised():
    model, optimizer = _model_and_optimizer()
    with pytest.raises(NotImplementedError):
        with back_on_the_cpu(model, optimizer, device_chosen_by_fit=True):
            model.to("meta")


def test_a_model_the_users_fabric_placed_stays_there():
    model, optimizer = _model_and_optimizer()
    with back_on_the_cpu(model, optimizer, device_chosen_by_fit=False):
        model.to("meta")
    assert model.weight.device.type == "meta"
