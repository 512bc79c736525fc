"""Small tasks for bench/tune_vs_oracle.py.

Two kinds:
- recipe tasks ("digits", "mnist1d", "friedman") train as `trainwise run` does: the trainwise
  baseline model with the recipe's init policy, `make_adamw` (weight decay 0.01 on weights
  only), batch 128, `to_loader`, the `fit` loop, and OneCycleLR over the whole run at the
  peak lr. Fewer epochs than the recipe's 40 keep a 17-point oracle affordable on 2 cores.
- anchor tasks ("digits-anchor", "mnist1d-anchor") are the two tasks of
  /work/shared/bench/lr_finders_vs_oracle.py, where issue 6's anchor figures come from, built
  the same way: its data (digits X/16 with RandomState(0)'s permutation; MNIST-1D's first
  3600 / last 400, unnormalised), its models with PyTorch's default init, torch AdamW(wd
  0.01) on every parameter, its batch size and epochs, a CONSTANT lr. Their oracle is its
  plain loop (`anchor_loop`), so our table can be checked against its table; `trainwise
  tune` trains them with the fit loop and no scheduler, as `train.schedule = "constant"`.
"""

from __future__ import annotations

import math
import random
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
ANCHOR_ORACLE_SEEDS = tuple(range(20))  # the anchor tasks' constant-lr losses are chaotic
# (lr 0.0031623 vs 0.00316 moves one MNIST-1D seed's final loss by 8%): 20 seeds put the
# oracle's standard error near 3%, under the 5% the targets ask to resolve


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
    schedule: str = "onecycle"  # or "constant": the schedule of the real run
    batch_size: int = BATCH_SIZE
    anchor: bool = False  # the anchors' setup: default init, AdamW on all, anchor_loop oracle

    def model(self, seed: int) -> nn.Module:
        """The initial model of one seed: built and initialised under that seed."""
        torch.manual_seed(seed)
        model = self.make_model()
        if not self.anchor:
            init_weights(model)
        return model

    def train_loader(self, seed: int, drop_last: bool = False) -> Any:
        return to_loader(self.x_train, self.y_train, self.batch_size, shuffle=True, seed=seed,
                         drop_last=drop_last)

    def make_optimizer(self, model: nn.Module, lr: float | None = None
                       ) -> torch.optim.Optimizer:
        """The real optimizer; the signature `tune_lr` calls (lr None: the range test's)."""
        if self.anchor:  # the anchors' torch AdamW: weight decay on biases and BN too
            return torch.optim.AdamW(model.parameters(), lr=lr or 1e-3,
                                     weight_decay=WEIGHT_DECAY)
        return make_adamw(model, lr or 1e-3, WEIGHT_DECAY)

    def make_scheduler(self) -> Any:
        """For `tune_lr`: what stage_tune passes for train.schedule (None: constant)."""
        return onecycle if self.schedule == "onecycle" else None

    def val_loader(self) -> Any:
        return to_loader(self.x_val, self.y_val, 512, shuffle=False, seed=0)


def oracle_run(task: Task, lr: float, seed: int, schedule: str) -> float:
    """One oracle point: the anchors' own loop for anchor tasks, else `train_full`."""
    if task.anchor:
        return anchor_loop(task, lr, seed)
    return train_full(task, lr, seed, schedule)


def anchor_loop(task: Task, lr: float, seed: int) -> float:
    """lr_finders_vs_oracle.py's `train_eval`, step for step: seed every RNG, default init,
    AdamW(wd 0.01) at a constant lr, torch.randperm batches (last partial batch kept), the
    final validation loss in eval mode; a non-finite training loss is inf."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = task.make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    x, y = torch.as_tensor(task.x_train), torch.as_tensor(task.y_train)
    for _ in range(task.epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(task.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                return math.inf
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        value = float(task.loss_fn(model(torch.as_tensor(task.x_val)),
                                   torch.as_tensor(task.y_val)))
    return value if math.isfinite(value) else math.inf


def train_full(task: Task, lr: float, seed: int, schedule: str = "onecycle") -> float:
    """One full run at peak (or constant) lr with the fit loop, as trainwise trains: the final
    validation loss, inf if it diverged."""
    model = task.model(seed)
    loader = task.train_loader(seed)
    optimizer = task.make_optimizer(model, lr)
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
                "0.1), 15 epochs", oracle_seeds=tuple(range(10)))  # noisy: 10 seeds


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


def digits_anchor() -> Task:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(x))  # the anchor's split, exactly
    tr, va = order[:1400], order[1400:]
    return Task("digits MLP (anchor)", x[tr], y[tr].astype(np.int64), x[va],
                y[va].astype(np.int64),
                lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
                nn.CrossEntropyLoss(), "classification", 8, "the anchors' digits task: X/16, "
                "RandomState(0) split 1400/397, MLP 64-128-10 ReLU (default init), torch "
                "AdamW(wd 0.01) on all parameters, batch 64, 8 epochs, constant lr",
                oracle_seeds=ANCHOR_ORACLE_SEEDS, schedule="constant", batch_size=64, anchor=True)


def mnist1d_anchor() -> Task:
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    x, y = raw["x"].astype(np.float32)[:, None, :], raw["y"].astype(np.int64)  # (4000, 1, 40)

    def make_model() -> nn.Module:
        def cbr(i: int, o: int, k: int, s: int, p: int) -> list[nn.Module]:
            return [nn.Conv1d(i, o, k, stride=s, padding=p), nn.BatchNorm1d(o), nn.ReLU()]

        return nn.Sequential(*cbr(1, 32, 5, 1, 2), *cbr(32, 32, 3, 2, 1), *cbr(32, 64, 3, 2, 1),
                             *cbr(64, 64, 3, 2, 1), nn.Flatten(), nn.Linear(320, 10))

    return Task("MNIST-1D CNN (anchor)", x[:3600], y[:3600], x[3600:], y[3600:], make_model,
                nn.CrossEntropyLoss(), "classification", 10, "the anchors' MNIST-1D task: "
                "3600/400 unnormalised, 4-conv CNN + BN (default init), torch AdamW(wd 0.01) "
                "on all parameters, batch 100, 10 epochs, constant lr",
                oracle_seeds=ANCHOR_ORACLE_SEEDS, schedule="constant", batch_size=100,
                anchor=True)


TASKS: dict[str, Callable[[], Task]] = {"digits": digits, "mnist1d": mnist1d,
                                        "friedman": friedman, "digits-anchor": digits_anchor,
                                        "mnist1d-anchor": mnist1d_anchor}
