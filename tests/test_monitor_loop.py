"""trainwise.Monitor in a user's own loop: what it says live, how it resumes, and how it tells
a misplaced or missing call from a training problem (audit s8, findings L1-L14 and R2)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.config import Config
from trainwise.train import monitor_findings
from trainwise.train.diagnose import diagnose
from trainwise.train.loop_terms import CONFIG_KEYS, in_loop_terms

SRC = Path(trainwise.__file__).parent
EXPLODING_EPOCHS = 6


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _loaders(blobs, batch_size: int = 32):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    return train, DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)


def _optimizer(model: nn.Module, lr: float = 1e-2) -> torch.optim.Optimizer:
    return torch.optim.AdamW(trainwise.param_groups(model, 0.01), lr=lr)


def _slow_diagnosis(monkeypatch) -> None:
    """Every diagnosis looks expensive: the 1% share would skip all but the first."""
    cpu = [0.0]

    def thread_time() -> float:
        cpu[0] += 1.0
        return cpu[0]

    monkeypatch.setattr(monitor_findings.time, "thread_time", thread_time)
    monkeypatch.setattr(monitor_findings, "LIVE_DIAGNOSIS_SHARE", 0.0)


# L1: live warnings, should_stop ------------------------------------------------------------
def test_a_nan_loss_is_reported_at_the_next_transfer_and_sets_should_stop(blobs, tmp_path,
                                                                          monkeypatch):
    _slow_diagnosis(monkeypatch)
    train, val = _loaders(blobs)
    model, loss_fn = _model(), nn.CrossEntropyLoss()
    optimizer = _optimizer(model)
    monitor = trainwise.Monitor(tmp_path / "run", log_every=5, console=False, report=False,
                                tensorboard=False)
    stopped_at, step = None, 0
    for _ in range(4):
        for xb, yb in train:
            step += 1
            if step == 12:
                xb = xb * float("nan")
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            monitor.step(loss, model, optimizer)
            optimizer.step()
            if monitor.should_stop and stopped_at is None:
                stopped_at = step
        monitor.evaluate(model, val, loss_fn)
    # the transfer after step 12 (5 steps after epoch 1's last, at step 8), not at close
    assert stopped_at == 13
    live = json.loads((tmp_path / "run" / "findings.json").read_text())
    divergence = next(f for f in live if f["code"] == "divergence")
    assert divergence["step"] == 12 and divergence["severity"] == "error"
    # a NaN input on a falling loss at a steady lr: a numerical fault (audit s14 G8), said for
    # a hand-written loop (L9, s14 G15a), where `trainwise run` names its config keys
    assert divergence["evidence"]["cause"] == "numerical_fault"
    assert "torch.bfloat16" in divergence["fix"] and "run.precision" not in divergence["fix"]
    assert 'run.precision = "bf16-mixed"' in next(
        f for f in diagnose(monitor.history, fix_terms="config") if f.code == "divergence").fix


def test_a_healthy_run_never_sets_should_stop(blobs):
    train, val = _loaders(blobs)
    model = _model()
    monitor = trainwise.Monitor(None, log_every=4, console=False)
    optimizer = _optimizer(model)
    for _ in range(3):
        for xb, yb in train:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            monitor.step(loss, model, optimizer)
            optimizer.step()
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
        assert not monitor.should_stop
    assert [f.code for f in monitor.close()] == ["healthy"]


def test_an_epoch_with_a_gradient_spike_is_diagnosed_within_twice_the_share(monkeypatch):
    """Epochs cost 1 s of CPU, a diagnosis 0.02 s: at 1% every other epoch is skipped (see
    test_monitor), but the epoch whose step the step monitor flagged as a spike is not."""
    cpu = [0.0]
    diagnosed_at = []

    def fake_diagnose(history, num_classes=None, fix_terms=None):
        diagnosed_at.append(history[-1]["epoch"])
        cpu[0] += 0.02
        return []

    monkeypatch.setattr(monitor_findings.time, "thread_time", lambda: cpu[0])
    monkeypatch.setattr(monitor_findings, "diagnose", fake_diagnose)
    weight = nn.Linear(1, 1, bias=False)
    monitor = trainwise.Monitor(console=False, report=False, log_every=1)
    for epoch in range(1, 6):
        cpu[0] += 1.0
        for i in range(8):
            weight.weight.grad = torch.full((1, 1), 1000.0 if (epoch, i) == (2, 4) else 1.0)
            monitor.step(torch.tensor(1.0), weight, lr=0.1)
        monitor.end_epoch(val_loss=1.0)
    assert diagnosed_at == [1, 2, 4]  # without the spike: [1, 3, 5]


# L2: resume ---------------------------------------------------------------------------------
def _epochs(monitor, first_loss: float, num_epochs: int, steps: int = 3) -> None:
    for epoch in range(num_epochs):
        for i in range(steps):
            monitor.step(first_loss - 0.1 * (steps * epoch + i), lr=0.1)
        monitor.end_epoch(val_loss=first_loss - epoch)


def test_resume_continues_the_history_from_the_last_finished_epoch(tmp_path):
    run = tmp_path / "run"
    first = trainwise.Monitor(run, log_every=1, console=False, report=False)
    _epochs(first, 5.0, 2)
    first.step(9.0, lr=0.1)  # epoch 3 begun, then the process died (no close)
    first.step(9.0, lr=0.1)
    with trainwise.Monitor(run, resume=True, log_every=1, console=False,
                           report=False) as second:
        assert (second.num_steps, second.epoch) == (6, 3)
        _epochs(second, 4.4, 2)
    rows = [json.loads(line) for line in (run / "history.jsonl").open()]
    steps = [r for r in rows if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 13))  # no gap, no step counted twice
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3, 4]
    assert 9.0 not in [r["loss"] for r in steps]  # the unfinished epoch's rows are gone
    assert [r["epoch"] for r in steps] == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3


def test_resume_on_a_new_folder_starts_a_new_run_and_both_flags_are_refused(tmp_path):
    with trainwise.Monitor(tmp_path / "new", resume=True, console=False,
                           report=False) as monitor:
        monitor.step(1.0, lr=0.1)
    assert monitor.num_steps == 1
    with pytest.raises(trainwise.TrainwiseError, match="choose one"):
        trainwise.Monitor(tmp_path / "new", resume=True, overwrite=True)


# L4: gradient accumulation ------------------------------------------------------------------
def _accumulating_loop(monitor, blobs, accumulation: int | None, k: int = 8) -> list[float]:
    train, val = _loaders(blobs, batch_size=4)
    model = _model()
    optimizer = _optimizer(model, lr=3e-3)
    passed = []
    for _ in range(2):
        for i, (xb, yb) in enumerate(train):
            loss = nn.functional.cross_entropy(model(xb), yb) / k
            loss.backward()
            if (i + 1) % k == 0:
                passed.append(loss.item())
                if accumulation is None:
                    monitor.step(loss, model, optimizer)
                else:
                    monitor.step(loss, model, optimizer, accumulation=accumulation)
                optimizer.step()
                optimizer.zero_grad()
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
    return passed


def test_accumulation_logs_the_loss_at_the_scale_of_validation(blobs):
    monitor = trainwise.Monitor(None, log_every=5, console=False)
    passed = _accumulating_loop(monitor, blobs, accumulation=8)
    logged = [r["loss"] for r in monitor.history if r["kind"] == "step"]
    assert logged == pytest.approx([8 * p for p in passed], rel=1e-6)
    assert "monitor_loss_scaled" not in [f.code for f in monitor.close()]


def test_a_divided_loss_without_accumulation_is_said(blobs):
    monitor = trainwise.Monitor(None, log_every=5, console=False)
    _accumulating_loop(monitor, blobs, accumulation=None)
    first = next(r for r in monitor.history if r["kind"] == "epoch")
    assert first["val_loss"] > 2 * first["train_loss"]  # the scaled curve the audit saw
    found = {f.code: f for f in monitor.close()}
    assert "accumulation=K" in found["monitor_loss_scaled"].fix and "healthy" not in found


# L5, L8, L14: calls the monitor cannot measure ---------------------------------------------
def test_zero_grad_without_set_to_none_is_a_misplaced_call_not_vanishing_gradients(blobs):
    train, val = _loaders(blobs)
    model = _model()
    optimizer = _optimizer(model)
    monitor = trainwise.Monitor(None, log_every=4, layer_every=1, console=False)
    for _ in range(2):
        for xb, yb in train:
            optimizer.zero_grad(set_to_none=False)
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # the gradients are zeros now, not None
            monitor.step(loss, model, optimizer)
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
    found = {f.code: f for f in monitor.close()}
    assert set(found) == {"monitor_no_gradients"}  # not vanishing_gradients, not healthy
    assert "set_to_none=False" in found["monitor_no_gradients"].message
    assert all(r["grad_norm"] is None for r in monitor.history if r["kind"] == "step")


def test_a_model_without_parameters_is_named_as_such():
    monitor = trainwise.Monitor(None, console=False)
    monitor.step(torch.tensor(1.0), nn.Identity())
    found = {f.code: f for f in monitor.findings()}
    assert "Identity" in found["monitor_no_parameters"].message
    assert "monitor_no_gradients" not in found


def test_a_loop_without_validation_or_model_gets_no_healthy_verdict(blobs):
    train, _val = _loaders(blobs)
    model = _model()
    optimizer = _optimizer(model)
    without_val, without_model = (trainwise.Monitor(None, console=False) for _ in range(2))
    for _ in range(3):
        for xb, yb in train:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            without_val.step(loss, model, optimizer)
            without_model.step(loss, lr=1e-2)
            optimizer.step()
        without_model.end_epoch(val_loss=float(loss))
    codes = [f.code for f in without_val.close()]
    assert codes == ["monitor_no_validation"]
    # its val_loss (the last batch's loss) still fell >10% in epoch 3 of 3: still_improving
    # (audit s15 M4), but no healthy verdict without gradient norms
    codes = [f.code for f in without_model.close()]
    assert sorted(codes) == ["monitor_no_grad_norm", "still_improving"]


# L10, L11: the verdict -----------------------------------------------------------------------
def test_an_exception_in_the_loop_is_recorded_and_raised_on(tmp_path, capsys):
    with pytest.raises(ValueError, match="bad batch"):
        with trainwise.Monitor(tmp_path / "run", console=True, report=False) as monitor:
            monitor.step(2.0, lr=0.1)
            monitor.end_epoch(val_loss=2.0)
            monitor.step(1.9, lr=0.1)
            raise ValueError("bad batch")
    codes = [f["code"] for f in json.loads((tmp_path / "run" / "findings.json").read_text())]
    assert "loop_raised" in codes and "healthy" not in codes
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["verdict"].startswith("The training loop raised ValueError: bad batch (at step 2")
    assert "No training problem found" not in capsys.readouterr().err


def _falling_slowly(monitor: trainwise.Monitor) -> None:
    """25 steps at lr 1e-4, the loss falling 0.03 a step to the end: lr_too_low's shape."""
    for step in range(1, 26):
        monitor.step(2.0 - 0.03 * step, lr=1e-4)
        if step % 10 == 0:
            monitor.end_epoch(val_loss=2.0 - 0.03 * step)


