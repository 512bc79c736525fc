"""Train/eval modes a user set on submodules (a frozen backbone in eval, so that its pretrained
BatchNorm statistics stay fixed) survive evaluation and fit (audit s14 G1, G5)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.train.evaluate import evaluate
from trainwise.train.loop import fit


class FineTuned(nn.Module):
    """A frozen backbone with BatchNorm under a trained head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, 3)
        self.backbone.requires_grad_(False)

    def forward(self, x):
        return self.head(self.backbone(x))


def _frozen_backbone() -> FineTuned:
    torch.manual_seed(0)
    model = FineTuned()
    model.train()
    model.backbone.eval()  # the standard fine-tuning set-up
    return model


def _modes(model: nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def _loaders(blobs):
    x, y = blobs
    x = x * 3 + 2  # far from the BatchNorm's initial statistics (mean 0, variance 1)
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    return train, DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)


def test_evaluation_puts_back_every_modules_own_mode(blobs):
    model = _frozen_backbone()
    before = _modes(model)
    assert before["backbone"] is False and before["head"] is True  # a mixed model
    _, val = _loaders(blobs)
    evaluate(model, val, nn.CrossEntropyLoss(), "classification")
    assert _modes(model) == before
    with trainwise.Monitor(None, console=False, tensorboard=False, report=False) as monitor:
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
    assert _modes(model) == before


def test_fit_keeps_a_frozen_backbones_batch_norm_statistics(blobs):
    model = _frozen_backbone()
    before = _modes(model)
    statistics = model.backbone[1].running_mean.clone()
    head = model.head.weight.clone()
    train, val = _loaders(blobs)
    fit(model, train, val, optimizer=torch.optim.AdamW(model.head.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=2, task="classification")
    assert torch.equal(model.backbone[1].running_mean, statistics)  # old code: moved by ~2
    assert _modes(model) == before
    assert not torch.equal(model.head.weight, head)  # the head trained


def test_fit_trains_a_model_given_in_eval_mode_in_train_mode(blobs):
    model = _frozen_backbone()
    model.eval()  # all of it: trained in train mode, as before
    statistics = model.backbone[1].running_mean.clone()
    seen = []

    class Modes:
        def on_step_end(self, state):
            seen.append(all(module.training for module in state.model.modules()))

    train, val = _loaders(blobs)
    fit(model, train, val, optimizer=torch.optim.AdamW(model.head.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=1, task="classification",
        callbacks=[Modes()])
    assert seen and all(seen)
    assert not torch.equal(model.backbone[1].running_mean, statistics)


def test_a_backbone_a_callback_unfroze_keeps_training_in_train_mode(blobs):
    # review s14 VT3: gradual unfreezing (Lightning's BackboneFinetuning) at epoch 1's end
    model = _frozen_backbone()
    seen: dict[int, set[bool]] = {}

    class Unfreeze:
        def on_epoch_end(self, state, row, model):
            if row["epoch"] == 1:
                inner = getattr(state.model, "module", state.model)
                inner.backbone.requires_grad_(True)
                inner.backbone.train()

        def on_step_end(self, state):
            inner = getattr(state.model, "module", state.model)
            seen.setdefault(state.epoch, set()).add(inner.backbone.training)

    train, val = _loaders(blobs)
    fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=3, task="classification",
        callbacks=[Unfreeze()])
    assert seen == {1: {False}, 2: {True}, 3: {True}}  # old code: {False} in every epoch
