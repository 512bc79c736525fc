"""run(callbacks=...) reaches the train stage's fit; a callback's stop is named (audit s12 L6)."""

from __future__ import annotations

import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.train.loop import fit


class StopAtTwo:
    def __init__(self):
        self.events = []

    def on_fit_start(self, state, model, optimizer):
        self.events.append("fit_start")

    def on_epoch_end(self, state, row):
        row["my_metric"] = 10 * row["epoch"]
        state.should_stop = row["epoch"] >= 2

    def on_fit_end(self, state):
        self.events.append("fit_end")


def test_a_callback_that_stops_without_a_reason_is_named(blobs):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)
    model = nn.Linear(8, 3)
    state = fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=10, callbacks=[StopAtTwo()])
    assert state.epoch == 2 and state.stop_reason == "stopped by StopAtTwo"


def test_run_passes_its_callbacks_to_training(tmp_path):
    mine = StopAtTwo()
    result = trainwise.run({"data": {"source": "digits"}}, report=False, callbacks=[mine],
                           overrides=["train.max_epochs=6", "train.lr=0.01", "run.checks=false",
                                      "run.threads=1", f"run.out_dir=\"{tmp_path}\""])
    assert mine.events == ["fit_start", "fit_end"]
    rows = [json.loads(line) for line in (result.path / "history.jsonl").open()]
    epochs = [row for row in rows if row.get("kind") == "epoch"]
    assert [row["my_metric"] for row in epochs] == [10, 20]  # written after the callback ran
    (trained,) = [f for f in result.findings if f.code == "trained"]
    assert "Trained 2 epochs" in trained.message
    assert "Stopped by StopAtTwo." in trained.message  # not "Stopped: stopped by" (s16 D10)
