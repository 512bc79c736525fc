"""Batch size by evidence: the largest power of two that fits memory with headroom while the
throughput (samples per second) still rises; never a micro-batch above 256.

Why not the anchors' way (tuning_anchors.md §3-4): Lightning's `power` mode doubles until an
OOM and keeps a size it never re-checked (Lightning#8028: "OOM error after using
scale_batch_size()"), never measures speed, and ends on non-powers of two; accelerate only
shrinks by 0.9 (23 tries from 128 to 8). Here every size is a full forward/backward/step
(so the size kept is the size verified), peak memory is compared with a budget that keeps
HEADROOM free, throughput must still improve, an OOM is retried a bounded number of times,
and every trial is logged. The measurement is injected, so the search itself is pure.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from trainwise.findings import Finding, error, info, warning
from trainwise.train.large_batch_rules import MAX_MICRO_BATCH  # also the Monitor's

SIZES = (32, 64, 128, 256)  # METHOD.md §4: powers of two, 32/64/128 preferred
HEADROOM = 0.2  # keep 20% of the memory free: evaluation, fragmentation of the caching
# allocator and longer samples later need it (the found size OOMs later: Lightning#8028)
# Two thresholds on steps an epoch, on purpose: a batch trainwise picks itself (tune.batch_size
# = "auto", or the default cut to a small table) leaves >= MIN_STEPS_PER_EPOCH; a batch the
# user set is only warned about below FEW_STEPS_PER_EPOCH, since 10 is a preference and as a
# warning it would flag the README's own churn.toml (9 steps). Both name fitted_batch's size.
FEW_STEPS_PER_EPOCH = 4  # 1-3 steps an epoch is near full-batch training
MIN_STEPS_PER_EPOCH = 10  # a batch above rows/10 leaves too few steps per epoch for the
# schedule and the short runs (a new user's 1350 MNIST-1D rows got 256: 5 steps an epoch, each
# short run ~10 steps, validation loss 1.36 where 128 gave 0.60)
MIN_FITTED_BATCH = 32  # a fitted batch stops here, where tune.batch_size = "auto" starts (SIZES,
# METHOD.md §4: 32/64/128 preferred): at 16 the range test's 30-100 steps read a loss too noisy
# to place the lr (test_recipe's 300-row table at batch 16 took lr 0.39 and its loss
# exploded), and on a table this small a step more per epoch buys less than a steadier gradient
MIN_SPEEDUP = 1.10  # doubling the batch halves the steps per epoch; it must buy >= 10% more
# samples/s to be worth that (playbook: only batch sizes up to where throughput stops rising)
MAX_RETRIES = 1  # an OOM is retried once after gc + empty_cache (a fragmented cache can
# fail once and pass after emptying), then the size counts as not fitting
# The CPU has no resettable peak (ru_maxrss only grows), so batch_probe counts the tensors a
# step holds; a small conv net on 48x48 images grew the process's max RSS 1.5-2.4x more
# (bs 256: 158 MiB counted, 381 MiB RSS; audit s13 T9): backward temporaries, input-grad
# buffers and the allocator's overhead are not counted, and 20% headroom cannot absorb that.
ESTIMATE_NOTE = ("Memory here is an estimate of the tensors a step holds (parameters, "
                 "gradients, optimizer state, the batch, saved activations), not measured: "
                 "the process used 1.5-2.4x more in a conv net; on a tight machine train at "
                 "the next smaller size (your DataLoader's batch_size; for `trainwise run`, "
                 "train.batch_size with tune.batch_size = \"fixed\")")
_OOM_TEXT = ("out of memory", "DefaultCPUAllocator: can't allocate memory",
             "CUDNN_STATUS_NOT_SUPPORTED")


@dataclass
class Measurement:
    peak_bytes: int  # peak memory of one training step at this batch size
    samples_per_s: float
    estimated: bool = False  # CPU: the tensors a step holds, not process memory (batch_probe)


@dataclass
class Trial:
    batch_size: int
    attempt: int  # 1, then 2.. for retries after an OOM
    status: str  # "ok", "oom", "over_memory", "no_speedup", "chosen"
    peak_bytes: int | None = None
    samples_per_s: float | None = None
    message: str = ""
    estimated: bool = False  # peak_bytes is the CPU estimate of tensor memory


@dataclass
class BatchSizeResult:
    batch_size: int  # the micro-batch to train with; 0 when none fits
    memory_limit: int  # bytes the trials could use before headroom
    trials: list[Trial] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """tune.json's "batch_size" entry."""
        return {"mode": "auto", "chosen": self.batch_size, "memory_limit": self.memory_limit,
                "headroom": HEADROOM, "trials": [asdict(t) for t in self.trials]}


