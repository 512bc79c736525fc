"""Audit s10 S3: a machine that gets busy mid-training is named, once, with the fix."""

import torch

from trainwise.train.busy_cpu import BusyCpuWatch


class _Clock:
    def __init__(self, epoch_seconds):
        self.times = [0.0]
        for seconds in epoch_seconds:
            self.times.append(self.times[-1] + seconds)
        self.calls = iter(self.times)

    def __call__(self):
        return next(self.calls)


def _watch(epoch_seconds, loads, threads=2, monkeypatch=None, on_cpu=True):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    loads = iter(loads)
    watch = BusyCpuWatch(load=lambda: next(loads), cores=2, on_cpu=on_cpu,
                         clock=_Clock(epoch_seconds))
    for epoch in range(1, len(epoch_seconds) + 1):
        watch.on_epoch_end({"epoch": epoch})
    return watch.finding()


def test_an_epoch_slowed_by_another_process_is_a_warning_naming_one_thread(monkeypatch):
    # epochs of 2 s, then 8 s while a hog keeps the load at 3.1 on 2 cores (the audit case);
    # the load is read only after a slow epoch
    found = _watch([2.0, 2.0, 8.0, 7.5], [3.1, 3.0], monkeypatch=monkeypatch)
    assert found is not None and found.code == "busy_cpu_during_training"
    assert found.evidence["epoch"] == 3 and found.evidence["slower"] == 4.0
    assert "run.threads=1" in found.fix and "--resume" in found.fix


def test_no_warning_without_a_slowdown_one_thread_a_gpu_or_tiny_epochs(monkeypatch):
    busy = [3.5, 3.5, 3.5]
    assert _watch([2.0, 2.1, 2.0, 2.2], busy, monkeypatch=monkeypatch) is None  # not slower
    assert _watch([2.0, 8.0, 8.0], busy, threads=1, monkeypatch=monkeypatch) is None
    assert _watch([2.0, 8.0, 8.0], busy, on_cpu=False, monkeypatch=monkeypatch) is None
    assert _watch([0.1, 0.5, 0.6], busy, monkeypatch=monkeypatch) is None  # under a second
    assert _watch([2.0, 8.0, 8.0], [1.5, 1.5], monkeypatch=monkeypatch) is None  # load fine
