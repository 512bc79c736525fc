"""The zoo's entries: healthy runs and runs broken in one known way, per data family.

Learning rates: AdamW 3e-3 on tables and digits, 1e-2 on MNIST-1D (the paper's setting);
"100x too high" and "10^4x too low" are measured from those.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from _zoo_runs import (
    Arrays,
    Case,
    CorruptOneBatch,
    Recording,
    Run,
    cnn1d,
    cnn2d,
    dead_init,
    gru,
    images,
    loader,
    mlp,
    seeded,
    sequences,
    table,
    table_regression,
)
from torch import nn

DIVERGED = ("divergence", "loss_exploding")
# A batch scaled 1000x saturates the outputs: answered wrong, its loss and gradient spike;
# answered right (8x8 digits, seed 1), both underflow to exactly 0. Either names the batch.
OUTLIER_BATCH = ("gradient_spike", "gradient_dip")
FAMILIES = {  # data, model, lr, batch size, epochs, classes
    "table": (table, lambda: mlp(20, 4), 3e-3, 64, 25, 4),
    "sequence": (sequences, cnn1d, 1e-2, 100, 15, 10),
    "image": (images, cnn2d, 3e-3, 64, 20, 10),
}


def _run(family: str, seed: int, *, model: Callable[[], nn.Module] | None = None,
         data: Arrays | None = None, lr_factor: float = 1.0, shuffle: bool = True,
         **changes) -> Run:
    make_data, make_model, lr, batch, epochs, classes = FAMILIES[family]
    x, y, x_val, y_val = data if data is not None else make_data()
    if not shuffle:  # sorted by label, as a file often is
        order = torch.argsort(y, stable=True)
        x, y = x[order], y[order]
    options = {"lr": lr * lr_factor, "epochs": epochs, "num_classes": classes, **changes}
    return Run(seeded(seed, model or make_model),
               loader(x, y, batch, seed, shuffle=shuffle), loader(x_val, y_val, 512, seed),
               **options)


def _random_labels(family: str, seed: int) -> Run:
    x, y, x_val, y_val = FAMILIES[family][0]()
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]
    return _run(family, seed, data=(x, shuffled, x_val, y_val), patience=None)


def _tiny_train_set(family: str, seed: int, wide: Callable[[], nn.Module], size: int,
                    epochs: int) -> Run:
    """A few dozen samples, a model 10-50x wider, far more epochs, no early stopping."""
    x, y, x_val, y_val = FAMILIES[family][0]()
    return _run(family, seed, data=(x[:size], y[:size], x_val, y_val), model=wide,
                epochs=epochs, patience=None)


def _corrupted_batch(family: str, seed: int) -> Run:
    """The inputs of one batch (the 3rd epoch's 5th) multiplied by 1000."""
    _, _, _, batch, _, _ = FAMILIES[family]
    run = _run(family, seed)
    dataset = run.train.dataset
    assert isinstance(dataset, Recording)
    steps = len(run.train)
    corrupt = CorruptOneBatch(dataset, at=2 * steps + 5)
    run.train = loader(dataset.x, dataset.y, batch, seed, collate=corrupt, dataset=dataset)
    run.corrupt = corrupt
    return run


def _double_softmax(family: str, seed: int) -> Run:
    make_model = FAMILIES[family][1]
    return _run(family, seed, model=lambda: nn.Sequential(make_model(), nn.Softmax(dim=1)))


def _constant_inputs(family: str, seed: int) -> Run:
    x, y, x_val, y_val = FAMILIES[family][0]()
    return _run(family, seed, data=(torch.zeros_like(x), y, torch.zeros_like(x_val), y_val))


def _regression(seed: int, lr_factor: float = 1.0) -> Run:
    return _run("table", seed, data=table_regression(), model=lambda: mlp(10, 1),
                lr_factor=lr_factor, loss_fn=nn.MSELoss(), task="regression", num_classes=0)


def _broken_common(family: str) -> list[Case]:
    """The faults every family gets."""
    def case(name: str, expected: tuple[str, ...], make: Callable[[int], Run]) -> Case:
        return Case(f"{family}: {name}", family, expected, make)

    return [
        case("lr 100x too high", DIVERGED, lambda s: _run(family, s, lr_factor=100)),
        case("lr 10^4x too low", ("lr_too_low",), lambda s: _run(family, s, lr_factor=1e-4)),
        case("random labels", ("overfitting", "confusion"), lambda s: _random_labels(family, s)),
        case("unshuffled, sorted by label", ("ordered_batches",),
             lambda s: _run(family, s, shuffle=False)),
        case("one batch scaled 1000x", OUTLIER_BATCH,
             lambda s: _corrupted_batch(family, s)),
        case("dead-ReLU init (biases -10)", ("vanishing_gradients",),
             lambda s: _run(family, s, model=lambda: dead_init(FAMILIES[family][1]()))),
        case("double softmax", ("underconfidence",), lambda s: _double_softmax(family, s)),
    ]


BROKEN: list[Case] = [
    *_broken_common("table"),
    Case("table: tiny train set (48 rows), 1024-wide MLP, 150 epochs", "table",
         ("overfitting",), lambda s: _tiny_train_set(
             "table", s, lambda: mlp(20, 4, width=1024), 48, 150)),
    Case("table: 10 sigmoid layers", "table", ("vanishing_gradients",),
         lambda s: _run("table", s, model=lambda: mlp(20, 4, depth=10, activation=nn.Sigmoid))),
    Case("table: inputs all zero", "table", ("plateau",), lambda s: _constant_inputs("table", s)),
    Case("table: no zero_grad (own loop, SGD)", "table", DIVERGED,
         lambda s: _run("table", s, optimizer="sgd", lr_factor=10, own_loop="no_zero_grad")),
    Case("table: regression, lr 100x too high", "table", DIVERGED,
         lambda s: _regression(s, lr_factor=100)),
    *_broken_common("sequence"),
    Case("sequence: 96 sequences, 4x wider CNN, 100 epochs", "sequence", ("overfitting",),
         lambda s: _tiny_train_set("sequence", s, lambda: cnn1d(100), 96, 100)),
    *_broken_common("image"),
    Case("image: 64 images, 4x wider CNN, 100 epochs", "image", ("overfitting",),
         lambda s: _tiny_train_set("image", s, lambda: cnn2d(64), 64, 100)),
]

def _healthy(family: str, offset: int) -> Case:
    """The family's default run, its seed shifted so three healthy runs differ."""
    return Case(f"{family}: healthy, seed +{offset}", family, (),
                lambda s: _run(family, s + offset))


HEALTHY: list[Case] = [
    *[_healthy(family, offset) for family in FAMILIES for offset in (0, 100, 200)],
    Case("table: healthy regression", "table", (), _regression),
    Case("sequence: healthy GRU", "sequence", (),
         lambda s: _run("sequence", s, model=gru, lr_factor=0.5)),
    Case("image: healthy MLP", "image", (), lambda s: _run("image", s, model=lambda: mlp(64, 10))),
]