def is_oom(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, or the allocator messages Lightning/accelerate match."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc) for t in _OOM_TEXT)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _measure(measure: Callable[[int], Measurement], size: int,
             trials: list[Trial]) -> Measurement | None:
    """One size, retried after an OOM up to MAX_RETRIES times; every attempt logged."""
    for attempt in range(1, MAX_RETRIES + 2):
        try:
            result = measure(size)
        except Exception as exc:  # only OOM is expected; anything else is a real bug
            if not is_oom(exc):
                raise
            trials.append(Trial(size, attempt, "oom", message=str(exc).splitlines()[0][:200]))
            _free_memory()
            continue
        trials.append(Trial(size, attempt, "ok", result.peak_bytes, result.samples_per_s,
                            estimated=result.estimated))
        return result
    return None


def search_batch_size(measure: Callable[[int], Measurement], *, memory_limit: int,
                      max_size: int, sizes: tuple[int, ...] = SIZES,
                      batch_norm: bool = False) -> BatchSizeResult:
    """Try `sizes` upwards (none above MAX_MICRO_BATCH or data_limit(max_size), max_size being
    the training rows); keep the last that fits under (1 - HEADROOM) x memory_limit and was
    >= MIN_SPEEDUP faster than the one before. When even the smallest fails, halve below it
    down to 1. `batch_norm`: the model has BatchNorm layers, whose statistics a small batch
    makes noisy (the findings say so only then)."""
    budget = (1 - HEADROOM) * memory_limit
    trials: list[Trial] = []
    chosen, last_speed = 0, 0.0
    limit, ladder = size_limit(max_size), sizes_to_try(max_size, sizes)
    for size in ladder:
        result = _measure(measure, size, trials)
        if result is None or result.peak_bytes > budget:
            if result is not None:
                trials[-1].status = "over_memory"
            break
        if chosen and result.samples_per_s < MIN_SPEEDUP * last_speed:
            trials[-1].status = "no_speedup"
            break
        chosen, last_speed = size, result.samples_per_s
    if not chosen:
        chosen = _below(measure, ladder[0], budget, trials)
    by_data = chosen == ladder[-1] and limit < min(max(sizes), MAX_MICRO_BATCH)
    return _result(chosen, memory_limit, trials, max_size if by_data else None, batch_norm)


def size_limit(max_size: int) -> int:
    """The largest size the search may try on `max_size` training rows."""
    return min(data_limit(max_size), MAX_MICRO_BATCH, max(1, max_size))


def sizes_to_try(max_size: int, sizes: tuple[int, ...] = SIZES) -> list[int]:
    """The sizes search_batch_size measures upwards: `sizes` up to size_limit(max_size), or
    that limit alone (halving below the first comes only when it does not fit)."""
    limit = size_limit(max_size)
    return [s for s in sizes if s <= limit] or [limit]


