"""run.precision: training, the range test and the batch-size probe all step at it (bf16-mixed
runs on the CPU, so CI checks it; float16 is refused with the reason)."""

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
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.config import ConfigError, load_config
from trainwise.tune import lr_range_test
from trainwise.tune.batch_probe import make_measure
from trainwise.tune.lr_range import exponential_ramp


def bf16() -> Fabric:
    return Fabric(accelerator="cpu", devices=1, precision="bf16-mixed")


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


def test_range_test_steps_as_fabric_trains_at_bf16(blobs):
    lrs = exponential_ramp(1e-4, 0.1, 25)
    ours = lr_range_test(mlp(), F.cross_entropy, in_order(blobs), adamw, start_lr=1e-4,
                         end_lr=0.1, num_steps=25, fabric=bf16()).curves[0].losses
    full = lr_range_test(mlp(), F.cross_entropy, in_order(blobs), adamw, start_lr=1e-4,
                         end_lr=0.1, num_steps=25).curves[0].losses
    reference = _reference_curve(blobs, bf16(), lrs)
    assert len(ours) == len(reference) == 25
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    # and bfloat16 really was used: its losses differ from 32-bit ones beyond float noise
    assert max(abs(a - b) for a, b in zip(ours, full, strict=True)) > 1e-4


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


def test_batch_probe_at_bf16_holds_half_the_activations():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 4))
    x, y = torch.randn(256, 64), torch.randint(0, 4, (256,))
    before = copy.deepcopy(model.state_dict())

    def growth(fabric):  # bytes added by 224 more rows: the activations saved for backward
        measure = make_measure(model, nn.CrossEntropyLoss(), x, y, adamw, fabric)
        return measure(256).peak_bytes - measure(32).peak_bytes

    full, half = growth(None), growth(bf16())
    assert full >= 224 * 512 * 4 * 2  # two hidden layers' float32 outputs at least
    assert 0.4 < half / full < 0.7  # bfloat16 copies: ~half (a few float32 tensors remain)
    assert all(torch.equal(a, b) for a, b in zip(before.values(), model.state_dict().values(),
                                                 strict=True))


def test_float16_is_refused_with_the_reason_and_the_alternative():
    with pytest.raises(ConfigError, match="bf16-mixed") as caught:
        load_config(None, ['run.precision="16-mixed"'])
    assert "scaler" in str(caught.value)
    assert load_config(None, ['run.precision="bf16-mixed"']).run.precision == "bf16-mixed"


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
    result = trainwise.run({"data": {"source": "digits"}},
                           overrides=["train.max_epochs=2", "tune.num_steps=30",
                                      "tune.num_seeds=1", "tune.short_runs=false",
                                      "run.threads=1", 'run.precision="bf16-mixed"',
                                      f'run.out_dir="{tmp_path / "run"}"'])
    assert result.ok and result.test["test_accuracy"] > 0.5, result.verdict
    assert "bf16-mixed" in (result.path / "report.html").read_text()