def test_ctrl_c_in_the_loop_is_an_info_and_withholds_the_rules_that_judge_the_end(tmp_path):
    """Audit s16 N12: Ctrl-C was an error "Fix the error", and the cut-short run was judged
    "learning rate too low". The same steps closed normally are judged so (the reference)."""
    with trainwise.Monitor(None, console=False, report=False) as finished:
        _falling_slowly(finished)
    assert "lr_too_low" in [f.code for f in finished.close()]
    with pytest.raises(KeyboardInterrupt):
        with trainwise.Monitor(tmp_path / "run", console=False, report=False) as monitor:
            _falling_slowly(monitor)
            raise KeyboardInterrupt
    found = json.loads((tmp_path / "run" / "findings.json").read_text())
    assert [(f["code"], f["severity"]) for f in found] == [("loop_interrupted", "info")]
    assert found[0]["evidence"] == {"exception": "KeyboardInterrupt", "step": 25, "epoch": 3,
                                    "withheld": ["lr_too_low"]}
    assert "Nothing to fix" in found[0]["fix"] and "resume=True" in found[0]["fix"]
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["verdict"].startswith("Training was interrupted by the user (KeyboardInterrupt) "
                                      "at step 25 (epoch 3)")


def test_the_report_of_a_monitor_run_shows_its_verdict(blobs, tmp_path):
    """The report's context (its template's input; rendering the figures takes seconds)."""
    from trainwise.reporting.context import report_context
    from trainwise.reporting.run_data import load_run

    train, val = _loaders(blobs)
    model = _model()
    optimizer = _optimizer(model)
    with trainwise.Monitor(tmp_path / "run", console=False, report=False,
                           tensorboard=False) as monitor:
        for step, (xb, yb) in enumerate(train):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb * (float("nan") if step == 3 else 1)),
                                               yb)
            loss.backward()
            monitor.step(loss, model, optimizer)
            optimizer.step()
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
    context = report_context(load_run(tmp_path / "run"))
    assert context["verdict"].startswith("A non-finite loss (nan) appeared at step 4")
    assert context["stopped_at"] is None  # not "it stopped at stage train first"
    from trainwise.reporting.html import render_html

    context.update(figures={}, extra_figures=[], problems=[])
    header = render_html(context).split('id="data"')[0]
    assert "what went wrong and how to fix it" in header and "what stopped the run" not in header


