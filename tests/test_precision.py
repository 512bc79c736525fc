"""run.precision: training, the range test and the batch-size probe all step at it. bf16-mixed
runs on the CPU as on a GPU; "16-mixed" (float16 with a loss scaler) is checked on the CPU
through a Fabric given float16 autocast explicitly (Fabric itself picks bf16 on the CPU)."""

from __future__ import annotations

import copy
import json
import random
from itertools import cycle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning_fabric import Fabric
from lightning_fabric.plugins.precision import MixedPrecision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.config import load_config
from trainwise.findings import TrainwiseError
from trainwise.resume import config_tag
from trainwise.train.diagnose_loss import rule_divergence, rule_loss_scaler_skips
from trainwise.train.loop import fit
from trainwise.tune import lr_range_test
from trainwise.tune.batch_probe import make_measure
from trainwise.tune.lr_range import exponential_ramp
from trainwise.tune.probe_precision import ProbeSteps


def bf16() -> Fabric:
    return Fabric(accelerator="cpu", devices=1, precision="bf16-mixed")


def fp16(init_scale: float = 2.0**16) -> Fabric:
    """float16 autocast and a loss scaler on the CPU, as "16-mixed" is on a GPU."""
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    return Fabric(accelerator="cpu", devices=1,
                  plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])


PRECISIONS = {"bf16-mixed": bf16, "16-mixed": fp16}


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)


def in_order(blobs) -> DataLoader:
    return DataLoader(TensorDataset(*blobs), batch_size=32)  # no shuffling: a known order


def _reference_curve(blobs, fabric: Fabric, lrs: list[float]) -> list[float]:
    """The ramp stepped through Fabric's own wrappers (module, backward, optimizer), as `fit`
    trains: the range test must see the same losses."""
    plain = mlp()
    module, optim = fabric.setup(plain, adamw(plain))
    losses = []
    for lr, (x, y) in zip(lrs, cycle(in_order(blobs)), strict=False):
        for group in optim.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(module(x), y)
        losses.append(float(loss.detach()))
        optim.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optim.step()
    return losses


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_range_test_steps_as_fabric_trains(blobs, precision):
    """Against a ramp stepped through Fabric's own wrappers; under float16 its loss scaler
    starts so high (2^40) that the first steps overflow and are skipped, as on a GPU."""
    make = (lambda: fp16(2.0**40)) if precision == "16-mixed" else PRECISIONS[precision]
    lrs = exponential_ramp(1e-4, 0.1, 25)
    fabric = make()
    before = fabric.strategy.precision.state_dict()  # float16: the scaler's; bf16: empty
    ours = lr_range_test(mlp(), F.cross_entropy, in_order(blobs), adamw, start_lr=1e-4,
                         end_lr=0.1, num_steps=25, fabric=fabric).curves[0].losses
    full = lr_range_test(mlp(), F.cross_entropy, in_order(blobs), adamw, start_lr=1e-4,
                         end_lr=0.1, num_steps=25).curves[0].losses
    reference = _reference_curve(blobs, make(), lrs)
    assert len(ours) == len(reference) == 25
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    # and the lower precision really was used: losses differ from 32-bit ones beyond noise
    assert max(abs(a - b) for a, b in zip(ours, full, strict=True)) > 1e-4
    assert fabric.strategy.precision.state_dict() == before  # its scaler was left alone


def test_a_bf16_range_test_leaves_no_trace(blobs):
    def weights_after_training(with_range_test: bool) -> list[torch.Tensor]:
        torch.manual_seed(123)
        random.seed(123)
        np.random.seed(123)
        model = mlp(7)
        data = DataLoader(TensorDataset(*blobs), batch_size=32, shuffle=True)
        if with_range_test:
            lr_range_test(model, F.cross_entropy, data, adamw, num_steps=20, seeds=(0, 1),
                          fabric=bf16())
        optimizer = adamw(model)
        for x, y in data:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()] + [torch.rand(1)]

    plain, tested = weights_after_training(False), weights_after_training(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, tested, strict=True))


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_batch_probe_at_16_bits_holds_half_the_activations(precision):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 4))
    x, y = torch.randn(256, 64), torch.randint(0, 4, (256,))
    before = copy.deepcopy(model.state_dict())

    def growth(fabric):  # bytes added by 224 more rows: the activations saved for backward
        measure = make_measure(model, nn.CrossEntropyLoss(), x, y, adamw, fabric)
        return measure(256).peak_bytes - measure(32).peak_bytes

    full, half = growth(None), growth(PRECISIONS[precision]())
    assert full >= 224 * 512 * 4 * 2  # two hidden layers' float32 outputs at least
    assert 0.4 < half / full < 0.7  # 16-bit copies: ~half (a few float32 tensors remain)
    assert all(torch.equal(a, b) for a, b in zip(before.values(), model.state_dict().values(),
                                                 strict=True))


