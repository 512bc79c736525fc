"""Signals of train/monitor.py and the public trainwise.Monitor for a user's own loop.

Oracles: torch's clip_grad_norm_ and per-module vector norms for the gradient norms, the
samples a collate function really corrupted for a spike's sample indices, TensorBoard's own
EventAccumulator for the event files, the ECE (held to torchmetrics in test_calibration.py)
for the reliability bins.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

import trainwise
from trainwise.train.calibration import confidence_stats
from trainwise.train.evaluate import reliability
from trainwise.train.grad_norms import GradNorms
from trainwise.train.loop import fit
from trainwise.train.monitor import MAX_INDEXED_ROWS, StepMonitor


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _backward(model: nn.Module, blobs, n: int = 32) -> None:
    x, y = blobs
    nn.functional.cross_entropy(model(x[:n]), y[:n]).backward()


def test_grad_norms_match_torch_globally_and_per_layer(blobs):
    model = _model()
    _backward(model, blobs)
    total, layers = GradNorms(model)(per_layer=True)
    reference = nn.utils.clip_grad_norm_(model.parameters(), max_norm=float("inf"))
    assert torch.allclose(total, reference, rtol=1e-6)
    for index, name in enumerate(["0", "2"]):
        module = model[int(name)]
        expected = torch.linalg.vector_norm(torch.cat([p.grad.flatten()
                                                       for p in module.parameters()]))
        assert torch.allclose(layers[index], expected, rtol=1e-6)
    assert GradNorms(model)(per_layer=False)[1] is None


def test_layer_without_gradient_is_nan_frozen_or_unused(blobs):
    """A frozen layer is listed (it may be unfrozen later) with NaN while it gets no
    gradient, as an unused branch."""
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.used, self.unused = nn.Linear(8, 4), nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.used(self.body(x).relu())

    model = TwoHeads()
    model.body.requires_grad_(False)
    norms = GradNorms(model)
    assert norms.layer_names == ["body", "used", "unused"]
    _backward(model, blobs)
    _, layers = norms(per_layer=True)
    assert math.isnan(layers[0]) and layers[1] > 0 and math.isnan(layers[2])


def test_layer_rows_come_at_step_one_and_every_k_steps():
    monitor = StepMonitor(log_every=5, layer_every=4, layer_names=["a", "b"])
    rows = []
    for step in range(1, 11):
        layers = torch.tensor([1.0, 2.0]) if monitor.layer_due(step) else None
        rows += monitor.record(step, 1, torch.tensor(1.0), torch.tensor(1.0), 0.1,
                               layer_norms=layers, batch_size=32)
    assert [r["step"] for r in rows if "layer_grad_norms" in r] == [1, 4, 8]
    assert rows[0]["layer_grad_norms"] == {"a": 1.0, "b": 2.0}
    timed = [r for r in rows if "samples_per_second" in r]
    assert timed and all(math.isclose(r["samples_per_second"], 32 / r["seconds_per_step"])
                         for r in timed)


def test_only_spike_rows_keep_their_sample_indices():
    monitor = StepMonitor(log_every=50)
    norms = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 40.0, 1.0, 1.1]  # one spike at step 7
    for step, norm in enumerate(norms, start=1):
        monitor.record(step, 1, torch.tensor(0.5), torch.tensor(norm), 0.1,
                       batch_indices=torch.arange(step * 10, step * 10 + 4))
    rows = monitor.flush()
    assert [r["step"] for r in rows if "sample_indices" in r] == [7]
    assert rows[6]["sample_indices"] == [70, 71, 72, 73]


def test_a_dip_to_zero_keeps_its_sample_indices_like_a_spike():
    monitor = StepMonitor(log_every=50)
    norms = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 0.0, 1.0, 0.02]  # a batch fitted to zero at 7;
    for step, norm in enumerate(norms, start=1):  # 0.02 is small but no dip (> 1/1000)
        monitor.record(step, 1, torch.tensor(0.5), torch.tensor(norm), 0.1,
                       batch_indices=torch.arange(step * 10, step * 10 + 2))
    rows = monitor.flush()
    assert [r["step"] for r in rows if "sample_indices" in r] == [7]
    assert rows[6]["sample_indices"] == [70, 71]


def test_first_nonfinite_row_is_located_and_indexed_rows_are_capped():
    located = []
    monitor = StepMonitor(log_every=100, locate=lambda step: located.append(step) or [step])
    for step in range(1, 4):
        monitor.record(step, 1, torch.tensor(float("nan") if step > 1 else 1.0),
                       torch.tensor(1.0), 0.1)
    rows = monitor.flush()
    assert monitor.first_nonfinite_step == 2 and monitor.num_nonfinite == 2
    assert located == [2] and rows[1]["sample_indices"] == [2]
    spiky = StepMonitor(log_every=1000)
    for step in range(1, 5 * (MAX_INDEXED_ROWS + 10)):
        norm = 1e6 if step % 5 == 0 else 1.0  # 4 spikes in any 20 rows: the median stays 1
        spiky.record(step, 1, torch.tensor(1.0), torch.tensor(norm), 0.1, batch_indices=[step])
    assert sum("sample_indices" in r for r in spiky.flush()) == MAX_INDEXED_ROWS


class _CorruptThird:
    """Collate that scales the 8th batch's inputs by -1000 and remembers its samples."""

    def __init__(self):
        self.count, self.indices = 0, None

    def __call__(self, samples):
        self.count += 1
        x, y, index = default_collate(samples)
        if self.count == 8:
            self.indices, x = sorted(index.tolist()), x * -1000  # confidently wrong
        return x, y


