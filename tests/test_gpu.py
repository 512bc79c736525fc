"""Tuning on a GPU (issue 6): the range test leaves no trace in CUDA state, the batch-size
probe reads the CUDA allocator, a real out-of-memory is caught, logged and stepped below, the
short runs train on the model's GPU; and `fit` gives a CPU model back on the CPU. Skipped
without CUDA: CI has none; `bash bench/gpu_check.sh` runs these on a GPU machine."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.config import TuneConfig
from trainwise.train.loop import fit
from trainwise.tune import lr_range_test
from trainwise.tune.batch_probe import find_batch_size, make_measure
from trainwise.tune.search import tune_lr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(64, 3)).cuda()


def _adamw(model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=lr or 1e-3, weight_decay=0.01)


def _loader(blobs, seed: int = 5, batch_size: int = 32) -> DataLoader:
    return DataLoader(TensorDataset(*blobs), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _state(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (*model.parameters(), *model.buffers())]


def _train_on_gpu(blobs, with_range_test: bool) -> list[torch.Tensor]:
    """Six AdamW steps on the GPU (dropout draws from the CUDA generator), after a range test
    or not; the weights, buffers and both generators' states after them."""
    torch.manual_seed(123)
    torch.cuda.manual_seed(123)
    model, data = _net(7), _loader(blobs)
    if with_range_test:
        result = lr_range_test(model, F.cross_entropy, data, _adamw, num_steps=20, seeds=(0, 1))
        assert len(result.curves) == 2 and all(c.lrs for c in result.curves)
    optimizer = _adamw(model)
    batches = iter(data)
    for _ in range(6):
        x, y = (t.cuda() for t in next(batches))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return _state(model) + [torch.cuda.get_rng_state().clone(), torch.get_rng_state().clone()]


def test_training_on_a_gpu_after_the_range_test_is_bitwise_identical_to_training_without(blobs):
    plain = _train_on_gpu(blobs, with_range_test=False)
    tested = _train_on_gpu(blobs, with_range_test=True)
    assert len(plain) == len(tested)
    for a, b in zip(plain, tested, strict=True):
        assert torch.equal(a.cpu(), b.cpu())


def test_the_gpu_probe_reads_the_allocator_and_leaves_the_model_and_generators(blobs):
    model = _net()
    x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
    before, cuda_rng = _state(model), torch.cuda.get_rng_state().clone()
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_allocated()
    measure = make_measure(model, nn.CrossEntropyLoss(), x, y, _adamw)
    small, large = measure(32), measure(256)
    assert not small.estimated and not large.estimated  # measured, not the CPU's estimate
    # the (B, 64) activations saved for backward alone grow by 224 x 64 x 4 bytes
    assert large.peak_bytes - small.peak_bytes >= (256 - 32) * 64 * 4
    assert small.peak_bytes > allocated  # the peak counts what was already on the GPU too
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model), strict=True))
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == allocated  # the probe's copies are freed


class _WideActivations(nn.Module):
    """8 features -> (B, 256, 4096) activations: about 4 MiB a row saved for backward, so
    the batch, not the weights, decides whether a step fits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 256)
        self.scale = nn.Parameter(torch.ones(4096))
        self.head = nn.Linear(256, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = torch.relu(self.embed(x).unsqueeze(-1) * self.scale)
        return self.head(wide.mean(-1))


def test_a_real_gpu_out_of_memory_is_caught_logged_retried_and_the_size_below_chosen():
    torch.manual_seed(0)
    model = _WideActivations().cuda()
    x, y = torch.randn(512, 8), torch.randint(0, 3, (512,))
    peak_32 = make_measure(model, nn.CrossEntropyLoss(), x, y, _adamw)(32).peak_bytes
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    # the allocator refuses beyond 1.6x batch 32's peak: 64 (about 2x) cannot fit. The
    # search's budget is the device's free memory, so only the allocator's error stops it.
    torch.cuda.set_per_process_memory_fraction(1.6 * peak_32 / total)
    try:
        result = find_batch_size(model, nn.CrossEntropyLoss(), x, y, _adamw, num_rows=5000)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    statuses = [(t.batch_size, t.attempt, t.status) for t in result.trials]
    assert statuses == [(32, 1, "chosen"), (64, 1, "oom"), (64, 2, "oom")], statuses
    assert result.batch_size == 32
    assert "out of memory" in result.trials[1].message.lower()
    said = [f.message for f in result.findings if f.code == "batch_size"]
    assert said and "the next, 64, ran out of memory (2 attempt(s))" in said[0]
    # after the search, batch 64 fits again: the OOMs left nothing allocated behind
    assert make_measure(model, nn.CrossEntropyLoss(), x, y, _adamw)(64).peak_bytes > peak_32


def test_the_short_runs_train_on_the_models_gpu_and_leave_the_model_as_found(blobs):
    model = _net()
    x, y = blobs
    before = _state(model)
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0), drop_last=True)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60)
    result = tune_lr(model, F.cross_entropy, train, val, _adamw, max_epochs=10,
                     config=TuneConfig(num_steps=40, num_seeds=2, num_candidates=3,
                                       max_widenings=1))
    assert math.isfinite(result.lr) and result.short is not None
    tried = [c.lr for c in result.short.candidates]
    assert result.lr in tried or result.lr == pytest.approx(result.range_test.lr)
    assert all(math.isfinite(c.val_loss) for c in result.short.candidates)
    assert next(model.parameters()).device.type == "cuda"
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model), strict=True))


def test_fit_trains_a_cpu_model_on_the_gpu_and_gives_it_back_on_the_cpu(blobs):
    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))  # built on the CPU
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    seen = []

    class Where:
        def on_epoch_end(self, state, row, model):
            seen.append(next(model.parameters()).device.type)

    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60)
    fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), max_epochs=2,
        callbacks=[Where()])
    assert seen == ["cuda", "cuda"]  # trained on the GPU, fit's default where there is one
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    moments = [v for state in optimizer.state.values() for v in state.values()
               if isinstance(v, torch.Tensor)]
    assert moments and {v.device.type for v in moments} == {"cpu"}
    with torch.no_grad():
        assert model(x[240:]).shape == (60, 3)  # CPU inputs, as before fit
    optimizer.zero_grad()
    F.cross_entropy(model(x[:32]), y[:32]).backward()
    optimizer.step()  # the user's optimizer goes on with the model where it is now
