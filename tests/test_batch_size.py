"""Batch-size search: memory budget, throughput stop, bounded OOM retries, the real probe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainwise.findings import Severity, TrainwiseError
from trainwise.tune import batch_probe, batch_size
from trainwise.tune.batch_probe import find_batch_size, make_measure, memory_limit
from trainwise.tune.batch_size import (
    HEADROOM,
    Measurement,
    fixed_batch_findings,
    format_bytes,
    is_oom,
    search_batch_size,
)
from trainwise.tune.large_batch import (
    accumulation_plan,
    accumulation_steps,
    large_batch_finding,
    warmup_schedule,
    warmup_steps,
)

MIB = 2**20


@pytest.fixture(autouse=True)
def freed(monkeypatch) -> list[int]:
    """Count the frees after an OOM instead of running gc.collect (~1 s each under load)."""
    calls: list[int] = []
    monkeypatch.setattr(batch_size, "_free_memory", lambda: calls.append(1))
    return calls


def fake(bytes_per_sample: int = MIB, speed=lambda b: 100.0 * b, oom_from: int = 10**9,
         flaky: tuple[int, ...] = ()):
    """A measurement: memory linear in the batch, speed(b) samples/s, an OOM from `oom_from`,
    and one transient OOM at each size in `flaky`; `calls` records every size asked for."""
    calls: list[int] = []

    def measure(batch_size: int) -> Measurement:
        calls.append(batch_size)
        if batch_size >= oom_from or (batch_size in flaky and calls.count(batch_size) == 1):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return Measurement(bytes_per_sample * batch_size, speed(batch_size))

    measure.calls = calls  # type: ignore[attr-defined]
    return measure


def statuses(result) -> list[tuple[int, int, str]]:
    return [(t.batch_size, t.attempt, t.status) for t in result.trials]


def test_largest_power_of_two_under_the_memory_budget():
    # 1 MiB per sample; limit 300 MiB -> budget 240 MiB: 128 fits, 256 does not
    result = search_batch_size(fake(), memory_limit=300 * MIB, max_size=10_000)
    assert result.batch_size == 128
    assert statuses(result) == [(32, 1, "ok"), (64, 1, "ok"), (128, 1, "chosen"),
                                (256, 1, "over_memory")]
    assert 256 * MIB < 300 * MIB  # it is the headroom that refused 256
    assert 256 * MIB > (1 - HEADROOM) * 300 * MIB


def test_stops_when_throughput_stops_improving():
    saturating = fake(speed=lambda b: 1000.0 * min(b, 64) + b)  # flat above 64
    result = search_batch_size(saturating, memory_limit=10**12, max_size=10_000)
    assert result.batch_size == 64
    assert statuses(result)[-1] == (128, 1, "no_speedup")
    assert saturating.calls == [32, 64, 128]  # 256 never tried


def test_never_above_256_nor_a_tenth_of_the_training_rows():
    """At least MIN_STEPS_PER_EPOCH (10) steps an epoch: 1350 rows get 128, not 256."""
    sizes = {rows: search_batch_size(fake(), memory_limit=10**12, max_size=rows)
             for rows in (10**6, 2560, 2559, 1350, 100, 20)}
    assert {rows: r.batch_size for rows, r in sizes.items()} == {
        10**6: 256, 2560: 256, 2559: 128, 1350: 128, 100: 8, 20: 2}
    assert "leaves >= 10 steps per epoch on 1350 training rows" in sizes[1350].findings[0].message
    assert "fits in memory" in sizes[10**6].findings[0].message  # memory, not data, decided
    assert [f.code for f in sizes[20].findings] == ["batch_size", "batch_size_small"]
    assert "Only 20 training rows" in sizes[20].findings[1].message
    for rows, size in ((1, 1), (3, 2)):  # never above the data; no claim of 10 steps
        tiny = search_batch_size(fake(), memory_limit=10**12, max_size=rows)
        assert tiny.batch_size == size
        assert "as many steps as the rows allow" in tiny.findings[0].message


def test_oom_is_retried_once_then_the_size_counts_as_not_fitting(freed):
    measure = fake(oom_from=128)
    result = search_batch_size(measure, memory_limit=10**12, max_size=10_000)
    assert len(freed) == 2  # memory freed after each OOM, before the retry and after it
    assert result.batch_size == 64
    assert statuses(result) == [(32, 1, "ok"), (64, 1, "chosen"), (128, 1, "oom"),
                                (128, 2, "oom")]
    assert "out of memory" in result.trials[-1].message


def test_a_transient_oom_passes_on_retry():
    result = search_batch_size(fake(flaky=(64,)), memory_limit=10**12, max_size=10_000)
    assert result.batch_size == 256
    assert (64, 1, "oom") in statuses(result) and (64, 2, "ok") in statuses(result)


def test_below_32_halves_and_warns_and_nothing_fitting_is_an_error():
    small = search_batch_size(fake(oom_from=17), memory_limit=10**12, max_size=10_000)
    assert small.batch_size == 16 and "batch_size_small" in [f.code for f in small.findings]
    none = search_batch_size(fake(oom_from=1), memory_limit=10**12, max_size=10_000)
    assert none.batch_size == 0 and none.findings[0].severity is Severity.ERROR
    assert len(none.trials) == 2 * 6  # 32, 16, 8, 4, 2, 1; each tried twice: bounded


def test_the_reason_is_the_trial_that_stopped_the_ladder():
    """Audit s13 T10: "while samples/s still rose" when one size was timed and 32 ran out of
    memory; the reason now comes from the trial of the next size up, with its numbers."""
    oom = search_batch_size(fake(oom_from=17), memory_limit=10**12, max_size=10_000)
    said = oom.findings[0].message
    assert "the next, 32, ran out of memory (2 attempt(s))" in said
    assert "samples/s" not in said.split("Trials:")[0]
    over = search_batch_size(fake(), memory_limit=300 * MIB, max_size=10_000)
    assert "the next, 256, needed 256 MiB, over the 240 MiB that keeps 20% of 300 MiB free" \
        in over.findings[0].message
    flat = search_batch_size(fake(speed=lambda b: 1000.0 * min(b, 64) + b),
                             memory_limit=10**12, max_size=10_000)
    assert "the next, 128, gave 64128 samples/s, under 1.10x the 64064/s of 64" \
        in flat.findings[0].message
    top = search_batch_size(fake(), memory_limit=10**12, max_size=10**6)
    assert "the largest size tried (micro-batches stop at 256" in top.findings[0].message


def test_batch_size_small_names_the_accumulation_settings_and_the_lr():
    """Audit s13 T10: "use gradient accumulation" named no setting and no lr consequence."""
    small = search_batch_size(fake(oom_from=9), memory_limit=10**12, max_size=10_000)
    assert small.batch_size == 8
    fix = next(f.fix for f in small.findings if f.code == "batch_size_small")
    assert "train.batch_size = 32 with train.accumulate_grad_batches = 4" in fix
    assert "measures the lr at that effective batch" in fix


def test_cpu_memory_is_called_an_estimate_not_a_measurement():
    """Audit s13 T9: the CPU peak counts tensors and under-counts process memory 1.5-2.4x,
    yet the finding said "fits in memory" as if measured."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    measure = make_measure(model, nn.functional.cross_entropy, x, y,
                           lambda m: torch.optim.AdamW(m.parameters()))
    assert measure(32).estimated  # the CPU probe's peak is the tensor estimate
    result = search_batch_size(measure, memory_limit=10**12, max_size=64, sizes=(32,))
    said = result.findings[0].message
    assert result.trials[0].estimated and "estimated tensor memory (CPU)" in said
    assert "not measured" in said
    measured = search_batch_size(fake(), memory_limit=10**12, max_size=10**6)
    assert "estimated" not in measured.findings[0].message  # CUDA's allocator peak