def test_fit_names_the_samples_of_a_corrupted_batch(blobs):
    x, y = blobs
    corrupt = _CorruptThird()
    train = DataLoader(TensorDataset(x[:240], y[:240], torch.arange(240)), batch_size=16,
                       shuffle=True, generator=torch.Generator().manual_seed(0),
                       collate_fn=corrupt)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)
    model = _model()
    state = fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=2, log_every=5, layer_every=5)
    steps = [r for r in state.history if r["kind"] == "step"]
    assert [r["step"] for r in steps if "sample_indices" in r] == [8]
    assert sorted(steps[7]["sample_indices"]) == corrupt.indices
    assert [r["step"] for r in steps if "layer_grad_norms" in r] == [1, 5, 10, 15, 20, 25, 30]
    spike = [f for f in trainwise.diagnose(state.history) if f.code == "gradient_spike"]
    assert spike and sorted(spike[0].evidence["sample_indices"]) == corrupt.indices


def test_reliability_bins_sum_to_the_ece():
    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 4, generator=generator), dim=1)
    targets = torch.randint(0, 4, (500,), generator=generator)
    bins = reliability(probs, targets)
    assert sum(bins["count"]) == 500 and len(bins["count"]) == 15
    ece = sum(n / 500 * abs(a - c) for n, a, c in
              zip(bins["count"], bins["accuracy"], bins["confidence"], strict=True) if n)
    assert ece == pytest.approx(confidence_stats(probs, targets)["ece"], abs=1e-6)
    assert all((a is None) == (n == 0) for a, n in zip(bins["accuracy"], bins["count"],
                                                      strict=True))


def _own_loop(monitor, model, train, val, epochs: int, lr: float = 1e-2) -> None:
    # decay on the weights only: AdamW(model.parameters()) draws the decay_on_norms warning
    optimizer = torch.optim.AdamW(trainwise.param_groups(model, 0.01), lr=lr)
    for _ in range(epochs):
        for xb, yb, index in train:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            monitor.step(loss, model, optimizer, batch_indices=index)
            optimizer.step()
        monitor.evaluate(model, val, nn.CrossEntropyLoss())


