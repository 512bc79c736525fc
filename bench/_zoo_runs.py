"""The diagnosis zoo's runs: short real trainings on tables, sequences and images, each healthy
or broken in one known way. bench/diagnosis_zoo.py trains them and scores the diagnosis.

A case builds a `Run` from a seed: the model, loaders, loss, learning rate and epochs, plus how
it is broken. Healthy runs use the settings the recipe would (AdamW at a tuned lr, early
stopping with patience 5); a broken run changes exactly one thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # x, y, x_val, y_val


# data ------------------------------------------------------------------------------------
def _standardise(x: np.ndarray, x_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))  # per feature / per channel
    mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True) + 1e-8
    return (x - mean) / std, (x_val - mean) / std


def _tensors(x: np.ndarray, y: np.ndarray, n_train: int, regression: bool = False) -> Arrays:
    x_train, x_val = _standardise(x[:n_train], x[n_train:])
    # regression targets (N, 1), as the model outputs: (N,) would broadcast inside MSELoss
    ys = [torch.tensor(part[:, None], dtype=torch.float32) if regression
          else torch.tensor(part, dtype=torch.long) for part in (y[:n_train], y[n_train:])]
    return (torch.tensor(x_train, dtype=torch.float32), ys[0],
            torch.tensor(x_val, dtype=torch.float32), ys[1])


@cache
def table() -> Arrays:
    """4 classes, 20 features (10 informative), 1600 train / 400 validation rows."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_redundant=4,
                               n_classes=4, n_clusters_per_class=2, class_sep=1.5,
                               random_state=0)
    return _tensors(x, y, 1600)


@cache
def table_regression() -> Arrays:
    """Friedman #1 (10 features, 5 used), target standardised; 1600 / 400 rows."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    return _tensors(x, (y - y.mean()) / y.std(), 1600, regression=True)


@cache
def sequences() -> Arrays:
    """MNIST-1D (generated offline), 2400 train / 600 validation sequences (N, 1, 40)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 3000
    data = make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]])[:, None, :]
    return _tensors(x, np.concatenate([data["y"], data["y_test"]]), len(data["x"]))


@cache
def images() -> Arrays:
    """scikit-learn's 8x8 digits (bundled): 1400 train / 397 validation images (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x = digits.images[order][:, None].astype(np.float64) / 16.0
    return _tensors(x, digits.target[order], 1400)


# models ----------------------------------------------------------------------------------
def mlp(inputs: int, outputs: int, width: int = 64, depth: int = 2,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else width, width), activation()]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def cnn1d(channels: int = 25) -> nn.Sequential:
    """The MNIST-1D paper's ConvBase: 3 conv layers of stride 2, then a linear head."""
    return nn.Sequential(nn.Conv1d(1, channels, 5, 2, 1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, 2, 1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, 2, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(channels * 5, 10))


class TimeMajor(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)  # (N, 1, T) -> (N, T, 1) for a batch_first GRU


class LastState(nn.Module):
    def forward(self, out: tuple[torch.Tensor, Any]) -> torch.Tensor:
        return out[0][:, -1]  # (N, T, H) -> (N, H)


def gru(hidden: int = 48) -> nn.Sequential:
    return nn.Sequential(TimeMajor(), nn.GRU(1, hidden, batch_first=True), LastState(),
                         nn.Linear(hidden, 10))


def cnn2d(width: int = 16) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * width * 16, 10))


def dead_init(model: nn.Module) -> nn.Module:
    """Every hidden bias at -10: each ReLU's pre-activation is negative for every input."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    with torch.no_grad():
        for layer in layers[:-1]:
            layer.bias.fill_(-10.0)
    return model


# loaders ---------------------------------------------------------------------------------
class Recording(Dataset):
    """(x, y) pairs that remember which indices the last batch asked for."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y, self.asked = x, y, []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.asked.append(index)
        return self.x[index], self.y[index]


class CorruptOneBatch:
    """Collate that multiplies the inputs of the `at`-th batch (counted over the whole run) by
    `scale`, and records which samples that batch held."""

    def __init__(self, dataset: Recording, at: int, scale: float = 1000.0):
        self.dataset, self.at, self.scale = dataset, at, scale
        self.count, self.indices = 0, None

    def __call__(self, samples: list[Any]) -> Any:
        self.count += 1
        x, y = default_collate(samples)
        if self.count == self.at:
            self.indices = sorted(self.dataset.asked[-len(samples):])
            x = x * self.scale
        self.dataset.asked.clear()
        return x, y


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, *,
           shuffle: bool = True, collate: Callable | None = None,
           dataset: Dataset | None = None) -> DataLoader:
    return DataLoader(dataset or Recording(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed), collate_fn=collate)


# runs ------------------------------------------------------------------------------------
@dataclass
class Run:
    model: nn.Module
    train: DataLoader
    val: DataLoader
    lr: float
    epochs: int
    num_classes: int = 10
    patience: int | None = 5  # None: no early stopping (runs that go far past the best)
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    task: str = "classification"
    optimizer: str = "adamw"
    own_loop: str | None = None  # "no_zero_grad": a user's loop through trainwise.Monitor
    corrupt: CorruptOneBatch | None = None


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # table, sequence or image
    expected: tuple[str, ...]  # codes that name the fault; () for a healthy run
    make: Callable[[int], Run]


def seeded(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(seed)
    return make()
