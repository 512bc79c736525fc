"""The learning-rate range test: an exponential lr ramp, one step per batch, that leaves no trace.

Run with the FINAL optimizer (same parameter groups and weight decay as training, Smith 2018:
weight decay and lr are coupled), once per seed; every seed starts from the same weights.
Afterwards the model (weights, batch-norm statistics, grads, train/eval modes, requires_grad),
the torch / numpy / python RNGs and the loader's generators are exactly as they were, so
inserting the test before training does not change training (fastai#3013, Lightning#6675).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import RandomSampler, SequentialSampler

from trainwise.config import MIN_NUM_STEPS
from trainwise.findings import Finding, Findings, TrainwiseError, check_fix_terms, warning
from trainwise.train.batch_checks import forward_or_explain
from trainwise.train.evaluate import inputs_and_targets, one_output
from trainwise.train.position import inner_loader
from trainwise.tune.api_terms import in_terms
from trainwise.tune.call_checks import check_batched, check_make_optimizer
from trainwise.tune.lr_verdict import verdict
from trainwise.tune.no_trace import no_trace, probe_loader, seeded
from trainwise.tune.probe_errors import (
    FRESH_OPTIMIZER,
    ProbeStop,
    check_fills_a_batch,
    check_trainable,
    exhausted,
    fresh_optimizer,
    nan_at_start,
    nan_before_rise,
    nan_in_data,
    no_batch,
    non_finite_values,
    scalar_loss,
    wrong_dtype_stop,
)
from trainwise.tune.probe_precision import ProbeSteps
from trainwise.tune.suggest import get_rule

if TYPE_CHECKING:  # Lightning is imported only when a test runs (see _run_seed)
    from lightning_fabric import Fabric
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EMA_BETA = 0.98  # the smoothing fastai and Lightning stop on; ~50-step memory
# A divergence must be confirmed by the raw loss of the next steps: the median of these 5
# (3 of them) above the 4x line. One batch holding a few extreme regression targets jumped the
# loss 30x (0.107 -> 3.93) at step 5 of 100 and lifted the debiased EMA past 4x best on its own
# (audit s14 R2: the test stopped there and chose its start_lr); a true divergence keeps
# climbing, and the curve is cut back to where the smoothed loss crossed, as before.
CONFIRM_STEPS = 5


@dataclass
class LrCurve:
    """One seed's test: the lr of each step, its raw loss and the debiased EMA of it."""

    seed: int
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    diverged: bool = False  # stopped early: smoothed loss > diverge_factor x best (confirmed
    # by the next steps' raw losses, see CONFIRM_STEPS), or non-finite

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "lrs": self.lrs, "losses": _json_floats(self.losses),
                "smoothed": _json_floats(self.smoothed)}

    def __repr__(self) -> str:  # the points are in .lrs / .losses / .smoothed
        span = f", lrs={self.lrs[0]:.3g}..{self.lrs[-1]:.3g}" if self.lrs else ""
        return (f"LrCurve(seed={self.seed}, points={len(self.lrs)}{span}, "
                f"diverged={self.diverged})")


