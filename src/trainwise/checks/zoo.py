"""The check zoo: deliberately broken setups that preflight must catch, and healthy ones it must
pass without an error or a warning. Tests (tests/test_check_zoo.py) and the benchmark
(bench/check_zoo.py) run every entry, so a new check or threshold is proved on all of them.

An entry is a function of no arguments returning a Setup: (model, loss_fn, x, y, task,
num_classes, expected), where `expected` is the code of the error/warning that must appear, or
None for a healthy setup. Each call builds fresh tensors and a freshly seeded model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from trainwise.checks._common import LossFn
from trainwise.checks.zoo_data import (
    Detached,
    FlattenByView,
    FunctionalMLP,
    SigmoidRegressor,
    TimeMajorByView,
    ZeroesInputs,
    images,
    sequences,
    table,
    table_regression,
    task_data,
    tokens,
)
from trainwise.model.baselines import build_model, loss_function, mlp
from trainwise.model.init import init_weights

CE = nn.CrossEntropyLoss


class Setup(NamedTuple):
    model: nn.Module
    loss_fn: LossFn
    x: torch.Tensor
    y: torch.Tensor
    task: str
    num_classes: int
    expected: str | None  # the error/warning code preflight must report; None: none at all


def _seeded(make: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # the model's own default init, reproducible
    return make()


def _baseline(kind: str, x: torch.Tensor, y: torch.Tensor, name: str = "auto",
              task: str = "classification") -> Setup:
    """The recipe's path: build_model from the data, then the init policy."""
    num_classes = int(y.max()) + 1 if task == "classification" else 0
    model = _seeded(lambda: build_model(task_data(kind, x, y, task, num_classes), name))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    return Setup(model, loss_function(task), x, y, task, num_classes, None)


def _table_mlp(num_classes: int = 3) -> nn.Module:
    """The table baseline as the recipe builds it (mlp + init policy) for 8 features."""
    model = _seeded(lambda: mlp(8, num_classes))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    return model


def _on_table(model: nn.Module, expected: str | None, loss_fn: LossFn | None = None,
              x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> Setup:
    """A classification setup on the 3-blob table, with whatever the caller broke."""
    x0, y0 = table()
    return Setup(model, loss_fn or CE(), x0 if x is None else x, y0 if y is None else y,
                 "classification", 3, expected)


# ---- healthy: one per baseline and data kind, plus regression and a user's own module ----

HEALTHY_SETUPS: dict[str, Callable[[], Setup]] = {
    "mlp on a table": lambda: _baseline("table", *table()),
    "mlp regression on a table": lambda: _baseline("table", *table_regression(),
                                                   task="regression"),
    "cnn1d on sequences": lambda: _baseline("sequence", *sequences()),
    "gru on sequences": lambda: _baseline("sequence", *sequences(length=20), name="gru"),
    "cnn2d on images": lambda: _baseline("image", *images()),
    "embedding_pool on tokens": lambda: _baseline("tokens", *tokens()),
    "user's own nn.Module": lambda: _on_table(_seeded(FunctionalMLP), None),
}


# ---- broken: each names the finding that must catch it ----

def _softmax_before_ce() -> Setup:
    return _on_table(nn.Sequential(_table_mlp(), nn.Softmax(dim=1)), "softmax_before_loss")


def _labels_1_to_c() -> Setup:
    x, y = table()
    return _on_table(_table_mlp(), "labels_out_of_range", y=y + 1)


def _frozen_by_mistake() -> Setup:
    """A fine-tuning snippet run on a model trained from scratch: all but the head frozen."""
    model = _table_mlp()
    for layer in list(model)[:-1]:
        layer.requires_grad_(False)
    return _on_table(model, "params_frozen")


def _dead_relu_init() -> Setup:
    """Negative weights and biases of -10: every pre-activation is negative, every ReLU 0."""
    model = _seeded(lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32),
                                          nn.ReLU(), nn.Linear(32, 3)))
    with torch.no_grad():
        for layer in model[:-1:2]:
            layer.weight.copy_(-layer.weight.abs())
            layer.bias.fill_(-10.0)
    return _on_table(model, "dead_relu")


def _zero_init() -> Setup:
    """Every weight 0: every hidden unit computes the same 0; nothing breaks the symmetry."""
    model = _seeded(lambda: nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 3)))
    for param in model.parameters():
        nn.init.zeros_(param)
    return _on_table(model, "gradient_missing")


