"""Shared fixtures: tiny synthetic tasks that train in well under a second on one thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# Two cores shared with other work: torch's default thread count can slow tiny models 100x.
torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "forks: forks processes (CPU multi-process tests)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With CUDA present, autograd starts a thread per device at the first backward, and a
    process forked after that cannot run autograd (PyTorch wiki, "Autograd and Fork"): the
    forking tests are CPU tests (CI runs them); a GPU machine runs the rest."""
    if not torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="forks after autograd has run, unsafe with CUDA present; "
                                   "a CPU-only machine (CI) runs it")
    for item in items:
        if "forks" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated Gaussian classes in 8 dimensions: (300, 8) float32, (300,) int64."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 8))
    y = np.repeat(np.arange(3), 100)
    x = centers[y] + rng.normal(0, 1, size=(300, 8))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


@pytest.fixture
def tiny_tune(blobs):
    """Tuning inputs on the blobs: loaders of 240/60 rows (8 steps an epoch of 32), a small
    MLP seeded 0, and an AdamW factory (lr 1e-3 unless given)."""
    from trainwise.data.tensors import to_loader

    x, y = blobs
    train = to_loader(x[:240], y[:240], 32, shuffle=True, seed=0)
    val = to_loader(x[240:], y[240:], 60, shuffle=False, seed=0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    return train, val, model, lambda m, lr=None: torch.optim.AdamW(m.parameters(), lr=lr or 1e-3)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished two-class `trainwise.run` on 200 rows (3 epochs, no checks): (folder, x).
    Shared read-only: a test that changes a run folder copies it first."""
    import trainwise

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = (rng.normal(0, 1, (200, 4)) + y[:, None]).astype(np.float32)
    out = tmp_path_factory.mktemp("finished_run")
    result = trainwise.run(data=(x, y), report=False, overrides=[
        "train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
        "train.batch_size=32", f"run.out_dir=\"{out}\""])
    assert result.ok, result.verdict
    return result.path, x