@dataclass
class LrRangeResult:
    """The verdict over all seeds; `lr` is meant as the PEAK lr of a one-cycle schedule."""

    lr: float
    lr_low: float
    lr_high: float
    spread_decades: float  # log10(max / min) of the per-seed suggestions
    rule: str
    curves: list[LrCurve] = field(default_factory=list)
    suggestions: list[float] = field(default_factory=list)  # per seed, by `rule`
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a notebook shows .findings as a table, as RunResult's (review s16 VN7)
        self.findings = Findings(self.findings)

    def __repr__(self) -> str:
        """A summary: repr of the whole result printed every point of every curve; the curves
        stay in .curves (and .to_dict()), the messages in .findings."""
        return (f"LrRangeResult(lr={self.lr:.3g}, range={self.lr_low:.3g}..{self.lr_high:.3g}"
                f", spread_decades={self.spread_decades:.2f}, rule={self.rule!r}, seeds="
                f"{[c.seed for c in self.curves]}, points={[len(c.lrs) for c in self.curves]}"
                f", findings={[f.code for f in self.findings]})")

    def plot(self, ax: Axes | None = None) -> Figure | Axes:
        """The report's figure of this test: loss against lr per seed (raw faint, bold the
        level the rule reads its point and range off), the suggested range shaded and the
        suggested lr marked. Without `ax`: a new matplotlib Figure, made without pyplot
        (shown once when it ends a notebook cell; `.savefig("lr.png")` writes it). With
        `ax`: drawn there and that Axes returned, as pandas' df.plot(ax=ax) does: returning
        a pyplot figure drew it twice in a notebook (audit s16 N21)."""
        from trainwise.reporting.lr_range import lr_range_figure  # matplotlib only when asked

        fig = lr_range_figure(self.to_dict(), ax=ax)
        return fig if ax is None else ax

    def to_dict(self) -> dict[str, Any]:
        """lr_range.json (notes/FORMATS.md); non-finite numbers become null."""
        lr, low, high, spread = _json_floats([self.lr, self.lr_low, self.lr_high,
                                              self.spread_decades])
        return {"curves": [c.to_dict() for c in self.curves], "lr": lr, "lr_low": low,
                "lr_high": high, "spread_decades": spread, "rule": self.rule}


def exponential_ramp(start_lr: float, end_lr: float, num_steps: int) -> list[float]:
    """lrs[0] == start_lr, lrs[-1] == end_lr, a constant ratio between steps."""
    return [float(v) for v in np.geomspace(start_lr, end_lr, num_steps)]


def lr_range_test(model: nn.Module, loss_fn: Callable[..., torch.Tensor], loader: Iterable,
                  make_optimizer: Callable[[nn.Module], torch.optim.Optimizer], *,
                  start_lr: float = 1e-6, end_lr: float = 1.0, num_steps: int = 100,
                  seeds: Sequence[int] = (0, 1, 2), diverge_factor: float = 4.0,
                  rule: str = "trainwise", accumulate: int = 1,
                  fabric: Fabric | None = None,
                  on_seed_end: Callable[[int], Any] | None = None,
                  schedule: str = "onecycle", fix_terms: str = "api",
                  _checked: bool = False) -> LrRangeResult:
    """Ramp the lr from start_lr to end_lr over num_steps batches per seed; suggest by `rule`.

    `make_optimizer(model)` builds the training optimizer, fresh for each seed; each group's
    lr follows the ramp times its ratio to the largest group lr. A seed sets the data order,
    dropout and any augmentation; every seed starts from the model's current weights. By
    default 3 seeds, as `trainwise find-lr` (tune.num_seeds): a range and its spread (one
    seed's point can be 2x off; `spread_decades` and the lr_range_unstable warning say how far
    the seeds disagree). `loader`: a DataLoader or another re-iterable of (x, y) batches, at
    least one batch of data; num_steps >= 10 (as tune.num_steps).
    Result: `lr` is the one-cycle PEAK (median over seeds of `rule`'s pick), `lr_low` ..
    `lr_high` the range for the short-run search (always from our rule). `accumulate` splits
    each batch into that many micro-batches whose gradients add up to the batch's (as the
    training loop does above MAX_MICRO_BATCH): the same step with less memory for models
    without batch-dependent layers; BatchNorm normalises each micro-batch with its own
    statistics (64 rows as 4 x 16 moved the point 0.0705 -> 0.0534). `fabric`: training's
    Fabric, whose precision the steps take (autocast; under "16-mixed" a copy of its loss
    scaler per seed, so its own is left as found). Errors (a NaN/inf loss that is no
    divergence, nothing to train, no batch, data smaller than a batch, a used-up iterator)
    come back as error findings, with `lr` nan; bad arguments raise. `on_seed_end(seed)` is
    called as each seed's ramp ends (a progress bar's hook). `schedule`: the training
    schedule ("onecycle", "cosine", "constant"; "" names none) the summary says the point is for.
    `fix_terms`: "api" (the default) says the findings' fixes with this call's levers (the
    DataLoader's batch_size, num_steps=, seeds=(0, 1, 2)); "config" with `trainwise run`'s
    config keys (tune.num_steps), as the recipe's find-lr stage asks. `_checked`: tune_lr
    checked make_optimizer and the loader already (not read twice; review s16 VN9).
    """
    get_rule(rule)  # an unknown name fails before any work
    check_fix_terms(fix_terms)
    seeds = tuple(seeds)
    _check_arguments(start_lr, end_lr, num_steps, seeds, diverge_factor)
    if not _checked:
        check_make_optimizer(make_optimizer, "make_optimizer(model)")
        check_batched(loader, "loader")
    lrs = exponential_ramp(start_lr, end_lr, num_steps)
    curves: list[LrCurve] = []
    try:
        check_trainable(model, "lr_range_nothing_to_train")
        _check_builds_anew(make_optimizer, model)
        check_fills_a_batch(loader, "lr_range_data_smaller_than_batch")
        with no_trace(model, loader) as snapshot:
            unbatched = _one_sample_per_step(loader)  # reads an item: inside no_trace
            for seed in seeds:
                curves.append(_run_seed(model, loss_fn, loader, make_optimizer, lrs, seed,
                                        diverge_factor, accumulate, fabric))
                snapshot.restore_model()  # every seed starts from the same weights
                if on_seed_end is not None:
                    on_seed_end(seed)
    except ProbeStop as stop:
        nan = math.nan
        return LrRangeResult(nan, nan, nan, nan, rule, curves,
                             findings=in_terms([stop.finding], "find_lr", fix_terms))
    v = verdict(curves, rule, schedule)
    return LrRangeResult(v.lr, v.lr_low, v.lr_high, v.spread_decades, rule, curves,
                         v.suggestions, in_terms(v.findings + unbatched, "find_lr", fix_terms))