def _indexed_loaders(blobs):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240], torch.arange(240)), batch_size=32,
                       shuffle=True, generator=torch.Generator().manual_seed(0))
    return train, DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)


def test_monitor_in_a_plain_loop_writes_history_findings_and_tensorboard(blobs, tmp_path):
    train, val = _indexed_loaders(blobs)
    with trainwise.Monitor(tmp_path / "run", log_every=4, layer_every=5, console=False,
                           report=False) as monitor:
        _own_loop(monitor, _model(), train, val, epochs=3)
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").open()]
    steps = [r for r in rows if r["kind"] == "step"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == list(range(1, 25)) and len(epochs) == 3
    assert epochs[-1]["val_accuracy"] > 0.9 and epochs[-1]["train_loss"] < math.log(3)
    assert set(epochs[-1]["val_reliability"]) == {"confidence", "accuracy", "count"}
    findings = json.loads((tmp_path / "run" / "findings.json").read_text())
    assert [f["code"] for f in findings] == ["healthy"]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    # one point per flushed window: every 4 steps and at each epoch's end (8 steps an epoch)
    points = events.Scalars("step/loss")
    assert [e.step for e in points] == [4, 8, 12, 16, 20, 24]
    loss = {r["step"]: r["loss"] for r in steps}
    for point in points:
        window = [loss[s] for s in range(point.step - 3, point.step + 1)]
        assert point.value == pytest.approx(sum(window) / 4, rel=1e-6)
    grad_max = [e.value for e in events.Scalars("step/grad_norm_max")]
    assert grad_max == pytest.approx([max(r["grad_norm"] for r in steps[i:i + 4])
                                      for i in range(0, 24, 4)], rel=1e-6)
    assert [e.step for e in events.Scalars("layer_grad_norm/2")] == [1, 5, 10, 15, 20]
    val_loss = [e.value for e in events.Scalars("epoch/val_loss")]
    assert val_loss == pytest.approx([r["val_loss"] for r in epochs], rel=1e-6)


def test_monitor_finds_dead_layers_and_end_epoch_takes_own_metrics(blobs):
    train, val = _indexed_loaders(blobs)
    model = _model()
    with torch.no_grad():
        model[0].bias.fill_(-10.0)  # every hidden ReLU dead: only the output bias learns
    monitor = trainwise.Monitor(None, log_every=4, layer_every=4, console=False)
    _own_loop(monitor, model, train, val, epochs=4)
    found = {f.code: f for f in monitor.close()}
    assert "vanishing_gradients" in found
    assert found["vanishing_gradients"].evidence["layers"] == ["0"]
    row = trainwise.Monitor(None, console=False).end_epoch(val_loss=0.5, val_accuracy=0.8)
    assert row["val_loss"] == 0.5 and row["val_accuracy"] == 0.8 and row["train_loss"] is None


def test_monitor_counts_a_layer_from_when_it_is_unfrozen_and_logs_the_largest_lr(blobs):
    """Fine-tuning: the first layer frozen for 3 steps, then trained at a tenth of the head's
    lr. The logged norm is torch's clip_grad_norm_ over what trains at each step."""
    x, y = blobs
    model = _model()
    model[0].requires_grad_(False)
    optimizer = torch.optim.AdamW([{"params": model[0].parameters(), "lr": 1e-3},
                                   {"params": model[2].parameters(), "lr": 1e-2}])
    monitor = trainwise.Monitor(None, log_every=1, layer_every=1, console=False)
    true_norms, first_layer = [], []
    for step in range(6):
        if step == 3:
            model[0].requires_grad_(True)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[:32]), y[:32]).backward()
        monitor.step(torch.tensor(1.0), model, optimizer)
        trained = [p for p in model.parameters() if p.requires_grad]
        true_norms.append(float(nn.utils.clip_grad_norm_(trained, float("inf"))))
        first_layer.append(float(nn.utils.clip_grad_norm_(model[0].parameters(), float("inf")))
                           if step >= 3 else math.nan)
        optimizer.step()
    steps = [r for r in monitor.history if r["kind"] == "step"]
    assert [r["grad_norm"] for r in steps] == pytest.approx(true_norms, rel=1e-6)
    assert true_norms[3] > 1.01 * true_norms[2]  # the unfrozen layer adds to the norm
    assert math.isnan(steps[0]["layer_grad_norms"]["0"])  # frozen: no gradient
    assert [r["layer_grad_norms"]["0"] for r in steps[3:]] == pytest.approx(first_layer[3:],
                                                                            rel=1e-6)
    assert {r["lr"] for r in steps} == {1e-2}  # the head's, not the first group's


