"""tune_lr's checks before its range test: inputs the short runs after it cannot use are
refused (a call that cannot work) or reported (a data problem) before any work, with the fix.

From an audit of the API (s7): a stream, an empty validation loader and a data set smaller
than one batch each met the short runs only after the whole range test, as a raw error or
as 2-step runs widened to an edge. Oracle for "before any work": the range test is replaced
by a recorder that must stay empty.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import trainwise.tune.search as search
from trainwise.findings import Severity, TrainwiseError
from trainwise.tune import tune_lr
from trainwise.tune.short_run_inputs import first_batch


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _adamw(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=lr)


def _loader(x, y, batch_size=32, **kw) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(0), **kw)


@pytest.fixture
def no_range_test(monkeypatch):
    """Records the range tests that ran; a call that gets past the checks is stopped there."""
    ran: list[int] = []

    def record(*args, **kwargs):
        ran.append(1)
        raise AssertionError("the range test ran")

    monkeypatch.setattr(search, "lr_range_test", record)
    return ran


class _Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        yield from zip(self.x, self.y, strict=True)


def test_a_stream_is_refused_before_the_range_test_with_the_fix(blobs, no_range_test):
    stream = DataLoader(_Stream(*blobs), batch_size=32)
    with pytest.raises(TrainwiseError, match=r"_Stream\) has no len\(\).*map-style Dataset"):
        tune_lr(_net(), F.cross_entropy, stream, _loader(*blobs), _adamw)
    assert no_range_test == []
    with pytest.raises(TypeError):  # the reference: what the short runs would have met
        len(stream)


def test_a_data_set_smaller_than_one_batch_is_an_error_before_the_range_test(
        blobs, no_range_test):
    x, y = blobs
    result = tune_lr(_net(), F.cross_entropy, _loader(x[:20], y[:20]), _loader(*blobs),
                     _adamw)
    (finding,) = result.findings
    assert finding.code == "short_runs_smaller_than_batch"
    assert finding.severity is Severity.ERROR and "a batch_size below 20" in finding.fix
    assert result.lr != result.lr and result.short is None  # nan: nothing chosen
    assert no_range_test == []
    # one batch exactly is not smaller than a batch; drop_last gives no batch at all
    assert tune_lr(_net(), F.cross_entropy, _loader(x[:20], y[:20], 32, drop_last=True),
                   _loader(*blobs), _adamw).findings[0].code == "short_runs_no_batch"
    with pytest.raises(AssertionError, match="range test ran"):
        tune_lr(_net(), F.cross_entropy, _loader(x[:32], y[:32]), _loader(*blobs), _adamw)


def test_an_empty_validation_loader_is_an_error_before_the_range_test(blobs, no_range_test):
    x, y = blobs
    empty = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=64)
    result = tune_lr(_net(), F.cross_entropy, _loader(*blobs), empty, _adamw)
    assert [f.code for f in result.findings] == ["short_runs_no_val_batch"]
    assert "validation split" in result.findings[0].fix
    assert no_range_test == []


def test_a_one_shot_validation_iterator_is_refused(blobs, no_range_test):
    batches = (batch for batch in _loader(*blobs))
    with pytest.raises(TrainwiseError, match="one-shot iterator.*DataLoader or a list"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), batches, _adamw)
    assert no_range_test == []


def test_an_empty_range_loader_is_used_not_replaced_by_the_training_loader(blobs):
    """`range_loader or train_loader` took an empty DataLoader (falsy) for "not given"."""
    x, y = blobs
    empty = _loader(x[:20], y[:20], 32, drop_last=True)
    result = tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                     range_loader=empty)
    assert [f.code for f in result.findings] == ["lr_range_no_batch"]


def test_peeking_at_a_batch_leaves_the_random_state_as_found(blobs):
    """A DataLoader draws its base seed from the global RNG on each pass: the check's pass
    must not move the draws the range test and the short runs see."""
    loader = DataLoader(TensorDataset(*blobs), batch_size=32, shuffle=True)  # global RNG
    torch.manual_seed(3)
    before = torch.get_rng_state()
    x, _ = first_batch(loader)
    assert x.shape == (32, 8) and torch.equal(torch.get_rng_state(), before)
    assert first_batch(DataLoader(TensorDataset(blobs[0][:0], blobs[1][:0]))) is None


def test_regression_targets_without_task_regression_are_refused_with_the_fix(
        blobs, no_range_test):
    """The default task is classification; a regression met it only after the range test,
    in the calibration metrics ("expected probs (N, C) and targets (N,)")."""
    torch.manual_seed(0)
    x = torch.randn(300, 8)
    y = x[:, :1] * 2 + 0.1 * torch.randn(300, 1)  # (N, 1) float targets
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    train, val = _loader(x[:240], y[:240]), _loader(x[240:], y[240:])
    with pytest.raises(TrainwiseError, match=r"float32 of shape \(32, 1\).*task='regression'"):
        tune_lr(model, F.mse_loss, train, val, _adamw)
    assert no_range_test == []
    with pytest.raises(AssertionError, match="range test ran"):  # the fix passes the check
        tune_lr(model, F.mse_loss, train, val, _adamw, task="regression")
    with pytest.raises(AssertionError, match="range test ran"):  # class indices pass it too
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw)


def test_a_make_scheduler_without_total_steps_is_refused_before_the_range_test(
        blobs, no_range_test):
    one_argument = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)  # noqa: E731
    with pytest.raises(TrainwiseError, match=r"make_scheduler\(optimizer, total_steps\)"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                make_scheduler=one_argument)
    assert no_range_test == []
    with pytest.raises(TypeError):  # the reference: what the short runs would have met
        one_argument(_adamw(_net()), 100)
    assert "make_scheduler(optimizer, total_steps)" in tune_lr.__doc__  # documented too


_SCHEDULES = torch.optim.lr_scheduler


def test_a_make_optimizer_that_ignores_its_lr_is_refused_before_the_range_test(
        blobs, no_range_test):
    """Every candidate trained at 1e-3: identical losses, a widening to an edge and a pick
    below the whole measured range (audit s7 #5)."""
    fixed = lambda m, lr=None: torch.optim.AdamW(m.parameters(), lr=1e-3)  # noqa: E731
    with pytest.raises(TrainwiseError, match="does not use the lr it is passed.*lr=lr"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), fixed)
    assert no_range_test == []