def test_an_error_that_is_not_oom_is_not_swallowed():
    def broken(batch_size: int) -> Measurement:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        search_batch_size(broken, memory_limit=10**12, max_size=10_000)


def test_oom_detection_by_type_and_by_message():
    assert is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"))
    assert not is_oom(RuntimeError("expected scalar type Float"))
    assert not is_oom(ValueError("out of memory"))


def test_real_probe_memory_grows_with_the_batch_and_leaves_no_trace():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(64, 4))
    x, y = torch.randn(256, 16), torch.randint(0, 4, (256,))
    before = [t.clone() for t in model.state_dict().values()]
    rng = torch.get_rng_state()
    measure = make_measure(model, nn.CrossEntropyLoss(), x, y,
                           lambda m: torch.optim.AdamW(m.parameters()))
    small, large = measure(32), measure(256)
    assert 0 < small.peak_bytes < large.peak_bytes and small.samples_per_s > 0
    # activations saved for backward: (B, 64) floats at least once -> >= 7 x 224 x 64 x 4 B more
    assert large.peak_bytes - small.peak_bytes >= (256 - 32) * 64 * 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values(), strict=True))
    assert torch.equal(torch.get_rng_state(), rng)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-3)


def _nan_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(outputs, targets) * math.nan


@pytest.mark.parametrize("code,model,loss_fn,rows", [
    ("batch_size_nothing_to_train", _mlp().requires_grad_(False), nn.CrossEntropyLoss(), 512),
    ("batch_size_no_rows", _mlp(), nn.CrossEntropyLoss(), 0),
    ("batch_size_nan_at_start", _mlp(), _nan_loss, 512),
])
def test_the_probes_bad_inputs_are_error_findings_not_a_batch_size(code, model, loss_fn, rows):
    """As the range test and short runs report them (audit s7 #3): before, a frozen model
    raised torch's "does not require grad", 0 rows gave batch 1 at 0 samples/s with a
    warning, and a NaN loss was timed at every size and 256 picked."""
    x, y = torch.randn(512, 8)[:rows], torch.randint(0, 3, (512,))[:rows]
    result = find_batch_size(model, loss_fn, x, y, _adamw, num_rows=rows)
    assert result.batch_size == 0 and [f.code for f in result.findings] == [code]
    assert result.findings[0].severity is Severity.ERROR and "stage" in result.findings[0].fix


