import math
import os

import pytest
import torch
from lightning_fabric import Fabric
from sklearn.metrics import r2_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.findings import TrainwiseError
from trainwise.train.callbacks import BestWeights
from trainwise.train.grad_norms import GradNorms
from trainwise.train.loop import TrainState, emit, fit, hot_path
from trainwise.train.monitor import StepMonitor


def _loaders(blobs, batch_size=32):
    x, y = blobs
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size, shuffle=True,
                       generator=generator)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)
    return train, val


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def test_the_global_grad_norm_matches_clip_grad_norm():
    model = _model()
    nn.functional.cross_entropy(model(torch.randn(5, 8)), torch.tensor([0, 1, 2, 0, 1])).backward()
    ours, _ = GradNorms(model)()
    reference = nn.utils.clip_grad_norm_(model.parameters(), max_norm=float("inf"))
    assert torch.allclose(ours, reference, rtol=1e-6)


def test_fit_learns_and_records_every_step(blobs):
    train, val = _loaders(blobs)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    state = fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
                max_epochs=3, log_every=4)
    steps = [r for r in state.history if r["kind"] == "step"]
    epochs = [r for r in state.history if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == list(range(1, 3 * len(train) + 1))
    assert len(epochs) == 3
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    assert epochs[-1]["val_accuracy"] > 0.9
    assert all(math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in steps)
    assert epochs[-1]["train_loss"] < math.log(3)


def test_callback_stops_training_by_setting_should_stop(blobs):
    class StopAfterTwo:
        def on_epoch_end(self, state, row):
            state.should_stop = row["epoch"] >= 2

    train, val = _loaders(blobs)
    model = _model()
    state = fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=10, callbacks=[StopAfterTwo()])
    assert state.epoch == 2


def test_non_finite_loss_stops_training(blobs):
    x, y = blobs
    x = x.clone()
    x[0] = float("nan")  # one poisoned sample in the first training batch
    loader = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32)
    model = _model()
    state = fit(model, loader, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=5, log_every=1)
    assert state.should_stop and "non-finite" in state.stop_reason
    assert state.step == 1 and state.epoch == 1


def test_best_weights_are_restored(blobs):
    class LossesGoUp:  # fakes a validation curve whose best epoch is the first
        def on_epoch_end(self, row):
            row["val_loss"] = float(row["epoch"])

    train, val = _loaders(blobs)
    model = _model()
    best = BestWeights(patience=2)
    snapshots = []

    class Snapshot:
        def on_epoch_end(self, model):
            # on the CPU: fit gives a CPU model back there, from a GPU where there is one
            snapshots.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})

    fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=10, callbacks=[LossesGoUp(), best, Snapshot()])
    assert len(snapshots) == 3  # epochs 2 and 3 not better than 1: stop after patience 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[0][key])


def test_step_monitor_syncs_in_batches():
    monitor = StepMonitor(log_every=3)
    out = [monitor.record(i, 1, torch.tensor(float(i)), torch.tensor(1.0), 0.1) for i in (1, 2)]
    assert out == [[], []]
    rows = monitor.record(3, 1, torch.tensor(3.0), torch.tensor(1.0), 0.1)
    assert [r["loss"] for r in rows] == [1.0, 2.0, 3.0]
    assert monitor.flush() == []


def test_emit_passes_only_the_arguments_a_callback_takes():
    seen = {}

    class Narrow:
        def on_epoch_end(self, row):
            seen["row"] = row

    emit([Narrow(), object()], "on_epoch_end", state=TrainState(), row={"epoch": 1}, model=None)
    assert seen == {"row": {"epoch": 1}}


def test_patience_does_not_count_during_the_warm_up(blobs):
    class NoisyWarmUp:  # validation loss gets worse for 4 epochs, as under a rising lr
        def on_epoch_end(self, row):
            row["val_loss"] = float(row["epoch"]) if row["epoch"] <= 4 else 1.0 / row["epoch"]

    train, val = _loaders(blobs)
    model = _model()
    best = BestWeights(patience=2, min_epochs=5)
    state = fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=7, callbacks=[NoisyWarmUp(), best])
    assert state.epoch == 7 and not state.should_stop
    assert best.early_stopping.best_epoch == 7
    without = BestWeights(patience=2)
    control = _model()  # its own optimizer: one on `model` is refused (audit s15 B6)
    state = fit(control, train, val, optimizer=torch.optim.SGD(control.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=7, callbacks=[NoisyWarmUp(), without])
    assert state.epoch == 3  # the control: without min_epochs it stops inside the warm-up


def _fit_recording_reference_norms(blobs, fabric=None, **kwargs):
    """fit, and clip_grad_norm_'s total norm of each step's gradients, taken inside
    optimizer.step() (a pre-step hook on the user's optimizer: after backward, before the
    update)."""
    train, val = _loaders(blobs)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    reference = []
    optimizer.register_step_pre_hook(lambda *_: reference.append(float(
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=float("inf")))))
    state = fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
                max_epochs=2, log_every=3, fabric=fabric, **kwargs)
    return state, model, reference


