"""Short real runs: a few peak lrs from the range test's range, each trained briefly with the
real loop and schedule, and an lr chosen from their validation losses (refine; ties and no
learning: short_run_noise / short_run_learning) (METHOD.md §4).

Every candidate trains a deep copy of the same initial model, on the same data order and
dropout draws (common random numbers: the candidates differ by their lr only, so a small
difference in validation loss is the lr's and not the seed's). The range widens by one grid
step when the best candidate sits at an edge (the playbook's "best point on the boundary"),
a bounded number of times. The user's model, RNGs and loader generators are left as found.

At a constant lr (`tail_evals` > 1) a candidate is scored by the median of several validation
losses spread over its last epoch instead of the last one alone: there the weights keep
moving in the noise of a fixed step, more so the higher the lr, so one evaluation is one noisy
sample and the lowest of single samples favours high lrs (see TAIL_EVALS in search.py).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.findings import Finding, TrainwiseError
from trainwise.train.evaluate import batch_outputs
from trainwise.train.fit_inputs import schedule_in_steps
from trainwise.train.fit_task import loss_rules_checked
from trainwise.train.loop import fit, model_device
from trainwise.train.sharding import (
    loss_across_ranks,
    num_steps_per_epoch,
    predictions_across_ranks,
    setup_loader,
)
from trainwise.tune.candidates import MIN_SPAN, beyond_edge, candidate_lrs
from trainwise.tune.no_trace import no_trace, probe_loader, seeded
from trainwise.tune.probe_errors import (
    ProbeStop,
    check_trainable,
    fresh_optimizer,
    nan_at_start,
)
from trainwise.tune.short_run_confirm import SECOND_ORDER, confirm_top, top_needs_confirming
from trainwise.tune.short_run_inputs import (
    check_batches,
    check_per_step,
    check_sized,
    same_values,
)
from trainwise.tune.short_run_learning import check_learning, learned, start_loss
from trainwise.tune.short_run_noise import (
    MAX_NOISE_ROWS,
    SMALL_VAL_ROWS,
    flat,
    row_losses,
    settle_within_noise,
    val_row_count,
)
from trainwise.tune.short_run_result import Candidate, ShortRunResult, lr_loss_pairs, verdict

LR_NO_EFFECT = 1e-9  # relative difference of the candidates' losses below which the lr made
# no difference (bit-identical runs differ by 0; 1e-9 leaves room for a reduction's order)

MakeOptimizer = Callable[[nn.Module, float], torch.optim.Optimizer]
MakeScheduler = Callable[[torch.optim.Optimizer, int], Any]


def onecycle(optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """torch's OneCycleLR at the optimizer's group lrs as peaks: the recipe's schedule."""
    peaks = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps)


@dataclass
class _Setup:
    model: nn.Module
    loss_fn: Callable[..., torch.Tensor]
    train_loader: Any
    val_loader: Any
    make_optimizer: MakeOptimizer
    make_scheduler: MakeScheduler | None
    num_epochs: int
    task: str
    fabric: Fabric
    grad_clip: float
    seed: int
    constant_lr: bool | None = None  # None: inferred by _train (make_scheduler gave None)
    accumulate: int = 1  # micro-batches per step, as the training run will use
    tail_steps: frozenset[int] = frozenset()  # steps of the last epoch, before its end, whose
    # validation losses make the score (their median, with fit's own at the end); empty: fit's
    # own evaluation at the end alone
    total_steps: int = 0  # optimizer steps per run: num_epochs' steps, or max_steps if fewer
    capped: bool = False  # max_steps ends each run mid-epoch, before num_epochs
    progress: Any = None  # told of the steps and of each run's end (tune_lr's `progress`)
    runs_planned: int = 0  # runs announced to `progress`, to number them
    runs_done: int = 0
    max_lr: float = math.inf  # no widening step above it: search.divergence_lr
    label: str = ""  # said after a run's number on the bar: the top confirmed on a 2nd order
    loss_rules_read: bool = False  # a run's fit has read them on the first validation batch