# L9: fixes in loop terms ---------------------------------------------------------------------
def test_every_config_key_a_rule_names_has_loop_terms():
    """A config key (any section) in a rule's text must get a loop translation here. train.lr
    only appears when a TrainingPlan says the config set it, which a Monitor never passes."""
    sections = Config.model_fields
    keys = set()
    for path in (SRC / "train").glob("diagnose*.py"):
        for section, key in re.findall(r"\b([a-z]+)\.([a-z_]+)\b", path.read_text()):
            if section in sections and key in sections[section].annotation.model_fields:
                keys.add(f"{section}.{key}")  # a config key, not a module or a file name
    assert {"model.width", "run.precision"} <= keys  # the scan sees beyond train.*
    translated = {key for key in keys for phrase in CONFIG_KEYS if key in phrase}
    assert keys - translated - {"train.lr"} == set()


@pytest.mark.parametrize("fix", [
    "Grow the model one step (model stage: double model.width for the built-in baselines, "
    "whose default 0 sizes it from the data; more units or layers in your own) and keep it",
    'float16 cannot hold these gradients: train at run.precision = "bf16-mixed" or "32-true".',
    'Train at run.precision = "bf16-mixed" (float32\'s range; GPUs since Ampere) or "32-true"; '
    "if the gradients are simply huge"])