def test_recorded_grad_norms_equal_clip_grad_norm_at_every_step(blobs):
    state, _, reference = _fit_recording_reference_norms(blobs)
    recorded = [r["grad_norm"] for r in state.history if r["kind"] == "step"]
    assert len(recorded) == len(reference) == 16
    assert recorded == pytest.approx(reference, rel=1e-6)


def test_direct_step_equals_fabrics_wrapped_step_bitwise(blobs):
    class AfterStep:  # a Fabric callback with this hook makes fit keep Fabric's wrappers
        def __init__(self):
            self.calls = 0

        def on_after_optimizer_step(self, strategy, optimizer):
            self.calls += 1

    wrapped_fabric = Fabric(accelerator="cpu", devices=1, callbacks=[AfterStep()])
    model, optimizer = wrapped_fabric.setup(_model(), torch.optim.SGD(_model().parameters(), 0.1))
    assert hot_path(wrapped_fabric, model, optimizer) == (model, wrapped_fabric.backward, optimizer)
    plain_fabric = Fabric(accelerator="cpu", devices=1)
    model, optimizer = plain_fabric.setup(_model(), torch.optim.SGD(_model().parameters(), 0.1))
    forward, backward, step_optimizer = hot_path(plain_fabric, model, optimizer)
    assert forward is model.module and step_optimizer is optimizer.optimizer

    # both on the CPU: without a Fabric, fit would train on a GPU where there is one
    direct, direct_model, _ = _fit_recording_reference_norms(
        blobs, fabric=Fabric(accelerator="cpu", devices=1))
    wrapped, wrapped_model, _ = _fit_recording_reference_norms(blobs, fabric=wrapped_fabric)
    assert wrapped_fabric._callbacks[0].calls == 16  # the wrapped optimizer really stepped
    for ours, theirs in zip(direct.history, wrapped.history, strict=True):
        assert {k: v for k, v in ours.items() if "second" not in k} == \
            {k: v for k, v in theirs.items() if "second" not in k}
    for key, value in direct_model.state_dict().items():
        assert torch.equal(value, wrapped_model.state_dict()[key])


def test_fit_on_the_cpu_skips_nvml_checks_and_puts_the_variable_back(blobs, monkeypatch):
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    seen = []

    class Look:
        def on_epoch_end(self):
            seen.append(os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK"))

    train, val = _loaders(blobs)
    model = _model()
    fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=1, callbacks=[Look()])
    # with a GPU in sight the NVML check stays: it keeps fork() safe for CUDA
    assert seen == [None if not torch.cuda.is_available() else "1"]
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"


def test_fit_without_a_fabric_trains_where_the_model_is_or_on_the_auto_device(blobs,
                                                                              monkeypatch):
    from types import SimpleNamespace

    import trainwise.train.loop as loop

    chosen = []

    def recording_fabric(**kwargs):  # the CPU stands in for whichever device was asked
        chosen.append(kwargs)
        return Fabric(accelerator="cpu", devices=1)

    monkeypatch.setattr(loop, "Fabric", recording_fabric)
    train, val = _loaders(blobs)
    model = _model()
    fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=1)
    assert chosen == [{"accelerator": "auto", "devices": 1}]  # as run.accelerator: not "cpu"

    on_gpu = SimpleNamespace(parameters=lambda: iter([SimpleNamespace(
        device=torch.device("cuda", 1))]))  # a model the user moved with .to("cuda:1")
    assert loop.default_device(on_gpu) == {"accelerator": "cuda", "devices": [1]}


@pytest.mark.parametrize("loss_fn, output, target", [
    (nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0, 2.0])),
     torch.randn(4, 3), torch.tensor([0, 1, 2, 1])),
    (nn.BCEWithLogitsLoss(pos_weight=torch.tensor([9.0])), torch.randn(4, 1),
     torch.tensor([[0.0], [1.0], [0.0], [1.0]])),
])
def test_a_weighted_loss_follows_the_outputs_device(loss_fn, output, target):
    # 'meta' stands in for the GPU fit() now picks by default: the raw loss, weights on the
    # CPU, fails there as it would on cuda; the wrapped one runs a moved copy there and the
    # user's own loss on the host (evaluation), so the user's loss is never moved
    from trainwise.train.evaluate import on_outputs_device

    on_meta = output.to("meta"), target.to("meta")
    with pytest.raises(RuntimeError, match="device"):
        loss_fn(*on_meta)
    wrapped = on_outputs_device(loss_fn)
    assert wrapped(*on_meta).device.type == "meta"
    assert torch.equal(wrapped(output, target), loss_fn(output, target))
    assert all(buffer.device.type == "cpu" for buffer in loss_fn.buffers())