def short_runs(model: nn.Module, loss_fn: Callable[..., torch.Tensor], train_loader: Iterable,
               val_loader: Iterable, make_optimizer: MakeOptimizer, *, lr_low: float,
               lr_high: float, num_epochs: int, num_candidates: int | str = "auto",
               max_widenings: int = 2, make_scheduler: MakeScheduler | None = onecycle,
               task: str = "classification", fabric: Fabric | None = None,
               grad_clip: float = 0.0, seed: int = 0, constant_lr: bool | None = None,
               accumulate: int = 1, tail_evals: int = 1, max_steps: int | None = None,
               progress: Any = None, max_lr: float = math.inf,
               range_lr: float | None = None, min_lr: float = 0.0) -> ShortRunResult:
    """Train each candidate peak lr for `num_epochs` with `make_scheduler` over those epochs'
    steps (one-cycle by default, the real schedule compressed); choose by the final
    validation loss (`refine`), or with `tail_evals` > 1 by the median of that many validation
    losses evenly spread over the last epoch. `make_optimizer(model, lr)` builds the real
    optimizer at peak lr `lr`. `max_steps`: a run with more steps than this ends there,
    mid-epoch, with the schedule compressed into `max_steps` (and the tail spread over as large
    a share of the run as one epoch of num_epochs would be). `progress`: see tune_lr.
    `max_lr`: no candidate, nor widening step, trains above it (tune_lr passes divergence_lr:
    where the range test's loss climbed back above its start, or tune.end_lr); `min_lr`: no
    candidate of a range stretched to MIN_SPAN below it (tune_lr passes tune.start_lr).
    `range_lr`: the range test's point, trained when no candidate learned (below the loss at
    the start: short_run_learning) or every candidate scored within TIE_FLOOR of the best;
    with it, on fewer than SMALL_VAL_ROWS validation rows, a pick at the edge of the
    candidates within noise of the best moves to their middle (short_run_noise).

    Problems (nothing to train, no batch, NaN at the first step, every candidate diverged)
    come back as error findings; bad arguments raise. Without `fabric` they train on the
    model's own device, as the range test does (a CPU Fabric moved a GPU model to the CPU).
    """
    if num_epochs < 1 or max_widenings < 0:
        raise TrainwiseError(f"num_epochs={num_epochs} must be >= 1 and max_widenings="
                             f"{max_widenings} >= 0.")
    lrs, spacing = candidate_lrs(lr_low, lr_high, num_candidates, min_lr=min_lr, max_lr=max_lr)
    check_sized(train_loader)  # tune_lr checks these before its range test; short_runs is public
    setup = _Setup(model, loss_fn, train_loader, val_loader, make_optimizer, make_scheduler,
                   num_epochs, task, fabric or Fabric(**model_device(model)),
                   grad_clip, seed, constant_lr, accumulate, progress=progress, max_lr=max_lr)
    steps_per_epoch = max(1, num_steps_per_epoch(train_loader, setup.fabric.world_size))
    setup.total_steps = num_epochs * len(train_loader)  # type: ignore[arg-type]
    capped = max_steps is not None and max_steps < setup.total_steps
    end, window = num_epochs * steps_per_epoch, steps_per_epoch  # the last epoch
    if capped:  # the last epoch's share of the compressed run
        setup.total_steps = end = max(1, max_steps)  # type: ignore[type-var]
        setup.capped = True
        window = max(1, round(end / num_epochs))
    offsets = _tail_offsets(window, tail_evals)  # steps before the end
    if len(offsets) > 1:  # the end itself is fit's own evaluation (offset 0), not redone
        setup.tail_steps = frozenset(end - o for o in offsets if o)
    if progress is not None:
        setup.runs_planned = len(lrs)
        progress.plan(len(lrs) * setup.total_steps, "short runs")
    candidates: list[Candidate] = []
    try:
        check_trainable(model, "short_runs_nothing_to_train")
        check_batches(train_loader, val_loader, task)
        with no_trace(model, train_loader):
            start = _start_loss(setup)
            candidates = [_train(setup, lr, 0) for lr in lrs]
            _check_lr_mattered(candidates)  # else widening would add more of the same
            widened = _widen(setup, candidates, max_widenings, start)
            confirmed = _confirm_top(setup, candidates, start)
    except ProbeStop as stop:
        return ShortRunResult(math.nan, candidates, False, spacing, num_epochs, [stop.finding])
    length = f"{end} steps ({end / steps_per_epoch:.3g} epochs, capped)" if capped else \
        f"{num_epochs} epoch(s)"
    result = verdict(candidates, widened, spacing, num_epochs, max_widenings, len(offsets),
                      length, max_lr)
    result.val_rows = val_row_count(val_loader)
    result.findings += confirmed
    if check_learning(result, start, range_lr):
        settle_within_noise(result, range_lr, range_lr is not None
                            and 0 < result.val_rows < SMALL_VAL_ROWS)
    result.constant_lr = bool(setup.constant_lr)
    if lr_high / lr_low < MIN_SPAN:  # candidate_lrs stretched it: its ends are the grid's
        result.stretched = [lrs[0], lrs[-1]]
    run_epochs = end / steps_per_epoch if capped else num_epochs
    result.horizon_epochs = run_epochs - statistics.mean(offsets) / steps_per_epoch
    result.num_steps, result.capped = setup.total_steps, capped
    return result