def _regression_broadcast() -> Setup:
    x, y = table_regression()
    model = _seeded(lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1)))
    return Setup(model, nn.MSELoss(), x, y, "regression", 0, "loss_broadcast")


def _regression_on_int_targets() -> Setup:
    """Class indices handed to a regression: MSE would rank class 9 next to 8."""
    x, y = table()
    return Setup(_table_mlp(1), loss_function("regression"), x, y, "regression", 0,
                 "targets_wrong_dtype")


def _regression_through(model: nn.Module) -> Setup:
    """Standardised targets (about half below 0) through a head that cannot leave [0, 1]."""
    x, y = table_regression()
    return Setup(model, loss_function("regression"), x, y, "regression", 0, "output_bounded")


def _sequence_view_mixes_batch() -> Setup:
    x, y = sequences(length=20)
    return Setup(_seeded(TimeMajorByView), CE(), x, y, "classification", 10, "batch_mixing")


def _sequence_channels_last() -> Setup:
    """(N, T, C) handed to a Conv1d that expects (N, C, T) with C = 1."""
    x, y = sequences()
    model = build_model(task_data("sequence", x, y, num_classes=10), "cnn1d")
    return Setup(model, CE(), x.transpose(1, 2), y, "classification", 10, "forward_failed")


def _image_flatten_by_view() -> Setup:
    x, y = images()
    return Setup(_seeded(FlattenByView), CE(), x, y, "classification", 4, "batch_dim_changed")


def _raw_pixels() -> Setup:
    """Pixels 0..255 never divided by 255 nor standardised."""
    x, y = images()
    raw = ((x - x.min()) / (x.max() - x.min()) * 255).round()
    setup = _baseline("image", raw, y)
    return setup._replace(expected="inputs_not_normalised")


def _token_ids_as_floats() -> Setup:
    x, y = tokens()
    setup = _baseline("tokens", x, y)
    return setup._replace(x=x.float(), expected="forward_failed")


BROKEN_SETUPS: dict[str, Callable[[], Setup]] = {
    "softmax before cross-entropy": _softmax_before_ce,
    "sigmoid before cross-entropy": lambda: _on_table(
        nn.Sequential(_table_mlp(), nn.Sigmoid()), "softmax_before_loss"),
    "labels 1..C": _labels_1_to_c,
    "labels as floats": lambda: _on_table(_table_mlp(), "labels_wrong_dtype",
                                          y=table()[1].float()),
    "NaN in the inputs": lambda: _on_table(
        _table_mlp(), "inputs_not_finite", x=table()[0].index_put_(
            (torch.tensor([5]), torch.tensor([3])), torch.tensor(float("nan")))),
    "all-zero inputs": lambda: _on_table(_table_mlp(), "inputs_constant",
                                         x=torch.zeros_like(table()[0])),
    "inputs scaled 1000x": lambda: _on_table(_table_mlp(), "inputs_not_normalised",
                                             x=table()[0] * 1000),
    "inputs float64": lambda: _on_table(_table_mlp(), "inputs_wrong_dtype",
                                        x=table()[0].double()),
    "output layer of the wrong width": lambda: _on_table(_table_mlp(4),
                                                         "logits_width_mismatch"),
    "MSE on class indices": lambda: _on_table(_table_mlp(), "loss_task_mismatch",
                                              loss_fn=nn.MSELoss()),
    "(B, 1) vs (B,) broadcast in MSE": _regression_broadcast,
    "class indices as regression targets": _regression_on_int_targets,
    "sigmoid module ending a regression": lambda: _regression_through(_seeded(
        lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid()))),
    "sigmoid inside forward of a regression": lambda: _regression_through(
        _seeded(SigmoidRegressor)),
    "every parameter frozen": lambda: _on_table(_table_mlp().requires_grad_(False),
                                                "no_trainable_params"),
    "layers frozen by mistake": _frozen_by_mistake,
    "tensor detached inside forward": lambda: _on_table(_seeded(Detached), "gradient_missing"),
    "inputs zeroed inside forward": lambda: _on_table(_seeded(ZeroesInputs), "inputs_ignored"),
    "dead-ReLU init": _dead_relu_init,
    "all-zero init": _zero_init,
    "sequence view mixes the batch": _sequence_view_mixes_batch,
    "sequence channels-last": _sequence_channels_last,
    "image flatten by a fixed view": _image_flatten_by_view,
    "raw 0..255 pixels": _raw_pixels,
    "token ids as floats": _token_ids_as_floats,
}