def test_x_with_fewer_rows_than_the_sizes_measured_is_refused_with_the_fix():
    """40 rows of a 3000-row set were "measured" as 64 and 128 (x[:128] is 40 rows), with
    the same peak memory, and 64 picked."""
    x, y = torch.randn(40, 8), torch.randint(0, 3, (40,))
    with pytest.raises(TrainwiseError, match=r"x holds 40 rows.*up to 256.*num_rows=len\(x\)"):
        find_batch_size(_mlp(), nn.CrossEntropyLoss(), x, y, _adamw, num_rows=3000)
    whole = find_batch_size(_mlp(), nn.CrossEntropyLoss(), x, y, _adamw, num_rows=40)
    assert [t.batch_size for t in whole.trials] == [4]  # 10 steps an epoch: the fix runs


def test_memory_reads_in_the_unit_that_fits_it():
    """A small model's peak printed as "0 MiB" at every size (audit s7 #14)."""
    assert [format_bytes(n) for n in (512, 133796, 5 * MIB, 3.5 * 2**30)] == [
        "512 B", "131 KiB", "5 MiB", "3.5 GiB"]
    result = search_batch_size(fake(bytes_per_sample=700), memory_limit=2**30, max_size=10**6)
    assert "32: ok 3200/s 21.9 KiB" in result.findings[0].message


