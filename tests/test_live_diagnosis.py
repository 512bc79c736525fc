"""The diagnosis while training runs (audit s12 L1): a problem is said at the epoch end whose
history shows it, not after the last epoch; only a divergence (NaN/inf) stops training, a loss
that exploded is said as "It may recover" (review s12 F1); a healthy run hears nothing. Plus the
console's epoch lines (L4) and its stop line (L9)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

import trainwise
import trainwise.console as console_module
import trainwise.train.live_diagnosis as live_module
from trainwise.console import ProgressBar, epoch_line, progress
from trainwise.data.tensors import to_loader
from trainwise.findings import Severity, error, info, warning
from trainwise.rundir import read_history
from trainwise.stages_training import stop_line
from trainwise.train.diagnose import diagnose
from trainwise.train.live_diagnosis import LiveDiagnosis
from trainwise.train.loop import TrainState, fit


def _fit(blobs, lr: float, live: LiveDiagnosis, max_epochs: int = 8, sgd: bool = False,
         **fit_args) -> TrainState:
    """AdamW; `sgd`: SGD with momentum 0.9, which at lr 3 stays lost (the blobs recover from
    AdamW at lr 3 to 100 within an epoch or two)."""
    x, y = blobs
    train = to_loader(x[:240], y[:240], 16, shuffle=True, seed=0)  # 15 steps an epoch
    val = to_loader(x[240:], y[240:], 60, shuffle=False, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if sgd
                 else torch.optim.AdamW(model.parameters(), lr=lr))
    return fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
               max_epochs=max_epochs, callbacks=[live], log_every=1, **fit_args)


def _errors(history: list[dict]) -> list[str]:
    return [f.code for f in diagnose(history, num_classes=3) if f.severity is Severity.ERROR]


def _until_epoch(history: list[dict], epoch: int) -> list[dict]:
    end = next(i for i, row in enumerate(history) if row["kind"] == "epoch"
               and row["epoch"] == epoch)
    return history[:end + 1]


def test_a_lost_run_trains_to_the_end_its_error_said_live_as_a_warning(blobs):
    """Review s12 F1: only a divergence stops live. SGD at lr 3 stays lost (the end's
    diagnosis of the history cut at epochs 1 and 2 already calls it an error): said live as
    "It may recover", trained to the end, and the diagnosis after training says the error."""
    said = []
    live = LiveDiagnosis(3, share=math.inf, say=lambda f, epoch: said.append((f, epoch)))
    state = _fit(blobs, lr=3.0, live=live, max_epochs=6, sgd=True)  # 8: NaN at step 109
    assert [e for e in (1, 2) if _errors(_until_epoch(state.history, e))] == [1, 2]
    assert state.epoch == 6 and not state.should_stop and not state.stop_reason
    assert [(f.code, f.severity, epoch) for f, epoch in said] == [
        ("loss_exploding", Severity.WARNING, 2)]  # seen at 1, said at 2
    assert said[0][0].message.startswith(
        "It may recover (the diagnosis after training judges it): The loss exploded")
    assert "loss_exploding" in _errors(state.history)


def test_a_nan_loss_still_stops_fit_and_the_divergence_is_said(blobs):
    """fit stops on the first non-finite loss itself (its reason, not the live diagnosis's);
    audit s16 N4: the live diagnosis then says the divergence at fit's end, an error (a
    notebook's fit has no diagnosis after training; before, nothing was said)."""
    x, y = blobs
    x = x.clone()
    x[40] = float("nan")  # in epoch 1's shuffled batches
    said = []
    live = LiveDiagnosis(3, share=math.inf, say=lambda f, epoch: said.append(f.code))
    state = _fit((x, y), lr=0.003, live=live)
    assert state.should_stop and state.epoch == 1
    assert state.stop_reason.startswith("non-finite loss or gradient at step ")
    assert said == ["divergence"] and "divergence" in _errors(state.history)
    assert [(f.code, f.severity) for f in live.findings] == [("divergence", Severity.ERROR)]


def test_a_reused_live_diagnosis_starts_afresh_on_a_new_fit_not_on_a_resume(blobs, tmp_path):
    """Audit s16 N13: the same object in a re-run notebook cell said nothing the second time
    and kept the first fit's reference loss; a new fit diagnoses a new training, a resume
    keeps what its checkpoint restored."""
    x, y = blobs
    x = x.clone()
    x[40] = float("nan")
    said = []
    live = LiveDiagnosis(3, share=math.inf, say=lambda f, epoch: said.append(f.code))
    for _ in range(2):
        _fit((x, y), lr=0.003, live=live)
    assert said == ["divergence", "divergence"] and len(live.findings) == 1
    live._first_train_loss = 123.0  # a stale reference: a new fit drops it
    live.on_fit_start(TrainState())
    assert live._first_train_loss is None and live.findings == []
    live.findings, live._first_train_loss = [error("train", "divergence", "m", "f")], 1.0
    live.on_fit_start(TrainState(step=30, resumed_from_step=30))
    assert live._first_train_loss == 1.0 and len(live.findings) == 1


def test_only_a_divergence_stops_live_and_every_other_error_may_recover(monkeypatch):
    """The live rule alone (stops_training), on findings given: loss_exploding's error for 5
    epochs never stops training (one-cycle's rising lr or not); a divergence stops at once."""
    exploded = error("train", "loss_exploding", "The loss exploded.", "Lower the lr.")
    diverged = error("train", "divergence", "The loss became NaN.", "Clip.")
    found = {1: [exploded], 2: [exploded], 3: [exploded], 4: [exploded], 5: [exploded],
             6: [exploded, diverged]}
    history: list[dict] = []
    monkeypatch.setattr(live_module, "diagnose", lambda h, **_: found[h[-1]["epoch"]])
    said = []
    live = LiveDiagnosis(share=math.inf, say=lambda f, epoch: said.append((f, epoch)))
    for epoch in range(1, 7):
        history.append({"kind": "step", "step": epoch, "epoch": epoch, "lr": 1.0})
        state = TrainState(epoch=epoch, history=history)
        live.on_epoch_end(state, {"kind": "epoch", "epoch": epoch, "train_loss": 1.0})
        assert state.should_stop == (epoch == 6)
    assert state.stop_reason == "the diagnosis found divergence (an error)"
    (first, at), (last, stop_epoch) = said
    assert (at, first.severity) == (2, Severity.WARNING)  # seen at 1, said at 2
    assert first.message == ("It may recover (the diagnosis after training judges it): "
                             "The loss exploded.")
    assert (last.code, last.severity, stop_epoch) == ("divergence", Severity.ERROR, 6)


def test_an_explosion_that_recovers_is_said_as_a_warning_and_training_goes_on(blobs):
    """AdamW at lr 3: the error at epoch 1's diagnosis only (the reference above) is seen,
    not said; the run trains on and recovers."""
    said = []
    live = LiveDiagnosis(3, share=math.inf,
                         say=lambda f, epoch: said.append((f.code, f.severity, epoch)))
    state = _fit(blobs, lr=3.0, live=live, max_epochs=4)
    assert _errors(_until_epoch(state.history, 1)) == ["loss_exploding"]
    assert not state.should_stop and state.epoch == 4
    assert all(severity is Severity.WARNING for _, severity, _ in said)


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


def test_the_run_that_stays_lost_trains_to_the_end_and_stops_at_the_train_stage(tmp_path):
    """The audit's run: digits at lr 3 exploded by step 21 and stays lost. Said live (epoch 3)
    as "It may recover", trained all 6 epochs; the diagnosis after training calls it an error,
    and the recipe stops there (review s12 F1: a live stop on it killed runs that recover)."""
    with console_module.console.capture() as captured:
        result = trainwise.run({"data": {"source": "digits"}}, overrides=[
            "train.max_epochs=6", "train.lr=3.0", "run.threads=1", "run.checks=false",
            'run.accelerator="cpu"',  # this trajectory: on an H100 it ended less lost
            f'run.out_dir="{tmp_path}"'], report=False)
    epochs = [row for row in read_history(result.path) if row["kind"] == "epoch"]
    text = captured.get()
    assert len(epochs) == 6, text
    assert "warning [train] loss_exploding at epoch" in text and "It may recover" in text
    assert "the diagnosis found" not in text
    codes = {f.code: f.severity for f in result.findings}
    assert codes["loss_exploding"] is Severity.ERROR and "test_result" not in codes


def test_the_one_cycle_run_that_explodes_and_recovers_is_not_stopped(tmp_path):
    """Review s12 F1's run: digits at lr 2 over 12 epochs exploded (an error at epochs 4, 5,
    7 and 10 of the cut histories) and was stopped at epoch 5 by the two-in-a-row rule; left
    alone it reached a validation loss of 1.20 at epoch 11, the diagnosis after training
    calling it a warning. (lr 1 was VT1's: stopped at epoch 3 by the one-diagnosis rule.)"""
    with console_module.console.capture() as captured:
        result = trainwise.run({"data": {"source": "digits"}}, overrides=[
            "train.max_epochs=12", "train.lr=2.0", "run.threads=1", "run.checks=false",
            f'run.out_dir="{tmp_path}"'], report=False)
    epochs = [row for row in read_history(result.path) if row["kind"] == "epoch"]
    assert len(epochs) == 12, captured.get()
    assert "It may recover" in captured.get()  # said live, as a warning
    codes = {f.code: f.severity for f in result.findings}
    assert codes["loss_exploding"] is Severity.WARNING and "test_result" in codes


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


def test_the_last_epoch_is_left_to_the_diagnosis_after_training(blobs, monkeypatch):
    """Review s12 VT8: fit ends at max_epochs without setting should_stop, so the last epoch
    was diagnosed live and then again after training, on the same history."""
    diagnosed = []

    def counting(history, **kwargs):
        diagnosed.append(history[-1]["epoch"])
        return diagnose(history, **kwargs)

    monkeypatch.setattr(live_module, "diagnose", counting)
    live = LiveDiagnosis(3, share=math.inf, max_epochs=3)
    state = _fit(blobs, lr=0.003, live=live, max_epochs=3)
    assert state.epoch == 3 and diagnosed == [1, 2]


def test_a_resumed_run_does_not_say_again_what_it_said(blobs, tmp_path):
    """Review s12 VT7: what was said and seen and the first epoch's training loss live in the
    checkpoint; resumed after epoch 2, the run says what the uninterrupted run says after
    epoch 2 (here: nothing; loss_exploding's error was said at epoch 2)."""
    from trainwise.train.checkpoint import load_checkpoint

    def run(max_epochs: int, resume=None, path=None) -> tuple[list, LiveDiagnosis, TrainState]:
        said = []
        live = LiveDiagnosis(3, share=math.inf, stop=False,
                             say=lambda f, epoch: said.append((f.code, f.severity, epoch)))
        state = _fit(blobs, lr=3.0, live=live, max_epochs=max_epochs, sgd=True,
                     checkpoint_path=path, resume_state=resume)
        return said, live, state

    whole, _, _ = run(4)
    first, before, interrupted = run(2, path=tmp_path / "last.pt")
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    rows = int(checkpoint["train_state"]["num_history_rows"])
    after, resumed, _ = run(4, {**checkpoint, "history": interrupted.history[:rows]})
    assert first + after == whole and whole  # said once, where the whole run said it
    assert resumed.state_dict() != LiveDiagnosis().state_dict()
    assert resumed._first_train_loss == before._first_train_loss


def test_the_saved_state_loads_with_weights_only_and_numpy_evidence(tmp_path):
    """A checkpoint is loaded with torch.load(weights_only=True), which refuses numpy
    scalars; a finding's evidence may hold them."""
    import numpy as np

    live = LiveDiagnosis(say=lambda f, epoch: None)
    spike = warning("train", "gradient_spike", "A spike.", "Look.", step=np.int64(7),
                    ratio=np.float32(12.5))
    live._say_new([spike], 1)
    live._say_new([spike], 2)  # said: two diagnoses in a row
    torch.save(live.state_dict(), tmp_path / "live.pt")
    restored = LiveDiagnosis()
    restored.load_state_dict(torch.load(tmp_path / "live.pt", weights_only=True))
    assert [(f.code, f.severity, f.message) for f in restored.findings] == [
        ("gradient_spike", Severity.WARNING, "A spike.")]
    assert restored.findings[0].evidence["step"] == "7"  # as findings.json writes it
    older = {**live.state_dict(), "lost_streak": 1}  # a checkpoint from before review s12 F1
    restored.load_state_dict(older)
    assert restored.state_dict() == live.state_dict()


def test_a_nan_stopped_run_says_its_divergence_once_as_its_findings_hold_it(tmp_path):
    """Review s16 VN2: `trainwise run` stopped by a NaN printed a live "divergence" error (and
    "see the report") that neither findings.json nor the report held, beside the stage's own
    non_finite_loss error at another step. The recipe's diagnosis after training says it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    x[:, 0] *= 1e3
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    with console_module.console.capture() as captured:
        result = trainwise.run(data=(x, y), overrides=[
            "train.max_epochs=4", "train.lr=1e6", 'train.schedule="constant"',
            "run.threads=1", "run.checks=false", "train.grad_clip=0",
            f'run.out_dir="{tmp_path}"'], report=False)
    text = captured.get()
    codes = [f.code for f in result.findings if f.stage == "train"]
    assert "non_finite_loss" in codes and "divergence" not in codes
    assert "divergence at epoch" not in text and text.count("error   [train]") == 1, text