def fixed_batch_findings(batch_size: int, num_rows: int) -> list[Finding]:
    """What METHOD.md §4 says of a batch size taken from the config as it is (tune.batch_size
    = "fixed"): too few steps an epoch is a warning, a size that is not a power of two an
    info. The size is the user's: nothing here changes it. The size suggested is the one the
    default would be cut to (fitted_batch), at most 128; a batch no larger is not warned about,
    as trainwise would pick it itself."""
    fits = min(fitted_batch(num_rows), 128)  # 32-128 preferred
    steps = math.ceil(num_rows / batch_size)
    if (num_rows >= 2 * MIN_STEPS_PER_EPOCH and steps < FEW_STEPS_PER_EPOCH
            and batch_size > fits):
        return [warning(
            "tune", "batch_size_few_steps",
            f"Batch {batch_size} on {num_rows:,} training rows gives {steps} optimizer step(s) "
            f"an epoch: too few updates per pass over the data for the loss to settle, and the "
            "range test and short runs see only a few batches.",
            f"Set train.batch_size = {fits} (a power of two with >= {MIN_STEPS_PER_EPOCH} steps "
            "an epoch), or tune.batch_size = \"auto\" to measure it.",
            batch_size=batch_size, steps_per_epoch=steps, suggested=fits)]
    if batch_size & (batch_size - 1):
        nearest = min(2 ** round(math.log2(batch_size)), fits)  # never past what the rows allow
        return [info(
            "tune", "batch_size_not_power_of_two",
            f"Batch {batch_size} is not a power of two; 32, 64 or 128 are the usual choices "
            "(METHOD.md §4), and on a GPU they fill its kernels' tiles evenly. Keep it if you "
            f"chose it on purpose; else set train.batch_size = {nearest}.",
            batch_size=batch_size, steps_per_epoch=steps, suggested=nearest)]
    return []


def fitted_batch(num_rows: int) -> int:
    """The batch for `num_rows` training rows when trainwise chooses it from the rows alone:
    the largest power of two leaving MIN_STEPS_PER_EPOCH steps an epoch (data_limit), but
    never below MIN_FITTED_BATCH. The default batch is cut to it (default_batch.py), and the
    few-steps warning suggests it."""
    return max(MIN_FITTED_BATCH, data_limit(num_rows))


