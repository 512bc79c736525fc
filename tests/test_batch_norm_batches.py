"""BatchNorm and a batch of one sample: the last batch is dropped when it would hold one, and
a batch size of one is an error before any check or training runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.config import from_dict
from trainwise.data.task import TaskData
from trainwise.rundir import RunDir
from trainwise.stages import Arrays, RunContext, stage_model
from trainwise.stages_training import training_loader
from trainwise.train.batch_norm import batch_too_small, drop_lone_last_batch


def _bn_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _context(tmp_path, num_rows: int, batch_size: int, model: nn.Module) -> RunContext:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(num_rows, 4)).astype(np.float32), np.arange(num_rows) % 2
    data = TaskData("toy", "vector", "classification", x, y, class_names=["a", "b"])
    ctx = RunContext(from_dict({"train": {"batch_size": batch_size}}), RunDir(tmp_path),
                     fabric=SimpleNamespace(world_size=1), data=data, user_model=model)
    ctx.splits = {"train": Arrays(x, y)}
    ctx.model = model
    return ctx


def _one_epoch(model: nn.Module, loader) -> list[int]:
    model.train()
    sizes = []
    for x, _ in loader:
        model(x)  # raises on a batch of one in train mode
        sizes.append(len(x))
    return sizes


def test_a_last_batch_of_one_is_dropped_for_batch_norm(tmp_path) -> None:
    model = _bn_model()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model.train()(torch.zeros(1, 4))  # the crash this guards against
    ctx = _context(tmp_path, 21, 10, model)  # 10 + 10 + 1
    loader, notes = training_loader(ctx, "train")
    assert _one_epoch(model, loader) == [10, 10]
    [note] = notes
    assert note.code == "last_batch_dropped" and "leave 1 sample over" in note.message


def test_without_batch_norm_or_a_lone_sample_every_row_is_used(tmp_path) -> None:
    plain = nn.Sequential(nn.Linear(4, 2))
    loader, notes = training_loader(_context(tmp_path, 21, 10, plain), "train")
    assert sorted(_one_epoch(plain, loader)) == [1, 10, 10] and not notes
    model = _bn_model()
    loader, notes = training_loader(_context(tmp_path, 22, 10, model), "train")
    assert sorted(_one_epoch(model, loader)) == [2, 10, 10] and not notes


def test_pieces_of_one_across_processes_and_micro_batches() -> None:
    model = _bn_model()
    # 2 processes x 2 micro-batches: a last batch of 5 gives pieces 2, 1, 1, 1
    assert drop_lone_last_batch(model, 37, 32, 4, "train")[0]
    assert not drop_lone_last_batch(model, 40, 32, 4, "train")[0]  # pieces of 2
    assert batch_too_small(model, 100, 4, 4, "train") is not None  # 4 pieces of 1
    assert batch_too_small(model, 100, 8, 4, "train") is None


def test_the_dropped_batch_note_names_the_pieces_and_a_leftover_that_works() -> None:
    model = _bn_model()
    _, [note] = drop_lone_last_batch(model, 37, 32, 4, "train")
    sizes = [len(piece) for piece in torch.arange(5).tensor_split(4)]  # what the loop cuts
    assert f"5 samples over, split into 4 pieces of {', '.join(map(str, sizes))}" \
        in note.message
    assert "leave 0 or 8+ over" in note.message
    assert not drop_lone_last_batch(model, 32 + 8, 32, 4, "train")[0]  # 8 over: as advised
    assert drop_lone_last_batch(model, 32 + 7, 32, 4, "train")[0]
    _, [note] = drop_lone_last_batch(model, 33, 32, 1, "train")  # one piece: as before
    assert "leave 1 sample over, and" in note.message and "0 or 2+ over" in note.message


def test_batch_size_one_with_batch_norm_stops_at_the_model_stage(tmp_path) -> None:
    ctx = _context(tmp_path, 30, 1, _bn_model())
    [found] = [f for f in stage_model(ctx) if f.severity.value == "error"]
    assert found.code == "batch_norm_batch_of_one" and found.stage == "model"
    assert "train.batch_size to at least 2" in found.fix and "LayerNorm" in found.fix
    loader, [error] = training_loader(ctx, "train")
    assert loader is None and error.code == "batch_norm_batch_of_one"
    fine = _context(tmp_path, 30, 1, nn.Sequential(nn.Linear(4, 2)))
    assert not [f for f in stage_model(fine) if f.severity.value == "error"]
