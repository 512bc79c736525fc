"""Baselines sized from the data: shapes, learning on toy tasks, init, and actionable errors.

Preflight on every baseline (no error, no warning) runs in test_check_zoo.py: its healthy
setups are these baselines built by build_model; test_every_baseline_is_a_healthy_zoo_setup
below makes sure none is left out.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.checks.zoo import HEALTHY_SETUPS
from trainwise.checks.zoo_data import images, sequences, table, table_regression, task_data, tokens
from trainwise.model.baselines import (
    AUTO,
    BASELINES,
    EmbeddingPool,
    ModelError,
    build_model,
    loss_function,
)
from trainwise.model.init import init_weights

# kind -> toy data for it; every baseline is built from the kind it is made for
DATA = {"table": table, "sequence": lambda: sequences(length=20), "image": images,
        "tokens": tokens}
KIND_OF = {"mlp": "table", "cnn1d": "sequence", "gru": "sequence", "cnn2d": "image",
           "embedding_pool": "tokens"}


def _build(name: str, task: str = "classification") -> tuple[nn.Module, torch.Tensor,
                                                                torch.Tensor, int]:
    kind = KIND_OF[name]
    x, y = DATA[kind]()
    if task == "regression":
        y = torch.linspace(-1, 1, len(x))
    num_classes = int(y.max()) + 1 if task == "classification" else 0
    torch.manual_seed(0)
    model = build_model(task_data(kind, x, y, task, num_classes), name)
    init_weights(model, generator=torch.Generator().manual_seed(0))
    return model, x, y, num_classes


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_output_shape(name: str, task: str) -> None:
    model, x, y, num_classes = _build(name, task)
    out = model.eval()(x[:5])
    assert out.shape == (5, num_classes or 1)
    assert isinstance(model, nn.Sequential)


@pytest.mark.parametrize("kind", list(AUTO))
def test_auto_picks_by_kind(kind: str) -> None:
    make = DATA["table" if kind == "vector" else kind]
    x, y = make()
    model = build_model(task_data(kind, x, y, num_classes=int(y.max()) + 1))
    expected = BASELINES[AUTO[kind]](1, 1)
    assert [type(m) for m in model.modules()] == [type(m) for m in expected.modules()]


def _train(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
           num_steps: int) -> tuple[float, float]:
    """Full-batch AdamW steps at 3e-3; (loss before, loss after) measured in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = float(loss_fn(model.eval()(x), y))
    model.train()
    for _ in range(num_steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        return before, float(loss_fn(model.eval()(x), y))


@pytest.mark.parametrize("name", list(BASELINES))
def test_learns_a_toy_task(name: str) -> None:
    model, x, y, _ = _build(name)
    before, after = _train(model, loss_function("classification"), x[:64], y[:64], 25)
    # 25 steps on 64 samples of a separable task: a model that learns at all halves its loss
    assert after < 0.5 * before, (before, after)


def test_regression_baseline_learns() -> None:
    x, y = table_regression()
    model = build_model(task_data("table", x, y, "regression"))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    before, after = _train(model, loss_function("regression"), x, y, 40)
    assert after < 0.5 * before, (before, after)


def test_gru_recurrence_gets_orthogonal_init() -> None:
    model, *_ = _build("gru")
    records = {r["name"]: r["rule"] for r in init_weights(model)}
    assert records["1.weight_hh_l0"] == "orthogonal"
    hh = model[1].weight_hh_l0.detach()
    for gate in hh.chunk(3):  # (3H, H): r, z, n gates, each (H, H) orthogonal
        assert torch.allclose(gate @ gate.T, torch.eye(len(gate)), atol=1e-5)


def test_embedding_pool_ignores_padding() -> None:
    pool = EmbeddingPool(10, 4)
    ids = torch.tensor([[3, 5, 0, 0, 0, 0], [3, 5, 0, 0, 0, 0]])
    longer = torch.tensor([[3, 5, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    mean = pool.embedding.weight[[3, 5]].mean(0)
    assert torch.allclose(pool(ids)[0], mean) and torch.allclose(pool(longer)[0], mean)
    assert torch.equal(pool(longer)[1], torch.zeros(4))  # all padding: zeros, not NaN


def test_uint8_images_build_cnn2d() -> None:
    """The image loader keeps decoded pixels as uint8 (N, C, H, W); the split makes floats."""
    x, y = images()
    pixels = ((x - x.min()) / (x.max() - x.min()) * 255).to(torch.uint8)
    model = build_model(task_data("image", pixels, y, num_classes=4))
    assert model(x[:2]).shape == (2, 4)


def test_vocab_size_covers_the_held_out_part() -> None:
    x, y = tokens(vocab=50)
    data = task_data("tokens", x, y, num_classes=2)
    data.x_test = np.array([[120, 3]])
    model = build_model(data)
    assert model[0].embedding.num_embeddings == 121


def test_every_baseline_is_a_healthy_zoo_setup() -> None:
    built = set()
    for make in HEALTHY_SETUPS.values():
        model = make().model
        built |= {name for name, fn in BASELINES.items()
                  if isinstance(model, nn.Sequential)
                  and [type(m) for m in model] == [type(m) for m in fn(1, 1)]}
    assert built == set(BASELINES)


def _data(kind: str, x: np.ndarray | torch.Tensor) -> object:
    x = torch.as_tensor(x)
    return task_data(kind, x, torch.zeros(len(x), dtype=torch.long), num_classes=2)


@pytest.mark.parametrize(("kind", "x", "name", "says"), [
    ("table", torch.randn(4, 3), "resnet", "unknown model 'resnet'"),
    ("audio", torch.randn(4, 3), "auto", "no baseline for data of kind 'audio'"),
    ("table", torch.randn(4, 3), "cnn1d", "cnn1d needs sequences shaped (N, C, T)"),
    ("sequence", torch.randn(4, 1, 9), "cnn2d", "cnn2d needs images shaped (N, C, H, W)"),
    ("tokens", torch.randn(4, 9), "embedding_pool", "embedding_pool needs integer token ids"),
    ("tokens", torch.ones(4, 9, dtype=torch.long), "mlp", "embedding_pool"),
    ("tokens", -torch.ones(4, 9, dtype=torch.long), "auto", "token ids must be >= 0"),
    ("table", torch.randn(4, 3), "nowhere.module:Net", "could not import model"),
])
def test_build_errors_are_actionable(kind: str, x: torch.Tensor, name: str, says: str) -> None:
    with pytest.raises(ModelError) as caught:
        build_model(_data(kind, x), name)
    message = str(caught.value)
    assert says in message
    assert "Use " in message or "Map " in message  # every error names a way out