def test_a_schedule_with_its_own_fixed_peak_is_refused_before_the_range_test(
        blobs, no_range_test):
    fixed = lambda opt, n: _SCHEDULES.OneCycleLR(opt, max_lr=0.01, total_steps=n)  # noqa: E731
    with pytest.raises(TrainwiseError, match=r"sets the lr itself.*max_lr=\[group\['lr'\]"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                make_scheduler=fixed)
    plateau = lambda opt, n: _SCHEDULES.ReduceLROnPlateau(opt)  # noqa: E731
    with pytest.raises(TrainwiseError, match="ReduceLROnPlateau"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                make_scheduler=plateau)
    assert no_range_test == []


def test_a_one_cycle_that_ignores_total_steps_is_refused_naming_the_rule(blobs, no_range_test):
    """Audit s13 T15: OneCycleLR(..., total_steps=10) pasted into make_scheduler passed the
    10-step probe and failed inside a short run as PyTorch's bare "Tried to step 11 times"."""
    short = lambda opt, n: _SCHEDULES.OneCycleLR(  # noqa: E731
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=10)
    with pytest.raises(TrainwiseError, match=r"must build the schedule over the total_steps "
                       r"it is given.*OneCycleLR of 10.*total_steps=total_steps\)"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                make_scheduler=short)
    assert no_range_test == []
    spans = lambda opt, n: _SCHEDULES.OneCycleLR(  # noqa: E731
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=n)
    with pytest.raises(AssertionError, match="range test ran"):  # the fix passes
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), _adamw,
                make_scheduler=spans)


def _groups(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW([{"params": model[0].parameters(), "lr": lr / 10},
                              {"params": model[2].parameters()}], lr=lr)


@pytest.mark.parametrize("make_optimizer,make_scheduler", [
    (_groups, None),  # param groups at a ratio of the lr; a constant lr
    (_adamw, lambda opt, n: _SCHEDULES.LambdaLR(opt, lambda s: s / n)),  # warmup from lr 0
    (_adamw, lambda opt, n: _SCHEDULES.CosineAnnealingLR(opt, T_max=n)),
    (lambda m, lr=0.1: torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9),
     lambda opt, n: None),
])
def test_optimizers_and_schedules_that_follow_the_lr_pass(blobs, no_range_test,
                                                         make_optimizer, make_scheduler):
    with pytest.raises(AssertionError, match="range test ran"):
        tune_lr(_net(), F.cross_entropy, _loader(*blobs), _loader(*blobs), make_optimizer,
                make_scheduler=make_scheduler)
