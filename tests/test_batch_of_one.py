"""A model that breaks on a batch of one sample (a .squeeze() that drops the batch dimension),
and errors raised by the model during training: both send the user to the model stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.config import from_dict
from trainwise.data.task import TaskData
from trainwise.model.baselines import ModelError, RegressionLoss
from trainwise.model.summary import check_batch_of_one
from trainwise.rundir import RunDir
from trainwise.stage_errors import run_stage
from trainwise.stages import Arrays, RunContext, stage_model


class Squeezed(nn.Module):
    """Regression head returning .squeeze(): (B,) for B > 1, but () for a batch of one."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x).squeeze()


def _regression(num_rows: int):
    rng = np.random.default_rng(0)
    return (torch.as_tensor(rng.normal(size=(num_rows, 4)), dtype=torch.float32),
            torch.as_tensor(rng.normal(size=num_rows), dtype=torch.float32))


def test_a_squeeze_that_drops_the_batch_dimension_is_caught_on_one_sample() -> None:
    x, y = _regression(16)
    [found] = check_batch_of_one(Squeezed(), x, y, "regression", 0, met_in_training=True)
    assert found.code == "batch_of_one_failed" and found.severity.value == "error"
    assert ".squeeze(-1)" in found.fix and "model stage" in found.fix
    [mild] = check_batch_of_one(Squeezed(), x, y, "regression", 0, met_in_training=False)
    assert mild.severity.value == "warning"
    healthy = nn.Sequential(nn.Linear(4, 1))
    assert check_batch_of_one(healthy, x, y, "regression", 0, met_in_training=True) == []


def test_the_model_stage_stops_when_training_will_meet_a_batch_of_one(tmp_path) -> None:
    def stage(num_rows: int):
        x, y = _regression(num_rows)
        data = TaskData("toy", "vector", "regression", x.numpy(), y.numpy())
        ctx = RunContext(from_dict({"train": {"batch_size": 10}}), RunDir(tmp_path),
                         fabric=None, data=data, user_model=Squeezed())
        ctx.splits = {"train": Arrays(x.numpy(), y.numpy())}
        return {f.code: f.severity.value for f in stage_model(ctx)}

    assert stage(21)["batch_of_one_failed"] == "error"  # 10 + 10 + 1
    assert stage(20)["batch_of_one_failed"] == "warning"


def test_the_regression_loss_names_the_squeeze_on_a_batch_of_one() -> None:
    with pytest.raises(ModelError, match=r"\.squeeze\(-1\)"):
        RegressionLoss()(torch.tensor(0.5), torch.tensor([0.5]))


class _Context:
    def __init__(self, tmp_path, model=None):
        self.run, self.model = RunDir(tmp_path), model


def test_a_model_error_in_training_sends_the_user_to_the_model_stage(tmp_path) -> None:
    def train(ctx):
        raise ModelError("regression output shape () does not match target shape (1,)")

    [found] = run_stage("train", train, _Context(tmp_path))
    assert "revisit the model stage" in found.fix


def test_an_exception_from_the_models_forward_names_the_layer(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(7, 1))  # 8 != 7

    def train(ctx):
        ctx.model(torch.zeros(3, 4))

    [found] = run_stage("train", train, _Context(tmp_path, model))
    assert found.code == "forward_failed" and found.evidence["layer"] == "2"
    assert "revisit the model stage" in found.fix and "mat1 and mat2" in found.message

    def ours(ctx):  # not from the model: still reported as ours
        raise RuntimeError("a bug in trainwise")

    [found] = run_stage("train", ours, _Context(tmp_path, model))
    assert found.code == "unexpected_error"


class _RunsOutOfMemory(nn.Module):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.layer, self.error = nn.Linear(2, 2), error

    def forward(self, x):
        raise self.error


@pytest.mark.parametrize("oom", [torch.OutOfMemoryError("CUDA out of memory. Tried to "
                                                         "allocate 2.00 GiB"),
                                 RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_out_of_memory_in_the_forward_asks_for_a_smaller_batch_not_a_shape_fix(
        tmp_path, oom) -> None:
    def train(ctx):
        ctx.model(torch.zeros(1, 2))

    [found] = run_stage("train", train, _Context(tmp_path, _RunsOutOfMemory(oom)))
    assert found.code == "out_of_memory"
    assert "train.batch_size" in found.fix and "tune stage" in found.fix
    assert ".squeeze()" not in found.fix


def test_a_non_shape_error_in_the_forward_is_a_bug_named_by_its_layer(tmp_path) -> None:
    def train(ctx):
        ctx.model(torch.zeros(1, 2))

    model = _RunsOutOfMemory(NameError("name 'hiden' is not defined"))
    [found] = run_stage("train", train, _Context(tmp_path, model))
    assert found.code == "unexpected_error" and "layer '(model)'" in found.message


def test_forward_failed_has_one_evidence_shape_in_every_stage(tmp_path) -> None:
    from trainwise.model.forward_errors import forward_failed

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(7, 1))  # 8 != 7

    def train(ctx):
        ctx.model(torch.zeros(3, 4))

    [late] = run_stage("train", train, _Context(tmp_path, model))
    try:
        model(torch.zeros(3, 4))
    except RuntimeError as exc:
        early = forward_failed("2", exc, torch.zeros(3, 4), "model", model)
    assert late.code == early.code == "forward_failed"
    assert set(late.evidence) == set(early.evidence)  # the report reads one shape
    assert late.evidence["input_shape"] is None and early.evidence["input_shape"] == [3, 4]


def test_the_batch_of_one_check_uses_the_evaluation_loaders_batch_sizes() -> None:
    from trainwise.stages import EVAL_BATCH_SIZE, eval_batch_size

    assert eval_batch_size("val", 1024) == 1024  # never below the training batch
    assert eval_batch_size("val", 32) == eval_batch_size("test", 1024) == EVAL_BATCH_SIZE


def test_out_of_memory_in_evaluate_names_the_test_probabilities_not_only_the_batch(
        tmp_path) -> None:
    """Audit s16 S9: 15,000 classes ran out of memory in evaluate on 6,000 x 15,000
    probabilities (torch tried 360,000,000 bytes: 6,000 x 15,000 x 4) and was told only to
    lower train.batch_size, which does not change that size."""
    from types import SimpleNamespace

    def evaluate(ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 343.32 MiB")

    ctx = _Context(tmp_path)
    ctx.data = SimpleNamespace(task="classification",
                               class_names=[f"c{i}" for i in range(15_000)])
    ctx.splits = {"test": SimpleNamespace(y=np.zeros(6_000))}
    [found] = run_stage("evaluate", evaluate, ctx)
    assert found.code == "out_of_memory"
    assert found.fix.startswith("The evaluate stage keeps every test row's class probabilities "
                                "at once: 6000 rows x 15000 classes = 360 MB in float32")
    assert "is data.target the column to predict?" in found.fix
    assert "If that is small: lower train.batch_size" in found.fix
    ctx.data.task = "regression"  # no class probabilities: the batch advice alone
    [found] = run_stage("evaluate", evaluate, ctx)
    assert found.fix.startswith("Lower train.batch_size")


def test_a_link_out_of_the_run_folder_is_no_stage_to_revisit(tmp_path) -> None:
    from trainwise.safe_write import UnsafeFolderError

    def train(ctx):  # a --resume of a received folder whose tensorboard/ links out
        raise UnsafeFolderError("'run/tensorboard' leads outside the run folder ... rm ...")

    [found] = run_stage("train", train, _Context(tmp_path))
    assert found.code == "unsafe_run_folder" and "revisit" not in found.fix
    assert found.fix.startswith("Delete the link")
