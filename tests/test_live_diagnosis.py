"""The diagnosis while training runs (audit s12 L1): a divergence is said, and training ended, at
the first epoch end whose history the diagnosis calls an error, not after the last epoch; a
healthy run hears nothing. Plus the console's epoch lines (L4) and its stop line (L9)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from rich.console import Console
from torch import nn

import trainwise
import trainwise.console as console_module
from trainwise.console import ProgressBar, epoch_line, progress
from trainwise.data.tensors import to_loader
from trainwise.findings import Severity, error, info, warning
from trainwise.rundir import read_history
from trainwise.stages_training import stop_line
from trainwise.train.diagnose import diagnose
from trainwise.train.live_diagnosis import LiveDiagnosis
from trainwise.train.loop import TrainState, fit


def _fit(blobs, lr: float, live: LiveDiagnosis, max_epochs: int = 8) -> TrainState:
    x, y = blobs
    train = to_loader(x[:240], y[:240], 16, shuffle=True, seed=0)  # 15 steps an epoch
    val = to_loader(x[240:], y[240:], 60, shuffle=False, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    return fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=lr),
               loss_fn=nn.CrossEntropyLoss(), max_epochs=max_epochs, callbacks=[live],
               log_every=1)


def _errors(history: list[dict]) -> list[str]:
    return [f.code for f in diagnose(history, num_classes=3) if f.severity is Severity.ERROR]


def _until_epoch(history: list[dict], epoch: int) -> list[dict]:
    end = next(i for i, row in enumerate(history) if row["kind"] == "epoch"
               and row["epoch"] == epoch)
    return history[:end + 1]


def test_a_divergence_stops_fit_at_the_first_epoch_the_diagnosis_calls_it_an_error(blobs):
    said = []
    live = LiveDiagnosis(3, share=math.inf, say=lambda f, epoch: said.append((f.code, epoch)))
    state = _fit(blobs, lr=3.0, live=live)  # the loss rises ~10x in epoch 1; finite
    # the reference: the end-of-training diagnosis of the history cut at each epoch end
    stopped = state.epoch
    assert stopped < 8 and _errors(state.history)  # ended early, on an error
    assert all(not _errors(_until_epoch(state.history, e)) for e in range(1, stopped))
    error = _errors(state.history)[0]
    assert state.should_stop and state.stop_reason == f"the diagnosis found {error} (an error)"
    assert (error, stopped) in said and [f.code for f in live.findings] == [c for c, _ in said]
    assert len({code for code, _ in said}) == len(said)  # each problem said once


def test_a_healthy_fit_hears_nothing_and_runs_to_the_end(blobs):
    said = []
    live = LiveDiagnosis(3, share=math.inf, say=lambda f, epoch: said.append(f.code))
    state = _fit(blobs, lr=0.003, live=live, max_epochs=6)
    assert said == [] and not state.should_stop and state.epoch == 6
    assert not [f for f in diagnose(state.history, num_classes=3)
                if f.severity is not Severity.INFO]  # the end's verdict agrees


def test_a_warning_is_said_once_two_diagnoses_in_a_row_find_it_an_error_at_once():
    """The zoo's healthy GRU run had a gradient_spike at epoch 3's diagnosis only, which the
    diagnosis after training does not report: said at once, it was a false alarm."""
    said = []
    live = LiveDiagnosis(3, say=lambda f, epoch: said.append((f.code, epoch)))
    spike = warning("train", "gradient_spike", "A spike.", "Look at the batch.")
    overfit = warning("train", "overfitting", "Overfits.", "Stop earlier.")
    exploded = error("train", "loss_exploding", "Exploded.", "Lower the lr.")
    late = info("train", "schedule_cut", "Cut.")
    for epoch, found in enumerate([[spike], [], [overfit, late], [overfit, exploded],
                                   [overfit, exploded]], start=1):
        live._say_new(found, epoch)
    assert said == [("overfitting", 4), ("loss_exploding", 4)]


def test_the_run_says_the_divergence_live_and_stops_training(tmp_path):
    """The audit's run: digits at lr 3 exploded by step 21 and trained all 6 epochs, the
    error said only after the last one."""
    with console_module.console.capture() as captured:
        result = trainwise.run({"data": {"source": "digits"}}, overrides=[
            "train.max_epochs=6", "train.lr=3.0", "run.threads=1", "run.checks=false",
            f'run.out_dir="{tmp_path}"'], report=False)
    epochs = [row for row in read_history(result.path) if row["kind"] == "epoch"]
    text = captured.get()
    assert len(epochs) < 6, text
    assert f"loss_exploding at epoch {len(epochs)}:" in text
    assert (f"training stopped at epoch {len(epochs)}: the diagnosis found loss_exploding "
            "(an error)") in text
    trained = next(f for f in result.findings if f.code == "trained")
    assert "Stopped: the diagnosis found loss_exploding (an error)." in trained.message


def test_the_epoch_line_gives_train_loss_beside_val_loss_and_stays_at_a_terminal(monkeypatch):
    terminal = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=120)
    monkeypatch.setattr(console_module, "console", terminal)
    with progress() as bar:
        shown = ProgressBar(bar, total_steps=20)
        for epoch in (1, 2):
            shown.on_step_end([{"loss": 1.0}] * 10)
            shown.on_epoch_end({"epoch": epoch, "train_loss": 0.61234 / epoch,
                                "val_loss": 0.5, "val_accuracy": 0.8, "seconds": 2.345})
    out = terminal.file.getvalue()
    for epoch, train_loss in ((1, "0.6123"), (2, "0.3062")):
        line = f"epoch {epoch}  train_loss {train_loss}  val_loss 0.5000  val_acc 0.800  2.3 s"
        assert line in out  # kept above the (transient) bar, not only its replaced text
    longest = {"epoch": 999, "train_loss": 9.8765, "val_loss": 9.8765, "val_accuracy": 0.5,
               "val_balanced_accuracy": 0.5}  # with the epoch's seconds and the ETA
    assert len(f"{epoch_line(longest)}  12.3 s  ~59 min left") < 100


@pytest.mark.parametrize("failed, end", [
    (False, "testing the weights of epoch 3 (val_loss 0.2040)"),
    (True, "the weights of epoch 3 (val_loss 0.2040) are kept; the error below ends the run")])
def test_the_stop_line_names_the_epoch_patience_and_the_weights_tested(failed, end):
    """The reason is what BestWeights wrote (the only producer of "early stopping ..."): the
    line keeps it and reads nothing else of early stopping than the kept epoch (review s12
    VT3: it also read es.patience for a pre-s12 format nothing produces any more)."""
    from types import SimpleNamespace

    from trainwise.train.callbacks import BestWeights

    best, state = BestWeights(3), TrainState()
    for epoch, val_loss in enumerate([0.5, 0.3, 0.204, 0.21, 0.25, 0.22], start=1):
        state.epoch = epoch
        best.on_epoch_end(state, {"epoch": epoch, "val_loss": val_loss}, nn.Linear(2, 1))
    assert state.should_stop and state.stop_reason == (
        "early stopping at epoch 6: no better validation loss for 3 epochs since epoch 3 "
        "(train.patience = 3)")
    kept = SimpleNamespace(best_epoch=3, best_loss=0.204)  # no patience to read
    assert stop_line(state, best.early_stopping, failed) == f"{state.stop_reason}: {end}"
    assert stop_line(state, kept, failed) == f"{state.stop_reason}: {end}"
    state.stop_reason = "train.max_minutes = 1 reached (another epoch at 12 s would pass it)"
    assert stop_line(state, kept, failed).startswith(
        "training stopped at epoch 6: train.max_minutes = 1 reached")
