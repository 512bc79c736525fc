"""The model stage with a user's own model: its init is kept unless asked, and a forward pass
that raises becomes a forward_failed finding that names the cause, not a crash."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.config import from_dict
from trainwise.data.task import TaskData
from trainwise.rundir import RunDir
from trainwise.stages import Arrays, RunContext, stage_model

USER_MODULE = '''
import torch
from torch import nn

class Pretrained(nn.Module):
    """A backbone layer loaded in __init__ and frozen, and a head left to train."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.body.weight.fill_(0.123)
            self.body.bias.fill_(0.5)
        self.body.requires_grad_(False)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))
'''


def _context(tmp_path, config: dict | None = None, *, kind: str = "vector",
             x: np.ndarray | None = None, model: nn.Module | None = None) -> RunContext:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32) if x is None else x
    y = np.arange(len(x)) % 2
    data = TaskData("toy", kind, "classification", x, y, class_names=["a", "b"])
    ctx = RunContext(from_dict(config or {}), RunDir(tmp_path), fabric=None, data=data,
                     user_model=model)
    ctx.splits = {"train": Arrays(x, y)}
    return ctx


@pytest.fixture
def user_module(tmp_path, monkeypatch) -> str:
    (tmp_path / "my_models.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models:Pretrained"


def test_a_class_named_in_the_config_keeps_its_own_weights(tmp_path, user_module) -> None:
    ctx = _context(tmp_path, {"model": {"name": user_module}})
    findings = stage_model(ctx)
    body = ctx.model.body
    assert torch.all(body.weight == 0.123) and torch.all(body.bias == 0.5)
    [kept] = [f for f in findings if f.code == "init_kept"]
    assert "Pretrained's weights as its __init__ made them" in kept.message
    assert 'model.init = "policy"' in kept.fix and "trainwise.init_weights" in kept.fix
    assert not any(f.code == "init" for f in findings)


def test_a_model_passed_in_keeps_its_init_and_says_how_to_apply_the_policy(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    findings = stage_model(_context(tmp_path, model=model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    [kept] = [f for f in findings if f.code == "init_kept"]
    assert "trainwise.init_weights(model)" in kept.fix


def test_init_policy_on_request_redraws_all_but_the_frozen_layers(tmp_path, user_module) -> None:
    ctx = _context(tmp_path, {"model": {"name": user_module, "init": "policy"}})
    findings = stage_model(ctx)
    assert torch.all(ctx.model.body.weight == 0.123)  # frozen: kept
    head = ctx.model.head.weight
    assert torch.all(ctx.model.head.bias == 0)  # the policy zeroes biases; torch's are uniform
    # the output layer is drawn with Xavier x OUTPUT_GAIN: std 0.1 * sqrt(2 / (8 + 2)) = 0.045
    assert float(head.detach().std()) < 0.15
    [init] = [f for f in findings if f.code == "init"]
    assert "Initialised 1 layer of your" in init.message  # the head; body is frozen
    assert "Kept as they were: 1 layer frozen (body)." in init.message


def test_baselines_get_the_policy_unless_told_to_keep(tmp_path) -> None:
    ctx = _context(tmp_path)
    findings = stage_model(ctx)
    assert any(f.code == "init" for f in findings)
    linears = [m for m in ctx.model.modules() if isinstance(m, nn.Linear)]
    assert all(torch.all(m.bias == 0) for m in linears)
    kept = _context(tmp_path, {"model": {"init": "keep"}})
    findings = stage_model(kept)
    assert [f.code for f in findings if f.code.startswith("init")] == ["init_kept"]
    linears = [m for m in kept.model.modules() if isinstance(m, nn.Linear)]
    assert any(torch.any(m.bias != 0) for m in linears)  # PyTorch's uniform biases


class _Float64(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2).double()

    def forward(self, x):
        return self.linear(x)


class _ToCuda(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x.cuda())


class _ChannelsLast(nn.Module):
    """Written for (N, T, C) sequences with C = 3."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x).mean(1)


class _FixedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        assert x.shape[0] == 128, "batch must be 128"
        return self.linear(x)


def _forward_failed(tmp_path, model, **kwargs):
    ctx = _context(tmp_path, model=model, **kwargs)
    findings = stage_model(ctx)
    failed = [f for f in findings if f.code == "forward_failed"]
    assert len(failed) == 1 and failed[0].stage == "model", [f.code for f in findings]
    return failed[0]


def test_a_float64_model_is_told_to_call_float(tmp_path) -> None:
    found = _forward_failed(tmp_path, _Float64())
    assert found.evidence["layer"] == "linear" and "(40, 4) (torch.float32)" in found.message
    assert "torch.float64" in found.fix and "model.float()" in found.fix


@pytest.mark.skipif(torch.cuda.is_available(), reason="x.cuda() works where there is a GPU")
def test_a_cuda_call_in_forward_is_named_as_a_device_fault(tmp_path) -> None:
    found = _forward_failed(tmp_path, _ToCuda())
    assert found.evidence["layer"] == "(model)"
    assert "x.cuda()" in found.fix and "x.device" in found.fix


def test_a_channels_last_sequence_model_is_told_the_layout(tmp_path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3, 25)).astype(np.float32)  # (N, C, T)
    found = _forward_failed(tmp_path, _ChannelsLast(), kind="sequence", x=x)
    assert found.evidence["layer"] == "linear" and "(40, 3, 25)" in found.message
    assert "(N, C, T) = (40, 3, 25)" in found.fix and "x.transpose(1, 2)" in found.fix


def test_an_assert_in_forward_is_a_finding_with_the_input_shape(tmp_path) -> None:
    found = _forward_failed(tmp_path, _FixedBatch())
    assert "batch must be 128" in found.message and "any batch size" in found.fix
    assert found.evidence["input_shape"] == [40, 4]