def test_loop_terms_leave_no_model_or_run_key(fix):
    said = in_loop_terms(fix)
    assert not re.search(r"\b(model|run)\.[a-z_]+", said) and '"32-true"' not in said


def test_loop_terms_replace_keys_and_stages_and_leave_other_text():
    fix = ('Lower the learning rate (tune stage: rerun the range test and take a smaller value); '
           'add a warm-up (train.schedule = "onecycle" has one) or clip gradients '
           '(train.grad_clip); check for extreme values (data stage).')
    said = in_loop_terms(fix)
    assert "train." not in said and "stage" not in said
    assert "trainwise.find_lr" in said and "OneCycleLR" in said and "clip_grad_norm_" in said
    assert said.startswith("Lower the learning rate (measure it with trainwise.find_lr(")
    assert ": run the range test and take a smaller value)" in said
    assert in_loop_terms("The loss fell 40%.") == "The loss fell 40%."


# R2: the optimizer's weight decay -----------------------------------------------------------
def test_decay_on_biases_is_said_once_and_param_groups_silence_it():
    model = _model()
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    monitor = trainwise.Monitor(None, console=False)
    for optimizer in (torch.optim.AdamW(model.parameters(), lr=1e-3),  # default decay 0.01
                      torch.optim.AdamW(model.parameters(), lr=1e-3)):
        nn.functional.cross_entropy(model(x), y).backward()
        monitor.step(torch.tensor(1.0), model, optimizer)
    decay = [f for f in monitor.findings() if f.code == "decay_on_norms"]
    assert len(decay) == 1
    biases = [name for name, p in model.named_parameters() if name.endswith("bias")]
    assert decay[0].evidence["params"] == biases == ["0.bias", "2.bias"]
    assert "trainwise.param_groups" in decay[0].fix
    assert "to biases (0.bias, 2.bias)" in decay[0].message  # no norm layer here: not named
    for optimizer in (torch.optim.AdamW(trainwise.param_groups(model, 0.01), lr=1e-3),
                      trainwise.make_adamw(model, lr=1e-3, weight_decay=0.05),
                      torch.optim.SGD(model.parameters(), lr=0.1)):  # no decay at all
        clean = trainwise.Monitor(None, console=False)
        clean.step(torch.tensor(1.0), model, optimizer)
        assert "decay_on_norms" not in [f.code for f in clean.findings()]