def _check_lr_mattered(candidates: list[Candidate]) -> None:
    """Raise when every candidate recorded the same losses, validation and training, epoch by
    epoch: they share the initial weights, data order and dropout draws, so runs that trained
    alike (the lr ignored) agree to the last bit, while a real lr difference moves the
    training loss far above LR_NO_EFFECT (the validation loss alone may not move: separable
    data reaches 0.0 in float32 at every lr)."""
    records = [[c.val_loss, *c.curve, *c.train_curve] for c in candidates]
    if len(records) < 2 or not all(math.isfinite(v) for r in records for v in r):
        return
    if not all(same_values(record, records[0], LR_NO_EFFECT) for record in records[1:]):
        return
    lrs = ", ".join(f"{c.lr:.2g}" for c in candidates)
    raise TrainwiseError(
        f"Every short run gave the same losses (validation {records[0][0]:.6g}; peak lrs "
        f"{lrs}): the lr had no effect on training, so there is nothing to choose between. "
        "make_optimizer(model, lr) must build the optimizer at `lr`, and make_scheduler("
        "optimizer, total_steps) take its peak from the optimizer's lr (not a fixed max_lr); "
        "if both do, the gradients may be zero (stage 'check': gradient flow).")


def _widen(setup: _Setup, candidates: list[Candidate], max_widenings: int,
           start: float = math.nan) -> bool:
    """While the best sits at an edge, add one candidate a grid step beyond it, never above
    setup.max_lr, divergence_lr: where the range test's loss climbed back above its start,
    or tune.end_lr. On iris (24 validation rows) steps to 0.41 and 0.91, past lr_high 0.19
    (the range test's own cut, where the loss first rose 10% of its fall) and 26x the
    range test's point 0.035, won by 0.01 nats of noise and training at 0.91 thrashed (val
    loss 0.4 -> 27 -> 0.0002; audit s11 M1). Nor while no candidate learned (below `start`,
    the untrained model's loss or chance): on random labels it added 5.6e-08 and 4.5e-09,
    10^4-10^5 below anything useful (review s13 VT6)."""
    for k in range(1, max_widenings + 1):
        beyond = beyond_edge(lr_loss_pairs(candidates))
        if flat([c.val_loss for c in candidates]) or not learned(candidates, start):
            return k > 1  # a tie (the edge won by nothing), or nothing learned to widen from
        if beyond is None or beyond > setup.max_lr * (1 + 1e-9):
            return k > 1
        if setup.progress is not None:  # the total stays the grid's (audit s13 I14)
            setup.progress.plan(setup.total_steps, "short runs, widened")
        candidates.append(_train(setup, beyond, k))
    return max_widenings > 0


