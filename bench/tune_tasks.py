"""Small tasks for bench/tune_vs_oracle.py, built from trainwise's own parts.

Each task trains as `trainwise run` does: the trainwise baseline model with the recipe's
init policy, `make_adamw` (weight decay 0.01 on weights only), batch 128, `to_loader`, the
`fit` loop, and OneCycleLR over the whole run at the peak lr (or a constant lr). Fewer epochs
than the recipe's 40 keep a 17-point oracle affordable on a 2-core CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwise.data.tensors import Normaliser, to_loader
from trainwise.model.baselines import cnn1d, loss_function, mlp
from trainwise.model.init import init_weights
from trainwise.model.optim import make_adamw
from trainwise.train.loop import fit
from trainwise.tune.short_runs import onecycle

BATCH_SIZE = 128  # the recipe's default (train.batch_size)
WEIGHT_DECAY = 0.01  # the recipe's default (train.weight_decay)


@dataclass
class Task:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    make_model: Callable[[], nn.Module]
    loss_fn: nn.Module
    task: str  # "classification" / "regression"
    epochs: int
    describe: str
    oracle_seeds: tuple[int, ...] = (0, 1, 2)

    def model(self, seed: int) -> nn.Module:
        """The initial model of one seed: built and initialised under that seed."""
        torch.manual_seed(seed)
        model = self.make_model()
        init_weights(model)
        return model

    def train_loader(self, seed: int, drop_last: bool = False) -> Any:
        return to_loader(self.x_train, self.y_train, BATCH_SIZE, shuffle=True, seed=seed,
                         drop_last=drop_last)

    def val_loader(self) -> Any:
        return to_loader(self.x_val, self.y_val, 512, shuffle=False, seed=0)


def make_optimizer(model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    return make_adamw(model, lr or 1e-3, WEIGHT_DECAY)


def train_full(task: Task, lr: float, seed: int, schedule: str = "onecycle") -> float:
    """One full run at peak (or constant) lr: the final validation loss, inf if it diverged."""
    model = task.model(seed)
    loader = task.train_loader(seed)
    optimizer = make_optimizer(model, lr)
    scheduler = onecycle(optimizer, task.epochs * len(loader)) if schedule == "onecycle" \
        else None
    torch.manual_seed(seed)  # dropout draws
    state = fit(model, loader, task.val_loader(), optimizer=optimizer, loss_fn=task.loss_fn,
                max_epochs=task.epochs, task=task.task, scheduler=scheduler)
    epochs = [row for row in state.history if row["kind"] == "epoch"]
    if state.stop_reason or len(epochs) < task.epochs:
        return math.inf
    value = float(epochs[-1]["val_loss"])
    return value if math.isfinite(value) else math.inf


def _normalised(x_train, y_train, x_val, y_val, regression: bool = False):
    norm = Normaliser().fit(x_train)
    if regression:  # the recipe standardises regression targets with training statistics
        mean, std = float(y_train.mean()), float(y_train.std())
        y_train, y_val = (y_train - mean) / std, (y_val - mean) / std
        y_train, y_val = y_train.astype(np.float32), y_val.astype(np.float32)
    return norm.transform(x_train), y_train, norm.transform(x_val), y_val


def digits() -> Task:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    tr, va = order[:1400], order[1400:]
    arrays = _normalised(x[tr], y[tr], x[va], y[va])
    return Task("digits MLP", *arrays, lambda: mlp(64, 10), loss_function("classification"),
                "classification", 15, "sklearn digits 1400/397, trainwise mlp (BN, dropout "
                "0.1), 15 epochs", oracle_seeds=(0, 1, 2, 3, 4))  # cheap, noisy: 5 seeds


def mnist1d() -> Task:
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    x, y = raw["x"].astype(np.float32)[:, None, :], raw["y"].astype(np.int64)
    arrays = _normalised(x[:3600], y[:3600], x[3600:], y[3600:])
    return Task("MNIST-1D CNN", *arrays, lambda: cnn1d(1, 10), loss_function("classification"),
                "classification", 8, "MNIST-1D 3600/400, trainwise cnn1d (the recipe's "
                "default model), 8 epochs")


def friedman() -> Task:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=2500, n_features=10, noise=1.0, random_state=0)
    arrays = _normalised(x[:2000].astype(np.float32), y[:2000], x[2000:].astype(np.float32),
                         y[2000:], regression=True)
    return Task("Friedman-1 MLP (regression)", *arrays, lambda: mlp(10, 1),
                loss_function("regression"),
                "regression", 15, "sklearn make_friedman1 (noise 1) 2000/500, standardised "
                "target, trainwise mlp, MSE, 15 epochs", oracle_seeds=(0, 1, 2, 3, 4))


TASKS: dict[str, Callable[[], Task]] = {"digits": digits, "mnist1d": mnist1d,
                                        "friedman": friedman}