# ---------------------------------------------------------------- float16 training
def _separable(n: int = 300) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return (DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=generator),
            DataLoader(TensorDataset(x, y), batch_size=100))


def _fit(fabric: Fabric, model: nn.Module | None = None, epochs: int = 2, log_every: int = 1,
         data: tuple[DataLoader, DataLoader] | None = None, **kw):
    train, val = data or _separable()
    model = model or mlp(0)
    return fit(model, train, val, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
               loss_fn=nn.CrossEntropyLoss(), max_epochs=epochs, fabric=fabric,
               log_every=log_every, **kw)


def _steps(state) -> list[dict]:
    return [row for row in state.history if row["kind"] == "step"]


def test_float16_gradient_norms_are_unscaled():
    """The optimizer sees the gradients over the loss scale (65536): so must the monitor."""
    half = _steps(_fit(fp16(), grad_clip=1.0))  # clipping unscales too: no double unscale
    full = _steps(_fit(Fabric(accelerator="cpu", devices=1), grad_clip=1.0))
    assert len(half) == len(full) == 20 and not any(row.get("skipped") for row in half)
    np.testing.assert_allclose([r["grad_norm"] for r in half[:5]],
                               [r["grad_norm"] for r in full[:5]], rtol=0.02)


def test_steps_the_loss_scaler_skips_are_marked_not_fatal():
    """A scale of 2^30 overflows float16 gradients until the scaler has halved it ~10 times."""
    state = _fit(fp16(2.0**30))
    steps = _steps(state)
    skipped = [row["step"] for row in steps if row.get("skipped")]
    assert not state.stop_reason and len(steps) == 20
    assert skipped == list(range(1, len(skipped) + 1)) and 3 <= len(skipped) < 20
    assert all(np.isfinite(row["loss"]) for row in steps)
    assert not any("sample_indices" in row for row in steps)  # the start's skips: no suspects
    assert rule_divergence(state.history) == []
    (found,) = rule_loss_scaler_skips(state.history)  # all while the scaler settled: normal
    assert found.severity.value == "info" and found.evidence["skipped"] == len(skipped)


class _BadGradient(torch.autograd.Function):
    """Identity forward; in backward the gradient times `value` when `poison` is set."""

    @staticmethod
    def forward(ctx, x, poison, value):
        ctx.poison, ctx.value = bool(poison), value
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.value if ctx.poison else grad), None, None


def _poisoned(value: float, always: bool = False) -> nn.Module:
    """mlp(0) whose gradient is multiplied by `value` on every batch (always) or on batches
    holding a row whose first input is exactly 0."""
    model = mlp(0)
    model[0].register_forward_hook(lambda module, args, out: _BadGradient.apply(
        out, always or bool((args[0][:, 0] == 0).any()), value))
    return model


def test_a_gradient_that_is_infinite_at_any_scale_ends_the_run_as_divergence():
    """Every step's gradient is inf: the scaler skips, halving 65536 (2^16) down to its floor
    2^-10 in 26 steps; there scaling cannot be the cause, so step 27 stops the run (seen at
    the next flush, step 30)."""
    state = _fit(fp16(), _poisoned(float("inf"), always=True), epochs=4, log_every=10)
    steps = _steps(state)
    assert state.nonfinite["step"] == 27 and len(steps) == 30
    assert [row["step"] for row in steps if row.get("skipped")] == list(range(1, 27))
    (found,) = rule_divergence(state.history)
    assert found.step == 27 and found.evidence["key"] == "grad_norm"
    assert "bf16-mixed" in found.fix  # float16's range may be the cause