def _confirm_top(setup: _Setup, candidates: list[Candidate], start: float) -> list[Finding]:
    """A best at the top of the range, next to divergence, trained again with its neighbour
    on a second data order (short_run_confirm); its finding, or none when not needed."""
    if not top_needs_confirming(candidates, setup.max_lr, start):
        return []
    if setup.progress is not None:
        setup.progress.plan(2 * setup.total_steps, "short runs, the top confirmed")
    setup.runs_planned = setup.runs_done + 2  # widenings were not planned: "8/9", not "8/7"
    first_seed, setup.seed = setup.seed, setup.seed + SECOND_ORDER
    setup.label = " (second data order)"
    try:
        return [confirm_top(candidates, lambda lr: _train(setup, lr, 0), setup.seed)]
    finally:
        setup.seed, setup.label = first_seed, ""


def _train(setup: _Setup, lr: float, round_: int) -> Candidate:
    """One short run on a deep copy of the initial model, from the same random state (and,
    with persistent loader workers, fresh ones: see probe_loader)."""
    started = time.perf_counter()
    train_loader, val_loader = probe_loader(setup.train_loader), probe_loader(setup.val_loader)
    model = copy.deepcopy(setup.model)
    optimizer = fresh_optimizer(setup.make_optimizer(model, lr), model)
    total_steps = setup.total_steps
    tail = _TailEvaluations(setup, val_loader) if setup.tail_steps else None
    scheduler = setup.make_scheduler(optimizer, total_steps) if setup.make_scheduler else None
    check_per_step(scheduler)
    if setup.constant_lr is None:  # not said: no scheduler means a constant lr
        setup.constant_lr = scheduler is None
    device = next(setup.model.parameters()).device
    precision = setup.fabric.strategy.precision  # float16: its loss scaler adapts in the run;
    scaler_state = precision.state_dict()  # put back after, so training starts as without it
    # the first run's fit reads check()'s loss rules on the first validation batch; the
    # others train copies of the same model on the same loaders (review s16 VF4)
    with seeded(setup.seed, train_loader, device), schedule_in_steps(), \
            loss_rules_checked(setup.loss_rules_read):
        try:
            state = fit(model, train_loader, val_loader, optimizer=optimizer,
                        loss_fn=setup.loss_fn, max_epochs=setup.num_epochs, task=setup.task,
                        scheduler=scheduler, fabric=setup.fabric,
                        callbacks=_callbacks(setup, tail),
                        grad_clip=setup.grad_clip, accumulate_grad_batches=setup.accumulate)
        finally:
            if scaler_state:
                precision.load_state_dict(scaler_state)
    setup.loss_rules_read = True
    steps = [row for row in state.history if row["kind"] == "step"]
    if steps and steps[0]["step"] == 1 and not math.isfinite(steps[0]["loss"]):
        raise nan_at_start("short_runs_nan_at_start", steps[0]["loss"], lr)
    epochs = [row for row in state.history if row["kind"] == "epoch"]
    curve = [float(row["val_loss"]) for row in epochs]
    whole = math.ceil(total_steps / len(setup.train_loader)) if setup.capped \
        else setup.num_epochs  # capped: the last one partial
    # a NaN is what stops a short run early; fit names every other stop (_StopAt's too)
    diverged = state.nonfinite is not None or len(epochs) < whole or not curve
    final = curve[-1] if curve and not diverged and math.isfinite(curve[-1]) else math.inf
    losses = tail.losses + [final] if tail else []  # the last: fit's evaluation at the end
    candidate = Candidate(lr, _score(final, losses), curve,
                          [float(row["train_loss"]) for row in epochs],
                          time.perf_counter() - started, round_, losses)
    if math.isfinite(candidate.val_loss):
        candidate.row_losses = _row_losses(setup, state.model, val_loader)
    if setup.progress is not None:
        setup.progress.finished(total_steps, _progress_line(setup, candidate))
    return candidate