def test_a_step_without_gradients_is_said_once_not_diagnosed_as_vanishing(blobs):
    """monitor.step after optimizer.zero_grad(): nothing to measure, and the fix says where
    the call goes."""
    train, val = _indexed_loaders(blobs)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    monitor = trainwise.Monitor(None, log_every=4, console=False)
    for _ in range(2):
        for xb, yb, _index in train:
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            monitor.step(loss, model, optimizer)  # too late: the gradients are gone
        monitor.evaluate(model, val, nn.CrossEntropyLoss())
    assert [f.code for f in monitor.findings()] == ["monitor_no_gradients"]  # not "healthy"
    found = monitor.close()
    codes = [f.code for f in found]
    assert codes.count("monitor_no_gradients") == 1 and "vanishing_gradients" not in codes
    assert "before optimizer.step() / zero_grad()" in found[codes.index(
        "monitor_no_gradients")].fix
    assert all(r["grad_norm"] is None for r in monitor.history if r["kind"] == "step")


def test_a_monitor_refuses_the_folder_of_a_trainwise_run_and_its_own_unless_told(tmp_path):
    recipe_run = tmp_path / "recipe"
    recipe_run.mkdir()
    (recipe_run / "meta.json").write_text(json.dumps({"name": "recipe", "seed": 0,
                                                      "config_tag": "ab12", "stage_seconds": {}}))
    (recipe_run / "history.jsonl").write_text("{}\n")
    with pytest.raises(trainwise.TrainwiseError, match="trainwise run.*folder of its own"):
        trainwise.Monitor(recipe_run, console=False)
    assert (recipe_run / "history.jsonl").exists()  # left as it was
    experiment = tmp_path / "experiment"  # a user's own meta.json: not claimed as a run's
    experiment.mkdir()
    (experiment / "meta.json").write_text(json.dumps({"source": "imagenet"}))
    with pytest.raises(trainwise.TrainwiseError, match="a meta.json that no trainwise.Monitor"):
        trainwise.Monitor(experiment, console=False)
    mine = tmp_path / "mine"
    with trainwise.Monitor(mine, console=False, report=False) as monitor:
        monitor.step(1.0, lr=0.1)
        monitor.end_epoch(val_loss=1.0)
    # an earlier Monitor run is not deleted silently (it used to be): the error names both ways
    with pytest.raises(trainwise.TrainwiseError, match="resume=True.*overwrite=True"):
        trainwise.Monitor(mine, console=False)
    assert [json.loads(line)["kind"] for line in (mine / "history.jsonl").open()] == [
        "step", "epoch"]
    with trainwise.Monitor(mine, overwrite=True, console=False, report=False) as monitor:
        monitor.step(2.0, lr=0.1)
        monitor.end_epoch(val_loss=2.0)
    rows = [json.loads(line) for line in (mine / "history.jsonl").open()]
    assert [r["loss"] for r in rows if r["kind"] == "step"] == [2.0]