def data_limit(num_rows: int) -> int:
    """The largest power of two that leaves MIN_STEPS_PER_EPOCH steps per epoch on `num_rows`
    training rows; at least 2 (batch norm needs two samples)."""
    return max(2, power_of_two_at_most(num_rows // MIN_STEPS_PER_EPOCH))


def power_of_two_at_most(n: int) -> int:
    """The largest power of two <= n (1 for n <= 1)."""
    return 1 << (max(1, int(n)).bit_length() - 1)


def _below(measure: Callable[[int], Measurement], size: int, budget: float,
           trials: list[Trial]) -> int:
    """Halve below the smallest preferred size until one fits (at most log2(size) tries)."""
    while size > 1:
        size //= 2
        result = _measure(measure, size, trials)
        if result is not None and result.peak_bytes <= budget:
            return size
        if result is not None:
            trials[-1].status = "over_memory"
    return 0


def _result(chosen: int, memory_limit: int, trials: list[Trial],
            data_rows: int | None = None, batch_norm: bool = False) -> BatchSizeResult:
    """`data_rows`: set when the training rows, not memory or speed, capped the size."""
    result = BatchSizeResult(chosen, memory_limit, trials)
    for trial in reversed(trials):
        if trial.batch_size == chosen and trial.status == "ok":
            trial.status = "chosen"
            break
    log = ", ".join(f"{t.batch_size}: {t.status}"
                    + (f" {t.samples_per_s:.0f}/s {format_bytes(t.peak_bytes)}"
                       if t.samples_per_s is not None and t.peak_bytes is not None else "")
                    for t in trials)
    if not chosen:
        result.findings.append(error(
            "tune", "batch_size_none_fits",
            f"No batch size fits in memory ({format_bytes(memory_limit)}, keeping "
            f"{HEADROOM:.0%} free); trials: {log}.",
            "Use a smaller model or shorter inputs (stage 'model'), or a device with more "
            "memory.", trials=[asdict(t) for t in trials]))
        return result
    steps = f">= {MIN_STEPS_PER_EPOCH} steps" if data_rows is not None and \
        data_rows >= 2 * MIN_STEPS_PER_EPOCH else "as many steps as the rows allow"
    why = (f"the largest power of two that leaves {steps} per epoch on {data_rows} training "
           f"rows (and fits in memory with {HEADROOM:.0%} headroom)"
           if data_rows is not None else _why_stopped(chosen, memory_limit, trials))
    if any(t.estimated for t in trials):
        why = why.replace("in memory", "in estimated tensor memory (CPU)")
        log += f". {ESTIMATE_NOTE}"
    result.findings.append(info(
        "tune", "batch_size", f"Batch size {chosen}: {why}. Trials: {log}.",
        batch_size=chosen, trials=[asdict(t) for t in trials]))
    if chosen < SIZES[0]:
        result.findings.append(_small(chosen, steps, data_rows, batch_norm))
    return result


def _small(chosen: int, steps: str, data_rows: int | None, batch_norm: bool) -> Finding:
    """batch_size_small; batch-norm is named only in a model that has it (audit s14 G15)."""
    noisy = ("batch-norm statistics are noisy below ~16-32" if batch_norm else
             f"the gradient of {chosen} samples is noisy")
    if data_rows is None:
        return warning("tune", "batch_size_small", f"Only a batch of {chosen} fits; {noisy}.",
                       _accumulate_fix(chosen, batch_norm), batch_size=chosen,
                       batch_norm=batch_norm)
    norms = "GroupNorm/LayerNorm instead of BatchNorm, or " if batch_norm else ""
    return warning("tune", "batch_size_small",
                   f"Only {data_rows} training rows: batches of {chosen} keep {steps} per "
                   f"epoch, and {noisy}.",
                   f"More data if you can; otherwise {norms}trade steps for a larger batch: "
                   "your DataLoader's batch_size (for `trainwise run`, "
                   "train.batch_size with tune.batch_size = \"fixed\").",
                   batch_size=chosen, batch_norm=batch_norm)


def _why_stopped(chosen: int, memory_limit: int, trials: list[Trial]) -> str:
    """Why the ladder stopped at `chosen`, from the trial of the next size up: it read "while
    samples/s still rose" when one size was timed and 32 ran out of memory (audit s13 T10)."""
    above = [t for t in trials if t.batch_size > chosen]
    if not above:  # every size tried fitted and sped up
        timed = "" if len(trials) == 1 else (
            f", and samples/s rose by >= {MIN_SPEEDUP - 1:.0%} at each doubling")
        return (f"the largest size tried (micro-batches stop at {MAX_MICRO_BATCH}; above it, "
                f"gradient accumulation); it fits in memory with {HEADROOM:.0%} headroom{timed}")
    stop = [t for t in above if t.batch_size == min(a.batch_size for a in above)][-1]
    if stop.status == "oom":
        return (f"the largest power of two that ran; the next, {stop.batch_size}, ran out of "
                f"memory ({stop.attempt} attempt(s))")
    if stop.status == "over_memory" and stop.peak_bytes is not None:
        return (f"the largest power of two that fits; the next, {stop.batch_size}, needed "
                f"{format_bytes(stop.peak_bytes)}, over the "
                f"{format_bytes((1 - HEADROOM) * memory_limit)} that keeps {HEADROOM:.0%} of "
                f"{format_bytes(memory_limit)} free")
    before = next(t for t in trials if t.batch_size == chosen and t.status == "chosen")
    return (f"the largest power of two that still sped up; the next, {stop.batch_size}, gave "
            f"{stop.samples_per_s:.0f} samples/s, under "
            f"{MIN_SPEEDUP:.2f}x the {before.samples_per_s:.0f}/s of {chosen}: a doubling that "
            "halves the steps per epoch must buy more speed")


def _accumulate_fix(chosen: int, batch_norm: bool) -> str:
    """A fix with the settings and their numbers: "use gradient accumulation" named neither
    the key nor what it does to the lr (audit s13 T10); said for fit and for `trainwise run`."""
    k = max(2, SIZES[0] // chosen)
    norms = (" Accumulation does not steady batch-norm's statistics (each micro-batch of "
             f"{chosen} is normalised alone): for those use GroupNorm/LayerNorm instead of "
             "BatchNorm, or a smaller model.") if batch_norm else ""
    return (f"For a steadier gradient accumulate {k} micro-batches of {chosen}: a DataLoader "
            f"batch_size of {chosen * k} with fit(..., accumulate_grad_batches={k}); for "
            f"`trainwise run`, set train.batch_size = {chosen * k} with "
            f"train.accumulate_grad_batches = {k} and tune.batch_size = \"fixed\": the tune "
            "stage measures the lr at that effective batch, so it needs no scaling." + norms)


def format_bytes(size: float) -> str:
    """3 significant digits in the largest binary unit below the size: a small model's peak
    is kilobytes (it printed as "0 MiB"), a large one's gigabytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"