def _one_sample_per_step(loader: Iterable) -> list[Finding]:
    """A warning when batch_size=None turned the DataLoader's batching off and an item's
    target is one value: each step then trains on a single sample. (A data set whose items
    are whole batches, the other use of batch_size=None, has targets with a batch axis.)"""
    inner = inner_loader(loader)
    dataset = getattr(inner, "dataset", None)
    if not hasattr(inner, "batch_size") or inner.batch_size is not None \
            or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__") \
            or len(dataset) == 0:
        return []
    if not isinstance(getattr(inner, "sampler", None), (SequentialSampler, RandomSampler)):
        return []  # a sampler of its own may yield whole batches of indices (trainwise's do)
    try:
        _, target = inputs_and_targets(dataset[0])
    except TrainwiseError:
        return []  # the ramp says what a batch must be
    if np.ndim(target.detach().cpu() if torch.is_tensor(target) else target) != 0:
        return []
    return [warning(
        "tune", "lr_range_one_sample_per_step",
        "The loader has batch_size=None, which turns the DataLoader's batching off: each "
        "range-test step trained on one sample, so the lr found is for one sample per step.",
        "Pass a DataLoader with the batch_size you train with (e.g. batch_size=32); keep "
        "batch_size=None only if you train one sample per step.")]


def _check_builds_anew(make_optimizer: Callable[[nn.Module], Any], model: nn.Module) -> None:
    """The test trains the user's own model, so an optimizer over its parameters is no sign
    of a stray one; the same object from two calls is: the user's optimizer, handed back,
    which the ramp would leave at end_lr with moments it never earned."""
    first = fresh_optimizer(make_optimizer(model), model)
    if make_optimizer(model) is first:
        raise TrainwiseError("make_optimizer returned the same optimizer object twice: the "
                             "range test would change it (its lr and moments). "
                             + FRESH_OPTIMIZER)


def _check_arguments(start_lr, end_lr, num_steps, seeds, diverge_factor) -> None:
    if not 0 < start_lr < end_lr:
        raise TrainwiseError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}; "
                             "the default 1e-6 .. 1.0 covers AdamW on most tasks.")
    if num_steps < MIN_NUM_STEPS:
        raise TrainwiseError(f"num_steps={num_steps} is too few to see a curve; use >= "
                             f"{MIN_NUM_STEPS} (100 is the default: ~16 steps per decade over "
                             "1e-6 .. 1).")
    if len(seeds) == 0:
        raise TrainwiseError("seeds is empty; pass at least one seed, e.g. seeds=(0, 1, 2).")
    if diverge_factor <= 1:
        raise TrainwiseError(f"diverge_factor={diverge_factor} must be > 1 (default 4.0).")