def test_intermittent_nan_gradients_are_not_hidden_by_the_scaler():
    """A NaN gradient on some batches (a bug in the data or the model): the scaler skips
    them, lowering its scale each time, until at scale 1 one stops the run; the first skipped
    batches keep their samples. 32-bit stops at the first of them."""
    def data():
        train, val = _separable()
        train.dataset.tensors[0][::40, 0] = 0.0  # marked rows: some batches hold one
        return train, val

    state = _fit(fp16(), _poisoned(float("nan")), epochs=60, log_every=10, data=data())
    steps = _steps(state)
    skipped = [row for row in steps if row.get("skipped")]
    assert state.nonfinite is not None and len(skipped) == 26  # 2^16 halved to 2^-10
    applied = next(row["step"] for row in steps if not row.get("skipped"))
    suspects = [row for row in skipped if row["step"] > applied]
    assert [len(row.get("sample_indices", [])) for row in suspects[:4]] == [32, 32, 32, 0]
    assert [f.code for f in rule_divergence(state.history)] == ["divergence"]
    full = _fit(Fabric(accelerator="cpu", devices=1), _poisoned(float("nan")), epochs=30,
                log_every=10, data=data())
    assert full.nonfinite["step"] == skipped[0]["step"]  # same data order: the same batch


def test_loss_scaler_skips_rule_info_for_a_few_and_silent_without():
    rows = [{"kind": "step", "step": i, "loss": 1.0, "grad_norm": 1.0} for i in range(1, 201)]
    assert rule_loss_scaler_skips(rows) == []
    rows[0] = {**rows[0], "grad_norm": float("inf"), "skipped": True}
    found = rule_loss_scaler_skips(rows)
    assert found[0].severity.value == "info" and found[0].evidence["skipped"] == 1
    assert rule_divergence(rows) == []
    # a 32-bit run resumed at 16-mixed: its fresh scaler settles mid-run, in one block
    resumed = [{**row, "grad_norm": float("inf"), "skipped": True} if 20 < row["step"] < 32
               else {**row, "skipped": False} for row in rows]
    assert rule_loss_scaler_skips(resumed)[0].severity.value == "info"
    for row in resumed[100:120:2]:  # ten more, scattered later: fewer updates than counted
        row.update(grad_norm=float("inf"), skipped=True)
    assert rule_loss_scaler_skips(resumed)[0].severity.value == "warning"


def test_short_runs_leave_the_loss_scaler_as_they_found_it(blobs):
    from trainwise.tune.short_runs import short_runs

    fabric = fp16(2.0**30)
    before = fabric.strategy.precision.state_dict()
    result = short_runs(mlp(), nn.CrossEntropyLoss(), in_order(blobs), in_order(blobs),
                        lambda m, lr=None: torch.optim.AdamW(m.parameters(), lr=lr or 1e-3),
                        lr_low=1e-3, lr_high=1e-2, num_epochs=2, num_candidates=3,
                        max_widenings=0, fabric=fabric)
    assert len(result.candidates) == 3
    assert fabric.strategy.precision.state_dict() == before


def test_16_mixed_on_the_cpu_trains_at_bf16_and_says_so(tmp_path):
    result = trainwise.run({"data": {"source": "digits"}}, until="split", report=False,
                           overrides=['run.precision="16-mixed"', "run.threads=1",
                                      'run.accelerator="cpu"', f'run.out_dir="{tmp_path}"'])
    found = [f for f in result.findings if f.code == "precision_changed"]
    assert len(found) == 1 and "bf16-mixed" in found[0].fix
    assert json.loads((result.path / "meta.json").read_text())["precision"] == "bf16-mixed"


def test_a_bf16_run_trains_tunes_and_says_so(tmp_path):
    def tune(precision: str):
        return trainwise.run({"data": {"source": "digits"}}, until="tune", report=False,
                             overrides=["tune.num_steps=30", "tune.num_seeds=1",
                                        "tune.short_runs=false", "run.threads=1",
                                        f'run.precision="{precision}"',
                                        f'run.out_dir="{tmp_path / precision}"'])

    full, half = tune("32-true"), tune("bf16-mixed")
    assert full.ok and half.ok, (full.verdict, half.verdict)
    curves = [json.loads((r.path / "lr_range.json").read_text())["curves"][0]["losses"]
              for r in (full, half)]
    assert max(abs(a - b) for a, b in zip(*curves, strict=True)) > 1e-4  # the range test too
    assert json.loads((half.path / "meta.json").read_text())["precision"] == "bf16-mixed"
    (chosen,) = [f for f in half.findings if f.code == "lr_chosen"]
    assert "measured at bf16-mixed" in chosen.message
    result = trainwise.run({"data": {"source": "digits"}},
                           overrides=["train.max_epochs=2", "tune.num_steps=30",
                                      "tune.num_seeds=1", "tune.short_runs=false",
                                      "run.threads=1", 'run.precision="bf16-mixed"',
                                      f'run.out_dir="{tmp_path / "run"}"'])
    assert result.ok and result.test["test_accuracy"] > 0.5, result.verdict
    assert "bf16-mixed" in (result.path / "report.html").read_text()


