"""find_lr and tune_lr refuse the notebook slips of audit s16 before any work: a Dataset where
a DataLoader goes (N2: a TensorDataset ran 30 one-sample steps and blamed the model), batches
without a batch dimension, and an optimizer object or class given as make_optimizer (N17: raw
TypeErrors from inside torch). Oracle for "before any work": the model's weights are untouched
and the message names the argument and the call that fixes it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.findings import TrainwiseError

CE = nn.CrossEntropyLoss()


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def _adamw(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=lr)


def _data() -> TensorDataset:
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())


def _loader() -> DataLoader:
    return DataLoader(_data(), batch_size=32, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


def _refused(call, *words: str) -> str:
    with pytest.raises(TrainwiseError) as caught:
        call()
    message = str(caught.value)
    for word in words:
        assert word in message, (word, message)
    return message


def test_find_lr_refuses_a_dataset_and_says_wrap_it():
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    _refused(lambda: trainwise.find_lr(model, CE, _data(), _adamw, num_steps=30, seeds=(0,)),
             "find_lr(loader=...) was given a TensorDataset", "not a DataLoader",
             "Wrap it: loader=DataLoader(dataset, batch_size=64, shuffle=True)")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_find_lr_refuses_items_without_a_batch_dimension():
    samples = list(_data())  # [(x_i of shape (4,), y_i of shape ())]: unbatched
    _refused(lambda: trainwise.find_lr(_net(), CE, samples, _adamw, num_steps=30, seeds=(0,)),
             "loader (a list)", "single value (0, shape ())", "DataLoader(ds, batch_size=64")


def test_find_lr_still_takes_a_list_of_batches():
    found = trainwise.find_lr(_net(), CE, list(_loader()), _adamw, num_steps=30, seeds=(0,))
    assert len(found.curves[0].lrs) == 30


@pytest.mark.parametrize("name", ["train_loader", "val_loader", "range_loader"])
def test_tune_lr_refuses_a_dataset_for_each_loader(name):
    loaders = {"train_loader": _loader(), "val_loader": _loader(), "range_loader": None,
               name: _data()}
    _refused(lambda: trainwise.tune_lr(_net(), CE, loaders["train_loader"],
                                       loaders["val_loader"], _adamw, max_epochs=2,
                                       range_loader=loaders["range_loader"]),
             f"tune_lr({name}=...) was given a TensorDataset",
             f"Wrap it: {name}=DataLoader(dataset, batch_size=64")


@pytest.mark.parametrize("kind", ["object", "class"])
def test_find_lr_refuses_an_optimizer_as_make_optimizer(kind):
    model = _net()
    given = torch.optim.AdamW(model.parameters()) if kind == "object" else torch.optim.AdamW
    message = _refused(lambda: trainwise.find_lr(model, CE, _loader(), given, num_steps=10,
                                                 seeds=(0,)),
                       "make_optimizer is", "AdamW", "called as make_optimizer(model)",
                       "make_optimizer=lambda model, lr=1e-3:")
    assert ("optimizer object" in message) == (kind == "object")


def test_tune_lr_refuses_an_optimizer_class_with_both_calls_named():
    _refused(lambda: trainwise.tune_lr(_net(), CE, _loader(), _loader(), torch.optim.AdamW,
                                       max_epochs=2),
             "the optimizer class AdamW", "make_optimizer(model, lr) by each short run")


def test_tune_lr_checks_a_list_of_batches_once_not_again_in_its_range_test(monkeypatch):
    """Review s16 VN9: tune_lr's call checks ran, then its range test's the same ones on the
    same loader, reading a re-iterable's first batch twice."""
    import trainwise.tune.call_checks as call_checks

    read = []
    first_target = call_checks._first_target
    monkeypatch.setattr(call_checks, "_first_target",
                        lambda loader: read.append(loader) or first_target(loader))
    batches = list(_loader())
    trainwise.tune_lr(_net(), CE, batches, _loader(), _adamw, max_epochs=2,
                      config=trainwise.TuneConfig(num_steps=10, num_seeds=1, short_runs=False))
    assert [loader is batches for loader in read] == [True]
    trainwise.find_lr(_net(), CE, batches, _adamw, num_steps=10, seeds=(0,))
    assert len(read) == 2  # find_lr still checks its own