def _run_seed(model, loss_fn, loader, make_optimizer, lrs, seed, diverge_factor,
              accumulate, fabric=None) -> LrCurve:
    from trainwise.train.loop import cheap_cuda_checks  # imports Lightning: only when run

    device = next(model.parameters()).device
    with seeded(seed, loader, device), cheap_cuda_checks(device):  # as the training loop
        optimizer = fresh_optimizer(make_optimizer(model), model)  # per seed, then dropped
        batches = _batches(probe_loader(loader))  # persistent workers: fresh ones per seed
        try:
            with torch.enable_grad():
                return _ramp(model, loss_fn, batches, optimizer, lrs, seed, diverge_factor,
                             device, accumulate, ProbeSteps(fabric, device))
        finally:
            batches.close()  # shuts down the loader's workers, if any, now


def _ramp(model, loss_fn, batches, optimizer, lrs, seed, diverge_factor, device,
          accumulate=1, probe: ProbeSteps | None = None) -> LrCurve:
    probe = probe or ProbeSteps(None, device)
    base = [group["lr"] for group in optimizer.param_groups]
    ratios = [b / max(base) if max(base) > 0 else 1.0 for b in base]
    curve = LrCurve(seed, [], [], [])
    model.train()
    avg, best = 0.0, math.inf
    watch = _DivergenceWatch(diverge_factor)
    for step, lr in enumerate(lrs):
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            group["lr"] = ratio * lr
        batch = next(batches)
        if accumulate > 1:  # the gradient is accumulated here, before the checks below
            optimizer.zero_grad(set_to_none=True)
            loss = _accumulated(model, loss_fn, batch, device, step, accumulate, probe)
        else:
            loss = _loss(model, loss_fn, batch, device, step, probe)
        value = float(loss.detach())
        curve.lrs.append(lr)
        curve.losses.append(value)
        if not math.isfinite(value):
            if not watch.pending():  # pending: a climb already crossed the 4x line
                _stop_unless_divergence(curve, batch, step)
            curve.smoothed.append(math.nan)
            watch.cut(curve)
            break
        avg = EMA_BETA * avg + (1 - EMA_BETA) * value
        curve.smoothed.append(avg / (1 - EMA_BETA ** (step + 1)))
        best = min(best, curve.smoothed[-1])
        if accumulate == 1:
            optimizer.zero_grad(set_to_none=True)
            probe.backward(loss)
        probe.step(optimizer)
        if watch.confirmed(curve, best):
            break
    watch.finish(curve)
    return curve


@dataclass
class _DivergenceWatch:
    """The stop rule: the smoothed loss crosses factor x best (fastai/Lightning), then the
    median raw loss of the next CONFIRM_STEPS steps is above that line too (a lone spike's
    neighbours are not). A confirmed divergence cuts the curve back to the crossing it
    confirmed: when the first crossing is, the curve ends where the unconfirmed rule stopped
    it. A rejected crossing (the median of its next steps under the line) is forgotten, and a
    later crossing, CONFIRM_STEPS or more steps on, becomes the cut point: a noisy divergence
    alternating rising and floor batches kept 5 more points at higher lrs (58 against the
    unconfirmed rule's 53; review s14 VT11)."""

    factor: float
    crossed: int | None = None  # the curve's length at the crossing
    best: float = math.inf  # best smoothed loss at the crossing

    def pending(self) -> bool:
        return self.crossed is not None

    def confirmed(self, curve: LrCurve, best: float) -> bool:
        if self.crossed is None:
            if _diverged(curve.smoothed[-1], best, curve.smoothed[0], self.factor):
                self.crossed, self.best = len(curve.losses), best
            return False
        after = curve.losses[self.crossed:]
        if len(after) < CONFIRM_STEPS:
            return False
        if self._above(curve, after):
            self.cut(curve)
            return True
        self.crossed = None  # a spike: go on, and look again from this step
        return self.confirmed(curve, best)

    def finish(self, curve: LrCurve) -> None:
        """The ramp ended while a crossing waited: confirmed on the steps there were."""
        if self.crossed is not None and not curve.diverged:
            after = curve.losses[self.crossed:]
            if not after or self._above(curve, after):
                self.cut(curve)

    def cut(self, curve: LrCurve) -> None:
        """Mark the curve diverged; cut it back to the crossing when one was pending."""
        if self.crossed is not None:
            for points in (curve.lrs, curve.losses, curve.smoothed):
                del points[self.crossed:]
        curve.diverged = True

    def _above(self, curve: LrCurve, after: list[float]) -> bool:
        level = float(np.median(after))
        return _diverged(level, self.best, curve.smoothed[0], self.factor)


