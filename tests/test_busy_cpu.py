"""Audit s10 S3: a machine that gets busy mid-training is named, once, with the fix."""

import torch

from trainwise.train.busy_cpu import BusyCpuWatch


def _watch(epochs, loads, threads=2, monkeypatch=None, on_cpu=True, first_step=0):
    """epochs: (steps, seconds) per epoch, as the loop's epoch rows give them."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    loads = iter(loads)
    watch = BusyCpuWatch(load=lambda: next(loads), cores=2, on_cpu=on_cpu)
    step = first_step
    for epoch, (steps, seconds) in enumerate(epochs, start=1):
        step += steps
        watch.on_epoch_end({"epoch": epoch, "step": step, "seconds": seconds})
    return watch.finding()


def test_an_epoch_slowed_by_another_process_is_a_warning_naming_one_thread(monkeypatch):
    # 100-step epochs of 2 s, then 8 s while a hog keeps the load at 3.1 on 2 cores (the
    # audit's case); the first epoch is no reference, the load is read only after a slow one
    found = _watch([(100, 2.0), (100, 2.0), (100, 8.0), (100, 7.5)], [3.1, 3.0],
                   monkeypatch=monkeypatch)
    assert found is not None and found.code == "busy_cpu_during_training"
    assert found.evidence["epoch"] == 3 and found.evidence["slower"] == 4.0
    assert "run.threads=1" in found.fix and "--resume" in found.fix


def test_no_warning_without_a_slowdown_one_thread_a_gpu_or_tiny_epochs(monkeypatch):
    busy = [3.5, 3.5, 3.5]
    steady = [(100, 2.0), (100, 2.1), (100, 2.0), (100, 2.2)]
    assert _watch(steady, busy, monkeypatch=monkeypatch) is None  # not slower
    slow = [(100, 2.0), (100, 2.0), (100, 8.0), (100, 8.0)]
    assert _watch(slow, busy, threads=1, monkeypatch=monkeypatch) is None
    assert _watch(slow, busy, on_cpu=False, monkeypatch=monkeypatch) is None
    tiny = [(100, 0.1), (100, 0.1), (100, 0.5), (100, 0.6)]
    assert _watch(tiny, busy, monkeypatch=monkeypatch) is None  # epochs under a second
    assert _watch(slow, [1.5, 1.5], monkeypatch=monkeypatch) is None  # the load is fine


def test_a_resumed_runs_partial_first_epoch_sets_no_pace(monkeypatch):
    # resumed 90 steps into a 100-step epoch: 10 steps in 0.2 s, then whole epochs of 2 s at
    # the same pace per step, on a busy machine: no warning (per epoch they look 10x slower)
    resumed = [(10, 0.2), (100, 2.0), (100, 2.0), (100, 2.1)]
    assert _watch(resumed, [3.5] * 3, monkeypatch=monkeypatch, first_step=590) is None