def _row_losses(setup: _Setup, model: nn.Module, val_loader: Any) -> list[float]:
    """Each of the first MAX_NOISE_ROWS validation rows' loss after the run: the same rows
    for every candidate (the validation order is fixed; each process scores them alike)."""
    outputs, targets, rows = [], [], 0
    for output, y in batch_outputs(model, val_loader):  # no_grad, eval mode: batch_outputs's
        outputs.append(output.cpu())
        targets.append(y.cpu())
        rows += len(y)
        if rows >= MAX_NOISE_ROWS:
            break
    if not outputs:
        return []
    return row_losses(setup.loss_fn, torch.cat(outputs)[:MAX_NOISE_ROWS],
                      torch.cat(targets)[:MAX_NOISE_ROWS])


def _start_loss(setup: _Setup) -> float:
    """The untrained model's validation loss (or chance: short_run_learning.start_loss), from
    the same random state as the runs: the bar the short runs must pass."""
    loader = setup_loader(setup.fabric, probe_loader(setup.val_loader), train=False)
    with seeded(setup.seed, None, next(setup.model.parameters()).device), torch.no_grad():
        outputs, targets = predictions_across_ranks(setup.fabric, setup.model, loader)
    return start_loss(setup.loss_fn, outputs, targets)


def _callbacks(setup: _Setup, tail: _TailEvaluations | None) -> list[Any]:
    """fit's callbacks for one short run: the tail's evaluations, the stop at a capped run's
    last step (fit runs whole epochs), the progress bar."""
    callbacks: list[Any] = [tail] if tail else []
    if setup.capped:
        callbacks.append(_StopAt(setup.total_steps))
    return callbacks + ([setup.progress] if setup.progress is not None else [])


def _progress_line(setup: _Setup, candidate: Candidate) -> str:
    """What a finished run says on the bar, and piped on a line of its own."""
    setup.runs_done += 1
    score = f"validation loss {candidate.val_loss:.4g}" if math.isfinite(candidate.val_loss) \
        else "diverged"
    count = f"{setup.runs_done} (widening {candidate.round})" if candidate.round else \
        f"{setup.runs_done}/{setup.runs_planned}{setup.label}"  # a widening: no total
    return (f"short run {count}: peak lr {candidate.lr:.3g}, "
            f"{score} in {candidate.seconds:.1f} s")


def _score(final: float, tail: list[float]) -> float:
    """A candidate's score: its last validation loss, or with a tail the tail's median; inf
    when the run diverged or any evaluation was non-finite (such a run is not trusted)."""
    if not tail or not math.isfinite(final):
        return final
    return statistics.median(tail) if all(math.isfinite(v) for v in tail) else math.inf


def _tail_offsets(steps_per_epoch: int, count: int) -> list[int]:
    """Steps before the end at which the last epoch is evaluated: 0 (the end) and count - 1
    more, evenly spread over that epoch (fewer when it has fewer steps)."""
    count = max(1, min(count, steps_per_epoch))  # at least the end
    return sorted({round(j * steps_per_epoch / count) for j in range(count)})


class _StopAt:
    """A fit callback ending the run after optimizer step `step`, mid-epoch: fit then
    evaluates that partial epoch, as at an epoch's end."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: Any) -> None:
        if state.step >= self.step:
            state.should_stop, state.stop_reason = True, f"short run capped at step {self.step}"


class _TailEvaluations:
    """A fit callback: the validation loss at setup.tail_steps (process-wide, as fit
    evaluates), the model put back in training mode."""

    def __init__(self, setup: _Setup, val_loader: Any) -> None:
        self.setup, self.at_steps, self.losses = setup, set(setup.tail_steps), []
        self.loader = setup_loader(setup.fabric, val_loader, train=False)

    def on_step_end(self, state: Any, rows: Any) -> None:
        if state.step in self.at_steps:
            self.at_steps.discard(state.step)  # on_step_end may come twice for one step
            self.losses.append(loss_across_ranks(self.setup.fabric, state.model, self.loader,
                                                 self.setup.loss_fn))
