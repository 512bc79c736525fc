"""Toy tasks and deliberately broken modules for the check zoo (zoo.py).

Every task is learnable (a baseline memorises 32 samples in under 60 steps), seeded, and small
enough that preflight on it takes about a second on one CPU thread.
"""

from __future__ import annotations

import torch
from torch import nn

from trainwise.data.task import TaskData


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def table(n: int = 256, num_features: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian blobs 3 std apart: (n, F) float32, labels (n,) int64 in 0..2."""
    gen = _gen(seed)
    centers = 3 * torch.randn(3, num_features, generator=gen)
    y = torch.arange(n) % 3
    return centers[y] + torch.randn(n, num_features, generator=gen), y


def table_regression(n: int = 256, num_features: int = 8,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth non-linear target of standardised features, itself ~unit variance: (n,)."""
    gen = _gen(seed)
    x = torch.randn(n, num_features, generator=gen)
    y = x[:, 0] + torch.tanh(x[:, 1] * x[:, 2]) + 0.1 * torch.randn(n, generator=gen)
    return x, y


def sequences(n: int = 256, length: int = 40, num_classes: int = 10,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, T) unit noise plus a sine whose frequency is the class (MNIST-1D-shaped)."""
    gen = _gen(seed)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    t = torch.arange(length)
    wave = torch.sin(t * (y[:, None, None] + 1) * 0.25)  # (n, 1, T)
    return torch.randn(n, 1, length, generator=gen) + 1.5 * wave, y


def images(n: int = 256, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, S, S) noise with one bright quadrant; the quadrant is the class (4 classes).
    Standardised over the whole set, as the data stage would."""
    gen = _gen(seed)
    y = torch.arange(n) % 4
    x = 0.5 * torch.randn(n, 1, size, size, generator=gen)
    half = size // 2
    for label, (row, col) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        x[y == label, :, row:row + half, col:col + half] += 1.0
    return (x - x.mean()) / x.std(), y


def tokens(n: int = 256, length: int = 16, vocab: int = 100,
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (n, T) int64, 0 = padding at the end: class c texts hold the key token c + 1
    once, somewhere in their first half; other tokens are noise from 3..vocab-1. 2 classes."""
    gen = _gen(seed)
    y = torch.arange(n) % 2
    x = torch.randint(3, vocab, (n, length), generator=gen)
    x[torch.arange(n), torch.randint(0, length // 2, (n,), generator=gen)] = y + 1
    lengths = torch.randint(length // 2, length + 1, (n,), generator=gen)
    x[torch.arange(length)[None] >= lengths[:, None]] = 0  # right padding
    return x, y


def task_data(kind: str, x: torch.Tensor, y: torch.Tensor, task: str = "classification",
              num_classes: int = 0) -> TaskData:
    """The TaskData that build_model sizes a baseline from."""
    names = [str(c) for c in range(num_classes)] if task == "classification" else []
    return TaskData(name=f"zoo-{kind}", kind=kind, task=task, x=x.numpy(), y=y.numpy(),
                    class_names=names)


class Detached(nn.Module):
    """`.detach()` between two layers: `first` never learns (a leftover from debugging)."""

    def __init__(self, num_inputs: int = 8, num_classes: int = 3) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(num_inputs, 32), nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x)).detach())


class ZeroesInputs(nn.Module):
    """A mask bug that multiplies every input by 0 inside forward()."""

    def __init__(self, num_inputs: int = 8, num_classes: int = 3) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(num_inputs, 32), nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x * 0)))


class TimeMajorByView(nn.Module):
    """A GRU wants (T, B, C); x.view(T, B, C) instead of x.permute(2, 0, 1) keeps every shape
    right and hands each sample's GRU a blend of other samples' values."""

    def __init__(self, num_channels: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(num_channels, width), nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        out, _ = self.gru(x.view(length, batch, channels))  # (T, B, H)
        return self.head(out[-1])


class FlattenByView(nn.Module):
    """Conv features (B, 8, 4, 4) flattened with view(-1, 256), a size copied from another
    input shape: 128 values per sample, so every output row holds two samples."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, stride=4, padding=1), nn.ReLU())
        self.head = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).view(-1, 256))  # (B/2, 256)


class FunctionalMLP(nn.Module):
    """A user's own model, activations applied functionally (init policy hint: relu)."""

    def __init__(self, num_inputs: int = 8, num_classes: int = 3, width: int = 64) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(num_inputs, width), nn.Linear(width, width)
        self.out = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SigmoidRegressor(nn.Module):
    """A regression head squashed inside forward(): outputs in (0, 1) whatever the targets."""

    def __init__(self, num_inputs: int = 8, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_inputs, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))
