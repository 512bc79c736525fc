"""The loops bench/overhead.py times: the same MNIST-1D CNN and data under a plain PyTorch loop,
trainwise.fit, the plain loop plus trainwise.Monitor, Lightning's Trainer and fastai's Learner
(their code follows ../shared/bench/peers_overhead.py). Each takes (model, train loader, val
loader, epochs, clock) and ticks the clock after every epoch's evaluation.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

BATCH, LR, VAL_BATCH = 100, 1e-2, 500


def model(channels: int) -> nn.Sequential:
    """The MNIST-1D paper's ConvBase (25 channels: 5,210 parameters; 204: 50x that)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, channels, 5, 2, 1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, 2, 1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, 2, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(channels * 5, 10))


class Clock:
    """Wall and CPU time at each epoch boundary: the process's CPU time, or with
    `cpu=time.thread_time` the calling thread's (contenders taking turns in threads)."""

    def __init__(self, cpu: Callable[[], float] = time.process_time) -> None:
        self.cpu = cpu
        self.marks = [self._now()]

    def _now(self) -> tuple[float, float, float]:
        return time.perf_counter(), self.cpu(), time.thread_time()

    def tick(self) -> None:
        self.marks.append(self._now())

    def epochs(self) -> dict[str, list[float]]:
        """Seconds per epoch: "wall", "cpu" and "thread" (the calling thread's CPU time)."""
        marks = np.array(self.marks)
        return {"wall": np.diff(marks[:, 0]).tolist(), "cpu": np.diff(marks[:, 1]).tolist(),
                "thread": np.diff(marks[:, 2]).tolist()}


def plain(m: nn.Module, train: DataLoader, val: DataLoader, epochs: int, clock: Clock) -> None:
    opt = torch.optim.AdamW(m.parameters(), LR)
    for _ in range(epochs):
        m.train()
        for x, y in train:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            sum((m(x).argmax(1) == y).sum().item() for x, y in val)
        clock.tick()


def monitor(m: nn.Module, train: DataLoader, val: DataLoader, epochs: int, clock: Clock) -> None:
    """The plain loop plus trainwise.Monitor's three lines (its evaluation replaces the
    plain loop's accuracy pass)."""
    from trainwise import Monitor

    opt = torch.optim.AdamW(m.parameters(), LR)
    with Monitor(Path(tempfile.mkdtemp()) / "run", console=False, report=False) as mon:
        for _ in range(epochs):
            m.train()
            for x, y in train:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(m(x), y)
                loss.backward()
                mon.step(loss, m, opt)
                opt.step()
            mon.evaluate(m, val, nn.CrossEntropyLoss())
            clock.tick()


def fit(m: nn.Module, train: DataLoader, val: DataLoader, epochs: int, clock: Clock) -> None:
    """trainwise.fit with every monitor on: step signals, per-layer norms every 50 steps,
    confidence statistics, history.jsonl, TensorBoard events, best-weight tracking."""
    from trainwise.rundir import RunDir
    from trainwise.train.callbacks import BestWeights, HistoryWriter, TensorBoardLogger
    from trainwise.train.loop import fit as trainwise_fit

    class Tick:
        def on_epoch_end(self) -> None:
            clock.tick()

    run = RunDir(Path(tempfile.mkdtemp()) / "run")
    callbacks = [BestWeights(patience=epochs), HistoryWriter(run),
                 TensorBoardLogger(run.tensorboard_dir), Tick()]
    trainwise_fit(m, train, val, optimizer=torch.optim.AdamW(m.parameters(), LR),
                  loss_fn=nn.CrossEntropyLoss(), max_epochs=epochs, callbacks=callbacks,
                  log_every=10, layer_every=50)


def lightning(m: nn.Module, train: DataLoader, val: DataLoader, epochs: int,
              clock: Clock) -> None:
    import lightning as L  # noqa: N812

    for name in ("lightning", "lightning.pytorch", "lightning.pytorch.utilities.rank_zero",
                 "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "GPU available: ..." every fit

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def training_step(self, batch, index):
            x, y = batch
            loss = nn.functional.cross_entropy(self.m(x), y)
            self.log("loss", loss)
            return loss

        def validation_step(self, batch, index):
            x, y = batch
            self.log("acc", (self.m(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), LR)

    class Tick(L.Callback):
        def on_train_epoch_end(self, trainer, module) -> None:
            clock.tick()

    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[Tick()])
    trainer.fit(Module(), train, val)


def fastai(m: nn.Module, train: DataLoader, val: DataLoader, epochs: int, clock: Clock) -> None:
    import fastai.callback.progress  # noqa: F401  (patches Learner.no_bar)
    from fastai.basics import Callback, DataLoaders, Learner, accuracy
    from fastai.optimizer import Adam

    class Tick(Callback):
        def after_epoch(self) -> None:
            clock.tick()

    dls = DataLoaders.from_dsets(train.dataset, val.dataset, bs=BATCH, device="cpu")
    learn = Learner(dls, m, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, opt_func=Adam,
                    cbs=[Tick()])
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, LR)


CONTENDERS = {"plain": plain, "fit": fit, "monitor": monitor, "lightning": lightning,
              "fastai": fastai}
# what each contender imports of its library (overhead.py checks, in a fresh process, what
# these imports do to the environment)
IMPORTS = {"plain": ["torch"], "fit": ["trainwise.train.loop", "trainwise.train.callbacks"],
           "monitor": ["trainwise.train.user_monitor", "trainwise.train.callbacks"],
           "lightning": ["lightning"], "fastai": ["fastai.basics", "fastai.callback.progress"]}