def test_a_monitor_says_a_warning_once_two_diagnoses_in_a_row_find_it(monkeypatch):
    """Review s12 VT5: the Monitor and `trainwise run` say the same things live
    (live_problems): the zoo's healthy GRU had a gradient_spike at one diagnosis only, a
    false alarm the Monitor used to print at first sight. A divergence is said at once and
    stops the run; loss_exploding's error is said as a warning (review s12 F2) and does not."""
    from types import SimpleNamespace

    import trainwise.console as console_module
    from trainwise.findings import error, warning

    spike = warning("train", "gradient_spike", "A spike.", "Look at the batch.")
    overfit = warning("train", "overfitting", "Overfits.", "Stop earlier.")
    exploded = error("train", "loss_exploding", "Exploded.", "Lower the lr.")
    diverged = error("train", "divergence", "Diverged.", "Clip.")
    script = iter([[spike], [], [overfit], [overfit, exploded], [overfit, exploded, diverged]])
    monkeypatch.setattr(monitor_findings, "diagnose_own_loop", lambda *_: next(script))
    monkeypatch.setattr(monitor_findings, "LIVE_DIAGNOSIS_SHARE", float("inf"))  # every epoch
    found = monitor_findings.MonitorFindings(
        SimpleNamespace(num_unusual=0, first_nonfinite_step=None), None, console=True)
    printed, stopped = [], []
    for _ in range(5):
        with console_module.console.capture() as captured:
            found.after_epoch([], None)
        printed.append(re.findall(r"A spike\.|Overfits\.|Exploded\.|Diverged\.", captured.get()))
        stopped.append(found.stop)
    assert printed == [[], [], [], ["Overfits."], ["Exploded.", "Diverged."]]
    assert stopped == [False, False, False, False, True]  # the divergence, at once


def test_a_loss_that_explodes_is_said_as_may_recover_and_does_not_set_should_stop(blobs,
                                                                                 monkeypatch):
    """Review s12 F2: the Monitor shares fit's live rule (stops_training): only a NaN/inf
    sets should_stop. SGD at lr 3 explodes; the diagnosis of the history so far calls it an
    error (the old rule set should_stop there), it is printed as "It may recover", and the
    verdict at close() says the error."""
    import trainwise.console as console_module

    monkeypatch.setattr(monitor_findings, "LIVE_DIAGNOSIS_SHARE", math.inf)  # every epoch
    train, val = _loaders(blobs, batch_size=16)
    model, loss_fn = _model(), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=3.0, momentum=0.9)
    monitor = trainwise.Monitor(None, log_every=1, console=True, report=False)
    errors_by_epoch = []
    with console_module.console.capture() as captured:
        for _ in range(EXPLODING_EPOCHS):
            for xb, yb in train:
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                monitor.step(loss, model, optimizer)
                optimizer.step()
            monitor.evaluate(model, val, loss_fn)
            errors_by_epoch.append([f.code for f in monitor_findings.diagnose_own_loop(
                monitor.history, 3) if f.severity.value == "error"])
            assert not monitor.should_stop
        found = monitor.close()
    assert ["loss_exploding"] in errors_by_epoch[:-1]  # the reference: an error mid-run
    text = captured.get()
    assert "It may recover (the diagnosis after training judges it)" in text
    exploded = next(f for f in found if f.code == "loss_exploding")
    assert exploded.severity.value == "error" and "It may recover" not in exploded.message