def test_evaluate_takes_binary_logits_per_token_logits_and_per_sample_losses():
    """Shapes users' models have, each against metrics computed here by hand."""
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    binary = nn.Linear(5, 1)  # one logit, BCEWithLogitsLoss, float (N, 1) targets
    y = (x[:, :1] + 0.5 * torch.randn(200, 1) > 0).float()
    row = trainwise.Monitor(None, console=False).evaluate(
        binary, DataLoader(TensorDataset(x, y), batch_size=64), nn.BCEWithLogitsLoss())
    with torch.no_grad():
        logit = binary(x)
    p = torch.sigmoid(logit)
    assert row["val_loss"] == pytest.approx(float(nn.BCEWithLogitsLoss()(logit, y)), rel=1e-5)
    assert row["val_accuracy"] == pytest.approx(float(((logit > 0).float() == y).float().mean()))
    assert row["val_mean_confidence"] == pytest.approx(float(torch.maximum(p, 1 - p).mean()),
                                                       rel=1e-5)

    tagger = nn.Linear(5, 4)  # per-token logits (N, T, C), padding tokens at -100
    tokens = torch.randn(30, 6, 5)
    labels = torch.randint(0, 4, (30, 6))
    labels[:, 4:] = -100
    def token_loss(o, t):
        return nn.functional.cross_entropy(o.flatten(0, 1), t.flatten())
    monitor = trainwise.Monitor(None, console=False)
    row = monitor.evaluate(tagger, DataLoader(TensorDataset(tokens, labels), batch_size=8),
                           token_loss)
    with torch.no_grad():
        logits = tagger(tokens)
    real = labels >= 0
    assert row["val_accuracy"] == pytest.approx(
        float((logits.argmax(-1)[real] == labels[real]).float().mean()))
    assert row["val_loss"] == pytest.approx(float(token_loss(logits, labels)), rel=1e-5)
    assert monitor.num_classes == 4

    per_sample, three = nn.CrossEntropyLoss(reduction="none"), nn.Linear(5, 3)
    targets = torch.randint(0, 3, (200,))
    row = trainwise.Monitor(None, console=False).evaluate(
        three, DataLoader(TensorDataset(x, targets), batch_size=64), per_sample)
    with torch.no_grad():
        assert row["val_loss"] == pytest.approx(float(per_sample(three(x), targets).mean()),
                                                rel=1e-5)


def test_evaluate_takes_token_batches_of_different_lengths_and_float_losses():
    """Padding per batch (a collate_fn pads to the batch's longest sequence): T differs
    between batches. The loss is the token mean over the whole set, as one pass computes it."""
    torch.manual_seed(0)
    tagger = nn.Linear(5, 4)
    batches = []
    for length in (3, 7, 5):  # per batch: (4, T, 5) inputs, (4, T) labels, padding at -100
        labels = torch.randint(0, 4, (4, length))
        labels[0, -1] = -100
        batches.append((torch.randn(4, length, 5), labels))
    def token_loss(o, t):
        return nn.functional.cross_entropy(o.flatten(0, 1), t.flatten())
    row = trainwise.Monitor(None, console=False).evaluate(tagger, batches, token_loss)
    with torch.no_grad():
        logits = torch.cat([tagger(x).flatten(0, 1) for x, _ in batches])
    labels = torch.cat([y.flatten() for _, y in batches])
    real = labels >= 0
    assert row["val_loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, labels)),
                                            rel=1e-5)
    assert row["val_accuracy"] == pytest.approx(
        float((logits.argmax(1)[real] == labels[real]).float().mean()))
    as_float = trainwise.Monitor(None, console=False).end_epoch(  # loss_fn(...).item() style
        outputs=logits, targets=labels,
        loss_fn=lambda o, t: float(nn.functional.cross_entropy(o, t)))
    assert as_float["val_loss"] == pytest.approx(row["val_loss"], rel=1e-5)


def test_evaluate_says_what_to_do_with_a_model_that_returns_a_tuple():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(5, 3)

        def forward(self, x):
            return self.head(x), x.norm()

    data = DataLoader(TensorDataset(torch.randn(20, 5), torch.randint(0, 3, (20,))))
    with pytest.raises(trainwise.TrainwiseError, match=r"returned a tuple.*end_epoch"):
        trainwise.Monitor(None, console=False).evaluate(WithAux(), data, nn.CrossEntropyLoss())


