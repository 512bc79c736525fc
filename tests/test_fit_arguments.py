"""fit's argument checks (audit s12 L3, L13): a missing validation loader and a micro-batch
count above the loader's batch are refused up front with the fix, not deep in Fabric."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.findings import TrainwiseError
from trainwise.train.loop import fit


def _setup(blobs, batch_size=32):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, train, val


def _fit(model, train, val, **kwargs):
    return fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               loss_fn=nn.CrossEntropyLoss(), max_epochs=1, **kwargs)


@pytest.mark.parametrize("task", [None, "classification"])
def test_no_val_loader_is_refused_with_the_way_to_make_one(blobs, task):
    model, train, _ = _setup(blobs)
    with pytest.raises(TrainwiseError, match="no val_loader.*trainwise.split"):
        _fit(model, train, None, task=task)


def test_an_empty_val_loader_is_refused(blobs):
    model, train, _ = _setup(blobs)
    empty = DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(TrainwiseError, match="an empty val_loader"):
        _fit(model, train, empty)


def test_more_micro_batches_than_rows_is_refused_naming_lightnings_meaning(blobs):
    model, train, val = _setup(blobs, batch_size=32)
    with pytest.raises(TrainwiseError, match=r"batch of 32 rows .* into 64 micro-batches, 32 "
                                             r"of them empty(.|\n)*unlike Lightning"):
        _fit(model, train, val, accumulate_grad_batches=64)


def test_micro_batches_up_to_the_batch_size_change_only_memory(blobs):
    """k = 32 (one row each) and k = 4: the same 8 steps and weights as k = 1, to float
    round-off: the effective batch is the loader's."""
    model, train, val = _setup(blobs, batch_size=32)
    results = {}
    for k in (1, 4, 32):
        net = copy.deepcopy(model)
        state = _fit(net, train, val, accumulate_grad_batches=k)
        results[k] = (state.step, torch.cat([p.detach().flatten() for p in net.parameters()]))
    for k in (4, 32):
        assert results[k][0] == results[1][0] == 8
        assert torch.allclose(results[k][1], results[1][1], atol=1e-5)


def _schedules(optimizer):
    schedules = torch.optim.lr_scheduler
    return {"cosine": schedules.CosineAnnealingLR(optimizer, T_max=3),
            "step": schedules.StepLR(optimizer, step_size=1, gamma=0.1),
            "multistep": schedules.MultiStepLR(optimizer, milestones=[5, 2])}


@pytest.mark.parametrize(("name", "said"), [
    ("cosine", r"CosineAnnealingLR\(T_max=3\).*every 6 steps"),
    ("step", r"StepLR\(step_size=1, gamma=0.1\).*every 1 step\(s\), 8 times"),
    ("multistep", r"MultiStepLR\(milestones=\[2, 5\]\).*all 2 decays")])
def test_a_schedule_written_in_epochs_stepped_per_step_is_warned_about(blobs, name, said):
    """audit s14 G7: 8 steps an epoch; each schedule ends within the first epoch."""
    model, train, val = _setup(blobs, batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match=said) as caught:
        fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
            max_epochs=1, scheduler=_schedules(optimizer)[name])
    (warned,) = [w for w in caught if "an epoch is 8 steps" in str(w.message)]
    assert "fit(..., scheduler_interval='epoch')" in str(warned.message)
    assert warned.filename == __file__  # points at the user's fit call


def test_schedules_sized_in_steps_or_stepped_per_epoch_are_not_warned_about(blobs, recwarn):
    model, train, val = _setup(blobs, batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _fit(model, train, val, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                                                 T_max=8))
    _fit(model, train, val, scheduler=_schedules(optimizer)["step"], scheduler_interval="epoch")
    assert not [w for w in recwarn if "scheduler_interval" in str(w.message)]