def test_precision_may_change_on_resume():
    """It changes the arithmetic, not what is trained (like accumulate_grad_batches), so it is
    not part of the checkpoint's config fingerprint, and older checkpoints still resume."""
    assert config_tag(load_config(None, ['run.precision="bf16-mixed"'])) == config_tag(
        load_config(None))


def test_probes_refuse_a_precision_that_casts_the_model(blobs):
    fabric = Fabric(accelerator="cpu", devices=1, precision="bf16-true")
    with pytest.raises(TrainwiseError, match="bf16-true"):
        lr_range_test(mlp(), F.cross_entropy, in_order(blobs), adamw, num_steps=10,
                      fabric=fabric)


def test_batch_probe_measures_an_applied_float16_step(monkeypatch):
    """With the scale so high that the first steps overflow, the probe warms up until one is
    applied (and no longer), so AdamW's state is counted as with a scale that fits from the
    start; a scaler that never lets a step through is an error, not a low reading."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 4))
    x, y = torch.randn(128, 64), torch.randint(0, 4, (128,))
    applied: list[bool] = []
    original = ProbeSteps.step
    monkeypatch.setattr(ProbeSteps, "step",
                        lambda self, opt: applied.append(original(self, opt)) or applied[-1])
    peaks = [make_measure(model, nn.CrossEntropyLoss(), x, y, adamw, fabric)(128).peak_bytes
             for fabric in (fp16(), fp16(2.0**24))]
    assert peaks[0] == peaks[1]
    first = applied.index(False)  # the second probe's: its first steps are skipped
    warmup = applied[first:].index(True) + 1
    assert 2 <= warmup < 10 and applied[first + warmup] is True  # then the measured step
    with pytest.raises(TrainwiseError, match="skipped all"):
        make_measure(_poisoned(float("inf"), always=True), nn.CrossEntropyLoss(),
                     torch.randn(64, 8), torch.randint(0, 3, (64,)), adamw, fp16())(32)


@pytest.mark.parametrize("unscale_first,pass_optimizer", [(False, True), (True, True),
                                                          (True, False)])
def test_monitor_in_a_users_amp_loop(unscale_first, pass_optimizer):
    """trainwise.Monitor in a plain torch.amp loop (float16 autocast, GradScaler): the logged
    norms are the unscaled ones, whether the loop unscales before calling it (to clip) or
    not, with or without the optimizer passed, and the scaler's settling skips are marked,
    not a divergence."""
    train, _ = _separable()
    model = mlp(0)
    optimizer = adamw(model)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24)  # a few settling skips
    monitor = trainwise.Monitor(None, log_every=5, console=False, report=False)
    true_norms = []
    for x, y in [batch for _ in range(2) for batch in train]:  # 2 epochs, 20 steps
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        if unscale_first:
            scaler.unscale_(optimizer)
            monitor.step(loss, model, optimizer if pass_optimizer else None, scaler=scaler,
                         lr=None if pass_optimizer else 1e-2)
        else:
            monitor.step(loss, model, optimizer, scaler=scaler)
            scaler.unscale_(optimizer)
        true_norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)))
        scaler.step(optimizer)
        scaler.update()
    monitor.close()
    steps = [row for row in monitor.history if row["kind"] == "step"]
    skipped = [row["step"] for row in steps if row.get("skipped")]
    assert len(steps) == 20 and skipped[:3] == [1, 2, 3] and len(skipped) < 15
    applied = [(row["grad_norm"], true) for row, true in zip(steps, true_norms, strict=True)
               if not row.get("skipped")]
    assert applied and all(np.isclose(got, true, rtol=1e-4) for got, true in applied)
    assert "divergence" not in [f.code for f in monitor.findings()]