def test_cpu_memory_is_the_available_not_the_free_memory(tmp_path, monkeypatch):
    """MemAvailable counts the page cache a new allocation can take; the free pages
    (SC_AVPHYS_PAGES) alone can be a fraction of it on a machine that has read files."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8388608 kB\nMemFree:        1048576 kB\n"
                       "MemAvailable:   5242880 kB\nBuffers:          10240 kB\n")
    monkeypatch.setattr(batch_probe, "MEMINFO", str(meminfo))
    assert memory_limit(torch.device("cpu")) == 5 * 2**30
    monkeypatch.setattr(batch_probe, "MEMINFO", str(tmp_path / "absent"))  # e.g. macOS
    assert memory_limit(torch.device("cpu")) > 0


def test_accumulation_plan_and_the_large_batch_finding():
    plan = accumulation_plan(1024, 256)
    assert (plan["micro_batch_size"], plan["accumulation_steps"]) == (256, 4)
    assert plan["lr_scale_adamw"] == 2.0
    assert accumulation_plan(600, 256)["micro_batch_size"] == 200  # 3 x 200
    two = accumulation_plan(1024, 256, processes=2)  # 512 per process: 2 x 256 each
    assert (two["micro_batch_size"], two["accumulation_steps"]) == (256, 2)
    assert accumulation_steps(1024, 1, configured=1) == 4
    assert accumulation_steps(1024, 4, configured=1) == 1  # 256 per process already
    assert accumulation_steps(200, 1, configured=1) == 1
    assert accumulation_steps(1024, 1, configured=8) == 8  # the user's number is kept
    assert large_batch_finding(256, 100) is None
    finding = large_batch_finding(512, 100)
    assert finding is not None and finding.severity is Severity.INFO
    assert finding.code == "gradient_accumulation" and finding.evidence["accumulation_steps"] == 2
    assert "2 micro-batches of 256" in finding.message
    too_big = large_batch_finding(2048, 100, configured=2)  # 2 x 1024: still above 256
    assert too_big is not None and too_big.severity is Severity.WARNING
    assert "accumulate_grad_batches" in too_big.fix


def test_a_measured_lr_has_no_scale_in_the_evidence():
    """Audit s13 T16: "the lr is measured at this effective batch, so it is used as found"
    beside evidence lr_scale_adamw 1.414, which a script reads as a scale to apply."""
    measured = large_batch_finding(512, 100, schedule="constant")
    assert "used as found" in measured.message
    assert not [k for k in measured.evidence if k.startswith("lr_scale")]
    given = large_batch_finding(512, 100, schedule="constant", lr_measured=False)
    assert given.evidence["lr_scale_adamw"] == pytest.approx(math.sqrt(2))
    assert "x1.4 (AdamW" in given.message


def test_the_finding_states_the_warmup_that_training_applies_and_no_other():
    assert warmup_steps(512, "constant", 1000) == 50 and warmup_steps(512, "cosine", 100) == 10
    assert warmup_steps(512, "onecycle", 1000) == 0  # one-cycle warms up by itself
    assert warmup_steps(256, "constant", 1000) == 0  # no large effective batch
    assert warmup_steps(512, "constant", 5) == 0  # under MIN_WARMUP_RUN steps: no warmup
    configured = large_batch_finding(128, 1000, configured=4, schedule="constant")
    assert configured is not None and "4 micro-batches of 32" in configured.message
    assert "warmup" not in configured.message and configured.evidence["warmup_steps"] == 0
    short = large_batch_finding(512, 5, schedule="constant")
    assert short is not None and "no warmup" in short.message
    two = large_batch_finding(512, 1000, processes=2, schedule="constant")  # 256 a process
    assert two is not None and two.evidence["accumulation_steps"] == 1
    assert "over the first 50 steps" in two.message
    assert large_batch_finding(512, 1000, processes=2, schedule="onecycle") is None
    given = large_batch_finding(1024, 1000, lr_measured=False)
    assert given is not None and "used as given" in given.message and "x2" in given.message


@pytest.mark.parametrize("cosine", [False, True])
def test_warmup_schedule_rises_linearly_then_follows_the_main_schedule(cosine):
    lr, warmup, total = 0.1, 4, 20
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup) \
        if cosine else None
    scheduler = warmup_schedule(optimizer, main, warmup)
    seen = []
    for _ in range(total):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # LinearLR: lr * (1/w + (1 - 1/w) * i / w) for i < w, hand-computed
    assert seen[:warmup] == pytest.approx([lr * (0.25 + 0.75 * i / 4) for i in range(4)])
    after = [lr * (1 + math.cos(math.pi * i / (total - warmup))) / 2 if cosine else lr
             for i in range(total - warmup)]
    assert seen[warmup:] == pytest.approx(after)


def test_a_batch_from_the_config_is_checked_against_the_rows_and_powers_of_two():
    """Audit s8 R9: batch 512 on 1,294 rows (3 steps an epoch) went without a word."""
    [few] = fixed_batch_findings(512, 1294)
    assert few.code == "batch_size_few_steps" and few.severity is Severity.WARNING
    assert few.evidence["steps_per_epoch"] == math.ceil(1294 / 512) == 3
    assert few.evidence["suggested"] == 128 and "train.batch_size = 128" in few.fix
    [odd] = fixed_batch_findings(100, 3600)
    assert odd.code == "batch_size_not_power_of_two" and odd.severity is Severity.INFO
    assert odd.evidence["suggested"] == 128 and "train.batch_size = 128" in odd.message
    [odd] = fixed_batch_findings(200, 1000)  # 256 is nearer, but leaves 4 steps an epoch
    assert odd.evidence["suggested"] == 64  # the largest power of two with >= 10 steps
    assert fixed_batch_findings(64, 544) == []  # the README's churn.toml: 9 steps, quiet
    assert fixed_batch_findings(128, 1294) == []
    assert fixed_batch_findings(128, 12) == []  # too few rows for any advice on steps


def test_a_short_run_gets_a_warmup_that_warms_up_and_is_told_it_is_short():
    """Audit s12 L8: MNIST-1D at batch 512 for 4 epochs is 28 steps; 5% of them was 1 step,
    whose LinearLR starts at the full lr (no warmup at all). Now 10 steps where the run has
    40 or more (5% until 200 steps), else a quarter of the run: 28 -> 7."""
    assert [warmup_steps(512, "constant", n) for n in (9, 10, 28, 40, 100, 200, 1000)] == \
        [0, 2, 7, 10, 10, 10, 50]
    short = large_batch_finding(512, 28, schedule="cosine")
    assert short is not None and short.evidence["warmup_steps"] == 7
    assert "over the first 7 steps, a quarter of this short run" in short.message
    assert "at least 10; train more epochs" in short.message
    enough = large_batch_finding(512, 100, schedule="cosine")
    assert enough is not None and "over the first 10 steps;" in enough.message
    # review s12 VT6: the plan's own warmup ignored the schedule and the batch (batch 128
    # got 7 steps where training runs none); the one warmup is warmup_steps'
    assert "warmup_steps" not in accumulation_plan(512, 256)
    assert warmup_steps(128, "onecycle", 28) == 0 == warmup_steps(128, "constant", 28)
    with pytest.raises(TypeError):
        accumulation_plan(512, 256, 28)  # the dropped num_steps is not read as processes
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = warmup_schedule(optimizer, None, warmup_steps(512, "constant", 28))
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(1 / 7) and seen[7] == pytest.approx(1.0)


class _TwoInputs(nn.Module):
    """_mlp's network reading its 8 features as (x[:, :5], x[:, 5:])."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp()

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(inputs, 1))