def _stop_unless_divergence(curve: LrCurve, batch: Any, step: int) -> None:
    """Raise the error finding for a non-finite loss that no learning rate explains: at the
    first step (before any update), on a batch that holds NaN/inf itself, or out of a loss
    that was not climbing. A divergence climbs first: of 192 range tests pushed to lr 1e8
    with the 4x stop off (digits; MLP, BN, deep tanh; SGD, momentum, Adam, AdamW; CE, MSE),
    each of the 25 that met a NaN had climbed over several steps to >= 1e12 x its best."""
    value, lr = curve.losses[-1], curve.lrs[-1]
    if step == 0:
        raise nan_at_start("lr_range_nan_at_start", value, lr)
    counts = non_finite_values(batch)  # cheap, and decisive: checked at any lr
    if counts:
        raise nan_in_data("lr_range_nan_in_data", value, step, lr, counts)
    if not _climbing(curve.losses[:-1]):
        raise nan_before_rise("lr_range_nan_before_rise", value, step, lr)


def _climbing(finite: Sequence[float]) -> bool:
    """The last finite loss is the highest so far (so the smoothed loss, an average of them,
    is above its minimum too). At the flat start a noisy batch does this by chance (1 in k
    after k steps): that case falls back to divergence, the verdict before this check."""
    return len(finite) >= 2 and finite[-1] > max(finite[:-1])


def _diverged(smoothed: float, best: float, first: float, factor: float) -> bool:
    """smoothed > factor x best, as fastai/Lightning; a loss that reaches 0 or below (e.g. a
    Gaussian NLL) uses factor x (its drop + |best|) above best instead, which stays > 0."""
    if best > 0:
        return smoothed > factor * best
    scale = (first - best) + abs(best)
    return scale > 0 and smoothed > best + (factor - 1) * scale


def _loss(model, loss_fn, batch, device, step, probe: ProbeSteps) -> torch.Tensor:
    x, y = _pair(batch, device)
    # check's inputs_wrong_dtype, as an error finding
    output = forward_or_explain(model, x, lambda inputs: probe.forward(model, inputs),
                                explain=wrong_dtype_stop)
    return scalar_loss(loss_fn(one_output(output), y), step)


def _accumulated(model, loss_fn, batch, device, step, accumulate,
                 probe: ProbeSteps) -> torch.Tensor:
    """The batch's mean loss (detached), its gradient accumulated over `accumulate`
    micro-batches weighted by their share of the batch."""
    from trainwise.train.loop import micro_batches  # the training loop's own split

    x, y = _pair(batch, device)
    total = torch.zeros((), device=device)
    for x_i, y_i, weight, _ in micro_batches(x, y, accumulate):
        loss = _loss(model, loss_fn, (x_i, y_i), device, step, probe) * weight
        probe.backward(loss)
        total += loss.detach()
    return total


def _pair(batch, device) -> tuple[Any, Any]:
    """(inputs, targets) of a batch, on `device` (those that are tensors)."""
    x, y = (t.to(device, non_blocking=True) if torch.is_tensor(t) else t
            for t in inputs_and_targets(batch))
    return x, y


def _batches(loader: Iterable) -> Iterator:
    """Cycle through the loader (a short loader restarts, Lightning#5044); stop with an error
    finding when a whole pass yields nothing: a used-up iterator, or an empty loader."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty and isinstance(loader, Iterator):  # iter(it) is it: no second pass
            raise exhausted("lr_range_loader_exhausted", loader)
        if empty:
            raise no_batch("lr_range_no_batch", loader)


def _json_floats(values: Sequence[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]