def test_a_loss_without_tensors_or_with_parameters_is_left_as_given():
    from trainwise.train.evaluate import on_outputs_device

    plain, learned = nn.CrossEntropyLoss(), nn.Linear(2, 1)
    assert on_outputs_device(plain) is plain and on_outputs_device(learned) is learned


def test_fit_trains_and_evaluates_with_the_loss_on_the_outputs_device(blobs, monkeypatch):
    import trainwise.train.loop as loop

    given, used = [], []
    real = loop.on_outputs_device  # the spy keeps it: on a GPU the weights must move

    def spy(loss_fn):
        given.append(loss_fn)
        on_outputs = real(loss_fn)

        def call(output, target):
            used.append(output.requires_grad)  # True: a training step; False: evaluation
            return on_outputs(output, target)
        return call

    monkeypatch.setattr(loop, "on_outputs_device", spy)
    train, val = _loaders(blobs)
    model = _model()
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        loss_fn=weighted, max_epochs=1)
    assert given == [weighted]
    assert True in used and False in used


def _loaders_of(targets_of):
    torch.manual_seed(0)
    x = torch.randn(96, 8)
    y = targets_of(x)
    return (DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32),
            DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32))


def test_fit_without_a_task_reads_regression_from_the_outputs():
    """fit defaulted to classification: an MSE model trained an epoch, then failed inside
    calibration (audit s10 G7)."""
    train, val = _loaders_of(lambda x: x[:, :1] * 3)
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    state = fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                loss_fn=nn.MSELoss(), max_epochs=2)
    last = [r for r in state.history if r["kind"] == "epoch"][-1]
    assert "val_r2" in last and "val_accuracy" not in last
    with torch.no_grad():  # the R^2 fit recorded is the model's own, as sklearn scores it
        x, y = val.dataset.tensors
        assert last["val_r2"] == pytest.approx(r2_score(y.numpy(), model(x).numpy()), abs=1e-4)


def _one_label(x):
    return (x[:, :1] > 0).float()


def _five_labels(x):
    return (x[:, :5] > 0).float()


@pytest.mark.parametrize(("width", "targets_of", "loss_fn", "said"), [
    (1, _one_label, nn.BCEWithLogitsLoss(), "one-logit binary model"),
    # a loss with buffers reached fit_task wrapped (on_outputs_device) and passed for a
    # regression: val_r2 of raw logits against 0/1 labels (review RT2)
    (1, _one_label, nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0])),
     "one-logit binary model"),
    (5, _five_labels, nn.BCEWithLogitsLoss(), "multi-label model"),
    (5, _five_labels, nn.BCEWithLogitsLoss(pos_weight=torch.ones(5)), "multi-label model"),
    # on probabilities: one output was scored with R^2, five with the per-position message
    (1, _one_label, nn.BCELoss(), "one-logit binary model"),
    (5, _five_labels, nn.BCELoss(), "multi-label model"),
])
def test_fit_refuses_what_it_cannot_evaluate_before_the_first_step(width, targets_of, loss_fn,
                                                                    said):
    train, val = _loaders_of(targets_of)
    model = nn.Sequential(nn.Linear(8, width), nn.Sigmoid()) \
        if isinstance(loss_fn, nn.BCELoss) else nn.Linear(8, width)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainwiseError, match=said) as caught:
        fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            loss_fn=loss_fn, max_epochs=1)
    assert "trainwise.Monitor" in str(caught.value)
    unchanged = zip(before, model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in unchanged)  # no optimizer step was taken


def test_reading_the_task_changes_no_random_state(blobs):
    """The task is read from a validation batch before training; starting that loader draws
    from its generator, which, shared with training (the same loader twice), reordered the
    batches, so a run without task= differed from one with it."""
    x, y = blobs

    def history(task):
        torch.manual_seed(0)
        loader = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=16, shuffle=True,
                            generator=torch.Generator().manual_seed(3))
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        state = fit(model, loader, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    loss_fn=nn.CrossEntropyLoss(), max_epochs=1, log_every=1, task=task)
        return [r["loss"] for r in state.history if r["kind"] == "step"]

    assert history(None) == history("classification")


def test_each_row_logs_the_lr_its_step_used(blobs):
    """audit s14 G2: the lr was read after the scheduler's step, so each row showed the next
    step's lr (and the epoch row the next epoch's first)."""
    train, val = _loaders(blobs)  # 8 batches an epoch
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    used = []  # what each optimizer.step() really ran with
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(
        opt.param_groups[0]["lr"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1e-3 * (i + 1))
    state = fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
                max_epochs=2, scheduler=schedule, log_every=1, task="classification")
    steps = [r["lr"] for r in state.history if r["kind"] == "step"]
    epochs = [r["lr"] for r in state.history if r["kind"] == "epoch"]
    assert steps == pytest.approx([1e-3 * i for i in range(1, 17)]) and steps == used
    assert epochs == [used[7], used[15]] == pytest.approx([8e-3, 16e-3])