def test_several_inputs_count_rows_on_the_first_tensor():
    """(x1, x2) of 256 rows was "2 rows" (len of the tuple) and refused (audit s14 G13)."""
    x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
    result = find_batch_size(_TwoInputs(), nn.CrossEntropyLoss(), (x[:, :5], x[:, 5:]), y,
                             _adamw, num_rows=256)
    assert result.batch_size in (4, 8, 16)  # a tenth of 256 rows at most
    assert all(f.severity is not Severity.ERROR for f in result.findings)
    with pytest.raises(TrainwiseError, match=r"x holds 40 rows"):
        find_batch_size(_TwoInputs(), nn.CrossEntropyLoss(), (x[:40, :5], x[:40, 5:]), y[:40],
                        _adamw, num_rows=3000)
    # every input is sliced to the batch: the (B, 8) cat saved for the backward grows with B
    measure = make_measure(_TwoInputs(), nn.CrossEntropyLoss(), [x[:, :5], x[:, 5:]], y, _adamw)
    small, large = measure(32), measure(256)
    assert large.peak_bytes - small.peak_bytes >= (256 - 32) * 8 * 4 and small.samples_per_s > 0


@pytest.mark.parametrize("norm", [False, True])
def test_batch_norm_is_named_only_in_a_model_that_has_it(norm):
    """An MLP without BatchNorm was told "batch-norm statistics are noisy" and to use
    "GroupNorm/LayerNorm instead of BatchNorm" (audit s14 G15)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), *([nn.BatchNorm1d(16)] if norm else []), nn.ReLU(),
                          nn.Linear(16, 3))
    x, y = torch.randn(40, 8), torch.randint(0, 3, (40,))
    result = find_batch_size(model, nn.CrossEntropyLoss(), x, y, _adamw, num_rows=40)
    small = next(f for f in result.findings if f.code == "batch_size_small")
    said = small.message + small.fix
    assert ("batch-norm" in said and "BatchNorm" in said) is norm
    assert ("BatchNorm" not in said and "batch-norm" not in said) is not norm
    assert "your DataLoader's batch_size" in small.fix  # said for an API caller too
    fit_fix = batch_size._accumulate_fix(8, batch_norm=norm)
    assert "fit(..., accumulate_grad_batches=4)" in fit_fix and ("BatchNorm" in fit_fix) is norm