def test_monitor_writes_a_report(blobs, tmp_path):
    train, val = _indexed_loaders(blobs)
    monitor = trainwise.Monitor(tmp_path / "run", console=False)
    _own_loop(monitor, _model(), train, val, epochs=2)
    monitor.close()
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<html" in html.lower() and len(html) > 10_000


def test_live_console_shows_events_and_leaves_end_state_verdicts_to_close(capsys):
    monitor = trainwise.Monitor(None, log_every=5, layer_every=0)
    step = 0
    for epoch in range(3):  # a loss still falling steadily: "lr too low" if it ended here
        for _ in range(20):
            step += 1
            monitor.step(torch.tensor(2.3 - 0.01 * step), lr=1e-3)
        monitor.end_epoch(val_loss=2.3 - 0.2 * epoch)
    assert "Learning rate too low" not in capsys.readouterr().err
    assert "lr_too_low" in [f.code for f in monitor.close()]
    assert "Learning rate too low" in capsys.readouterr().err


def test_one_transfer_keeps_each_steps_values_in_place():
    """Steps with and without a gradient norm and per-layer norms, flushed together."""
    monitor = StepMonitor(log_every=100, layer_names=["a", "b"])
    norms = [None, torch.tensor(2.0), None, torch.tensor(4.0)]
    layers = [torch.tensor([1.0, 2.0]), None, torch.tensor([3.0, 4.0]), torch.tensor([5.0, 6.0])]
    for step, (norm, layer) in enumerate(zip(norms, layers, strict=True), start=1):
        loss = torch.tensor([float(step)], requires_grad=True) * 1.0  # (1,), attached to a graph
        monitor.record(step, 1, loss, norm, 0.1, layer_norms=layer)
    rows = monitor.flush()
    assert [r["loss"] for r in rows] == [1.0, 2.0, 3.0, 4.0]
    assert [r["grad_norm"] for r in rows] == [None, 2.0, None, 4.0]
    assert [r.get("layer_grad_norms") for r in rows] == [
        {"a": 1.0, "b": 2.0}, None, {"a": 3.0, "b": 4.0}, {"a": 5.0, "b": 6.0}]


def test_monitor_leaves_lightning_unimported():
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1, which makes every Adam step on
    the CPU load NVML (~80 us); a Monitor in a plain loop must not bring that in."""
    code = ("import os, sys, tempfile, torch, trainwise; "
            "m = trainwise.Monitor(tempfile.mkdtemp(), console=False, report=False); "
            "m.step(torch.tensor(1.0)); m.close(); "
            "print('lightning_fabric' in sys.modules, "
            "os.environ.get('PYTORCH_NVML_BASED_CUDA_CHECK'))")
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_NVML_BASED_CUDA_CHECK"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=True)
    assert result.stdout.split() == ["False", "None"]


def test_live_diagnosis_takes_at_most_one_percent_of_the_threads_cpu_time(monkeypatch):
    from trainwise.train import monitor_findings

    cpu = [0.0]  # the thread's CPU seconds: each diagnosis costs 0.02, each epoch 1.0
    diagnosed_at = []

    def diagnose(history, num_classes=None, fix_terms=None):
        diagnosed_at.append(history[-1]["epoch"])
        cpu[0] += 0.02
        return []

    monkeypatch.setattr(monitor_findings.time, "thread_time", lambda: cpu[0])
    monkeypatch.setattr(monitor_findings, "diagnose", diagnose)
    monitor = trainwise.Monitor(console=False, report=False)
    for _ in range(5):
        cpu[0] += 1.0
        monitor.step(torch.tensor(1.0))
        monitor.end_epoch(val_loss=1.0)
    # after epoch 1's diagnosis (0.02 s), the next waits until 2 s of CPU time have passed
    assert diagnosed_at == [1, 3, 5]
