"""`trainwise tune`: the range test finds the range, short real runs pick the peak lr in it.

The range test alone is cheap (100 steps per seed) but reads the lr from a curve whose
relation to the final loss is indirect: on the calibration tasks its point landed +3% to +20%
above the best grid loss (lr_rule.py). Short runs measure what we want, the validation loss
after training with the real schedule, at a few points of that range.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.config import TuneConfig
from trainwise.findings import (
    Finding,
    Findings,
    Severity,
    check_fix_terms,
    explained,
    info,
    warning,
)
from trainwise.tune.api_terms import in_terms
from trainwise.tune.call_checks import check_batched, check_make_optimizer
from trainwise.tune.candidates import candidate_lrs
from trainwise.tune.lr_range import LrRangeResult, lr_range_test
from trainwise.tune.lr_rule import cut_point  # the rule's own cut
from trainwise.tune.short_run_inputs import short_run_problem
from trainwise.tune.short_run_result import ShortRunResult, finite_or_none
from trainwise.tune.short_runs import MakeScheduler, onecycle, short_runs

if TYPE_CHECKING:  # matplotlib is imported only when a plot is asked for
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SHORT_RUN_FRACTION = 0.15  # each short run gets 15% of the real run's epochs. Calibration
# (5 seeds, worst excess over a one-cycle grid oracle of the refined pick): MNIST-1D 12.5% ->
# 3.2%, 25% -> 3.7%; Friedman-1 13% -> 3.9%, 20% -> 2.3%, 33% -> 3.4%: no gain from longer
# runs, while 15% keeps `trainwise run` on MNIST-1D (40 epochs -> 6 per candidate) < 3 min
SHORT_RUN_FRACTION_CONSTANT = 0.3  # at a constant lr, 30%: there the short runs' pick is
# extrapolated to the whole run (horizon_factor), and the further it must reach the more the
# horizon law's error shows. On the anchors' MNIST-1D task (constant lr, 10 epochs; every
# candidate's curve on a 1.33x grid, 10 range-test seeds, scored against the 10-seed grid
# oracle) 2-epoch runs scaled by sqrt(2/10) landed within 5% of the oracle's best loss in
# 0/10 seeds (within 2x in 7/10, median 1.45x too high), 3-epoch runs in 4/10 (9/10, median
# 1.15x); 4 epochs scored no better than 3 (2/10): past ~30% single-run noise dominates
TAIL_EVALS = 6  # at a constant lr each short run is scored by the median of 6 validation
# losses spread over its last epoch, and the candidates start lower, at the range test's low
# end times horizon_factor (the range is read for one-cycle peaks). Replayed on every
# candidate's recorded run (the anchors' two tasks, 10 range-test seeds each, 3-epoch runs on a
# 1.33x grid, scored against the 20-seed oracle): MNIST-1D within 5% of the oracle's best in
# 5/10 seeds with the last loss alone (within 2x 8/10, worst +28%), 6/10 with the median
# (10/10, +7.5%), 9/10 with the median and the lower start (10/10, +5.1%; 4.7 candidates a
# run), 10/10 (10/10, +3.9%; 4.2 candidates) when the lower start keeps the number of
# candidates of the range test's range; moving the whole range down instead: 8/10. Digits:
# 10/10 with the last loss (+1.7%), with the median (+4.5%) and with both (+4.4%; 3.6
# candidates, as before), 8/10 moving the whole range down. The mean of the 6 instead of the
# median: MNIST-1D 8/10 (+7.6%). bench/tune_replay.py replays this rule on the recordings
# (bench/tune_replay.json): on 30 MNIST-1D and 20 digits seeds it lands within 5% in
# 24/30 and 20/20, a grid of 14 short runs per seed (4.5x a plain run) in 27/30 and 20/20:
# a choice from one seed's short runs is near its noise floor there
MIN_SHORT_RUN_STEPS = 50  # below ~50 steps a compressed one-cycle is mostly warm-up and
# anneal (~15 steps each): on Friedman-1, 32-step runs picked 2.6x too high in 1 of 5 seeds
# (+9% loss), 48-step runs kept all 5 within +2.3%
MAX_SHORT_RUN_STEPS = 2000  # a short run's length is sized for evidence, not in proportion to
# the data: every calibration above used runs of 50-300 steps (the anchors' 66 and 108, the
# recipe tasks' 55-270), and longer runs gained nothing (12.5% -> 25% of the epochs). Uncapped,
# a 144k-row table (1125 steps an epoch, 40 epochs) gave 6,750-step runs: the tune stage took
# 40,500 steps (318 s) against training's 45,000 (236 s), and its candidates' losses differed
# by 0.0001 (audit s10, S1); 1,125-step runs there chose 0.048 against 0.025, both inside
# that flat bottom. 2000 steps is ~7x the longest calibrated run and keeps 5-7 candidates
# at 22-31% of such a run's steps. A capped run ends mid-epoch, the real schedule compressed
# into its steps. Not at a constant lr: there the short runs' pick is scaled by
# horizon_factor, whose sqrt law was measured only at short/long ratios of 0.3-0.375
# (factors 0.55-0.61); capped, the audit's table would scale by sqrt(1.7/40) = 0.21, 8x
# further out with no benchmark, where an error in the exponent is a 2-3x error in the lr
# (review s10 RT7). Constant-lr short runs stay uncapped until bench/tune_oracle.py
# --horizon has a case past 2000 steps


def short_run_epochs(config: TuneConfig, max_epochs: int, steps_per_epoch: int,
                     constant_lr: bool = False) -> int:
    """tune.short_run_epochs, or SHORT_RUN_FRACTION of train.max_epochs
    (SHORT_RUN_FRACTION_CONSTANT when the lr stays constant), raised to reach
    MIN_SHORT_RUN_STEPS optimizer steps (but never past half of max_epochs); at least 1."""
    if config.short_run_epochs != "auto":
        return int(config.short_run_epochs)
    fraction = SHORT_RUN_FRACTION_CONSTANT if constant_lr else SHORT_RUN_FRACTION
    epochs = max(1, round(fraction * max_epochs))
    if epochs * steps_per_epoch < MIN_SHORT_RUN_STEPS:
        epochs = max(epochs, min(math.ceil(MIN_SHORT_RUN_STEPS / max(steps_per_epoch, 1)),
                                 max_epochs // 2))
    return epochs


def short_run_steps(config: TuneConfig, num_epochs: int, steps_per_epoch: int,
                    constant_lr: bool = False) -> int:
    """A short run's optimizer steps: its `num_epochs` (short_run_epochs) of steps, at most
    MAX_SHORT_RUN_STEPS when the length is "auto" and the lr is annealed (a
    tune.short_run_epochs the user set is kept whole, and so is a constant-lr run: see
    MAX_SHORT_RUN_STEPS)."""
    steps = num_epochs * steps_per_epoch
    if config.short_run_epochs != "auto" or constant_lr:
        return steps
    return min(steps, MAX_SHORT_RUN_STEPS)


def horizon_factor(short_epochs: float, max_epochs: int) -> float:
    """What a constant lr chosen by short runs of `short_epochs` is multiplied by for a real
    run of `max_epochs`: sqrt(short_epochs / max_epochs), at most 1.

    Why: at a constant lr, the loss after T steps is roughly a progress term falling like
    1 / (lr T) plus a noise floor growing like lr (the noise ball of a fixed-step
    stochastic method; Bottou, Curtis and Nocedal 2018, §4), lowest at lr ~ 1 / sqrt(T).
    A short run stops before the floor dominates, so it prefers a higher lr than the whole
    run does.
    Measured (bench/tune_oracle.py --horizon: the 17-point grid, 20 seeds, constant lr, on
    the anchor tasks): digits MLP best at 0.032 after 3 epochs, 0.018 after 8 (0.56x; the
    rule says 0.61x); MNIST-1D CNN 0.0056 after 3 epochs (and after 2), 0.0032 after 10
    (0.56x; the rule 0.55x), each within one 1.78x grid step. A schedule that anneals
    (one-cycle, cosine) ends each short run at a small lr, which removes the floor: no
    correction there (one-cycle, same bench: Friedman-1 ratio 1.0; MNIST-1D and digits
    0.56, but inside whole-run optima flat within noise over 5-10x).
    """
    return math.sqrt(min(1.0, short_epochs / max(max_epochs, 1)))


@dataclass
class TuneResult:
    lr: float  # the peak lr to train with; nan when tuning failed
    range_test: LrRangeResult
    short: ShortRunResult | None  # None when short runs are off or the range test failed
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    horizon_factor: float = 1.0  # < 1: the short runs' constant lr, scaled to the full run

    def __post_init__(self) -> None:
        # a notebook shows .findings as a table, as RunResult's (review s16 VN7)
        self.findings = Findings(self.findings)

    def __repr__(self) -> str:
        """One line: the choice and its evidence (the fields hold the curves)."""
        rt, short = self.range_test, self.short
        tried = "{" + ", ".join(f"{c.lr:.3g}: {c.val_loss:.4g}" for c in sorted(
            short.candidates, key=lambda c: c.lr)) + "}" if short else None
        codes = ", ".join(f"{f.severity.value} {f.code}" for f in self.findings)
        return (f"TuneResult(lr={self.lr:.3g}, candidates={tried} (peak lr: validation loss), "
                f"range={rt.lr_low:.3g}..{rt.lr_high:.3g} (range test's point {rt.lr:.3g}), "
                f"widened={short.widened if short else None}, "
                f"horizon_factor={self.horizon_factor:.3g}, findings=[{codes}])")

    def plot(self, ax: Axes | None = None) -> Figure | Axes:
        """The report's range-test figure with this search on it: the band the short runs
        tried (a tick per run) and the lr chosen for training (LrRangeResult.plot's curves).
        As LrRangeResult.plot: a new Figure without `ax`, the Axes drawn on with it."""
        from trainwise.reporting.lr_range import lr_range_figure, used_lr

        tune = self.to_dict()
        fig = lr_range_figure(self.range_test.to_dict(), tune, used_lr(tune), trained=False,
                              ax=ax)
        return fig if ax is None else ax

    def to_dict(self) -> dict[str, Any]:
        """tune.json; its "batch_size" entry is added by the caller (stage_tune)."""
        short = self.short.to_dict() if self.short else {
            "candidates": [], "chosen_lr": None, "widened": False, "spacing": None,
            "num_epochs": 0}
        rt = self.range_test
        return {**short, "chosen_lr": self.lr if math.isfinite(self.lr) else None,
                "source": "short_runs" if self.short else "range_test",
                "range": {"lr": finite_or_none(rt.lr), "lr_low": finite_or_none(rt.lr_low),
                          "lr_high": finite_or_none(rt.lr_high),
                          "spread_decades": finite_or_none(rt.spread_decades)},
                "horizon_factor": self.horizon_factor,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def tune_lr(model: nn.Module, loss_fn: Callable[..., torch.Tensor], train_loader: Iterable,
            val_loader: Iterable, make_optimizer: Callable[..., torch.optim.Optimizer], *,
            config: TuneConfig | None = None, max_epochs: int = 40,
            range_loader: Iterable | None = None, make_scheduler: MakeScheduler | None = onecycle,
            task: str = "classification", fabric: Fabric | None = None, grad_clip: float = 0.0,
            seed: int = 0, constant_lr: bool | None = None,
            accumulate: tuple[int, int] = (1, 1), progress: Any = None,
            schedule: str | None = None, fix_terms: str = "api") -> TuneResult:
    """Range test (config.num_seeds seeds from `seed`) then, unless config.short_runs is off,
    short runs over its range; `lr` is the chosen one-cycle peak (nan when tuning failed:
    read `findings`).

    `train_loader` must have a len() (the short runs are sized in epochs; a stream: pass
    config=TuneConfig(short_runs=False), the range test alone). `val_loader` scores each
    short run by its validation loss; `task` is "classification" (integer class targets of
    shape (N,)) or "regression" (float targets).
    `make_optimizer(model, lr=None)` builds the real optimizer: the range test calls it with
    the model alone, the short runs with each candidate peak lr, which it must use.
    `make_scheduler(optimizer, total_steps)` builds the schedule of one short run, stepped
    once per optimizer step over its `total_steps`, from the optimizer's group lrs as the
    peaks (default: `onecycle`, OneCycleLR with max_lr = those lrs); it may return None for
    a constant lr. `range_loader` (default: `train_loader`) feeds the range test, e.g. the
    training loader with drop_last=True.
    `config`: a `trainwise.TuneConfig` (the config file's [tune] section): the range test's
    start_lr, end_lr, num_steps and num_seeds; short_runs (off: the range test's point),
    num_candidates, short_run_epochs and max_widenings. Default: TuneConfig().
    `max_epochs`: the real run's, which the short runs' length is a share of (at most
    MAX_SHORT_RUN_STEPS steps under an annealed lr, short_run_steps).
    `constant_lr`: the training lr is constant (after any warmup), so the short runs' pick is
    scaled to the whole run's horizon; None: constant when `make_scheduler` is None (pass it
    when your make_scheduler may return None: only then do the short runs take the constant-lr
    length, start and scoring; a None scheduler found later is still scaled).
    `accumulate`: micro-batches per step for the range test's loader and for the short runs'
    (per process), as training splits its batches (MAX_MICRO_BATCH): the same step without
    batch-dependent layers; BatchNorm normalises each micro-batch (see lr_range_test).
    `fabric`: the run's; the short runs train through it and the range test steps at its
    precision (None: one CPU process, 32-bit).
    `schedule`: train.schedule's name ("onecycle", "cosine", "constant"), said in the range
    test's summary; None: "constant" at a constant lr, "onecycle" under the default
    make_scheduler, else none named.
    `progress`: told of the work as it goes (None: nothing is told): `plan(steps, what)` when
    more optimizer steps are to come, `finished(steps, line)` when a range-test seed or a
    short run ends, and fit's `on_step_end(rows)` inside each short run; console.TuneProgress
    draws them as a bar.
    `fix_terms`: "api" (the default) says the findings' fixes with this call's levers (the
    DataLoader's batch_size, max_epochs=, TuneConfig(num_steps=...)); "config" with
    `trainwise run`'s config keys (train.batch_size, tune.num_steps), as the recipe asks.
    Problems of the model or the data (nothing to train, an empty loader, a data set smaller
    than one batch, NaN at the first step) come back as error findings in `findings`, those
    the short runs would meet before the range test runs; a call that cannot work (a
    make_optimizer without an lr parameter or handing back one optimizer, a make_scheduler
    not taking (optimizer, total_steps) or metric-driven, a stream as train_loader, float
    targets under task="classification", a per-sample loss) raises TrainwiseError saying what
    to pass.
    """
    config = config or TuneConfig()
    check_fix_terms(fix_terms)
    _check_call(config, make_optimizer, train_loader, val_loader, range_loader)
    if config.short_runs:  # before the range test's work, not after it
        problem = short_run_problem(model, train_loader, val_loader, make_optimizer,
                                    make_scheduler, task)
        if problem is not None:
            nan = math.nan
            return _said(TuneResult(nan, LrRangeResult(nan, nan, nan, nan, "trainwise"),
                                    None, findings=[problem]), fix_terms)
    started = time.perf_counter()
    constant = constant_lr if constant_lr is not None else make_scheduler is None
    # `is None`, not `or`: an empty DataLoader is falsy, and a stream's bool() calls len()
    range_loader = train_loader if range_loader is None else range_loader
    if progress is not None:
        progress.plan(config.num_seeds * config.num_steps, "range test")
    rt = lr_range_test(model, loss_fn, range_loader, make_optimizer,
                       start_lr=config.start_lr, end_lr=config.end_lr,
                       num_steps=config.num_steps,
                       seeds=tuple(range(seed, seed + config.num_seeds)),
                       accumulate=accumulate[0], fabric=fabric,
                       on_seed_end=progress and (lambda seed_: progress.finished(
                           config.num_steps, f"range test seed {seed_}")),
                       schedule=schedule if schedule is not None else "constant" if constant
                       else "onecycle" if make_scheduler is onecycle else "",
                       fix_terms="config",  # said for tune_lr below, not for find_lr
                       _checked=True)  # _check_call did: a re-iterable's batch read once
    result = TuneResult(rt.lr, rt, None, {"range_test": time.perf_counter() - started},
                        list(rt.findings))
    if not math.isfinite(rt.lr):
        return _said(result, fix_terms)
    if not config.short_runs:
        if constant:
            result.findings.append(_range_point_at_constant_lr(rt.lr))
        return _said(result, fix_terms)
    started = time.perf_counter()
    steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    num_epochs = short_run_epochs(config, max_epochs, steps_per_epoch, constant)
    short_steps = short_run_steps(config, num_epochs, steps_per_epoch, constant)
    run_epochs = short_steps / steps_per_epoch  # the real length: < num_epochs when capped
    lr_low, lr_high, count = candidate_range(rt.lr_low, rt.lr_high, config.num_candidates,
                                             run_epochs, max_epochs, constant)
    if short_steps < MIN_SHORT_RUN_STEPS:
        result.findings.append(_few_short_run_steps(short_steps, num_epochs, max_epochs))
    if short_steps < num_epochs * steps_per_epoch:
        result.findings.append(_capped(short_steps, steps_per_epoch, num_epochs, max_epochs))
    result.short = short_runs(
        model, loss_fn, train_loader, val_loader, make_optimizer, lr_low=lr_low,
        lr_high=lr_high, num_epochs=num_epochs, num_candidates=count,
        max_widenings=config.max_widenings, make_scheduler=make_scheduler, task=task,
        fabric=fabric, grad_clip=grad_clip, seed=seed, constant_lr=constant_lr,
        accumulate=accumulate[1], tail_evals=TAIL_EVALS if constant else 1,
        max_steps=short_steps, progress=progress, max_lr=divergence_lr(rt),
        range_lr=rt.lr, min_lr=config.start_lr)
    result.seconds["short_runs"] = time.perf_counter() - started
    chose = math.isfinite(result.short.chosen_lr) and result.short.told_apart and not any(
        f.severity is Severity.ERROR for f in result.short.findings)
    result.findings = [(_settled(f, rt, result.short) if chose else _unsettled(f, result.short))
                       if f.code == "lr_range_unstable" else f
                       for f in result.findings] + result.short.findings
    result.lr = result.short.chosen_lr
    if result.short.constant_lr and not result.short.kept_range_point and \
            math.isfinite(result.lr):  # the range test's point is read for one-cycle peaks
        _scale_to_horizon(result, result.short.horizon_epochs, run_epochs, max_epochs)
    return _said(result, fix_terms)


def _said(result: TuneResult, fix_terms: str) -> TuneResult:
    """The findings (the result's, its range test's and short runs') in `fix_terms`, each
    list a Findings (a notebook's table, review s16 VN7)."""
    result.findings = in_terms(result.findings, "tune_lr", fix_terms)
    result.range_test.findings = in_terms(result.range_test.findings, "tune_lr", fix_terms)
    if result.short is not None:
        result.short.findings = in_terms(result.short.findings, "tune_lr", fix_terms)
    return result


def _check_call(config: TuneConfig, make_optimizer: Any, train_loader: Iterable,
                val_loader: Iterable, range_loader: Iterable | None) -> None:
    """Refuse an optimizer for make_optimizer and a Dataset for a loader before any work."""
    check_make_optimizer(make_optimizer, "make_optimizer(model) by the range test and "
                                         "make_optimizer(model, lr) by each short run")
    check_batched(train_loader, "train_loader", "tune_lr")
    if range_loader is not None:
        check_batched(range_loader, "range_loader", "tune_lr")
    if config.short_runs:  # val_loader is read by the short runs alone
        check_batched(val_loader, "val_loader", "tune_lr")


def divergence_lr(rt: LrRangeResult) -> float:
    """The highest peak lr a widening may try: per range-test seed, the lr where its loss
    climbed back above its starting level (lr_rule's cut) or the test stopped, else the
    test's end (tune.end_lr); the geometric median over the seeds (inf without curves).

    Why there and not at lr_high (10% of the fall back up): a one-cycle peak may sit above
    where a ramp's loss starts rising; capped at lr_high, digits-anchor's seed 130 could not
    take the widening step its pick came from (bench/tune_vs_oracle.py), while capped here
    all 5 digits-anchor and 3 Friedman-1 picks stay the same. Above the divergence (or the
    test's end) nothing was measured. On iris the seeds diverged at 0.43,
    0.50 and not by 1.0 (median 0.50), where the widening had tried 0.91 (audit s11 M1), and
    on wine a peak of 1.05 came out of a test that ended at 1.0 (audit s11 R6).
    """
    ceilings = []
    for curve in rt.curves:
        lrs, _, keep = cut_point(curve.lrs, curve.losses) if curve.lrs else ([], [], 0)
        if len(lrs) == 0:
            continue
        ceilings.append(float(lrs[min(keep, len(lrs) - 1)]))
    return float(10 ** np.median(np.log10(ceilings))) if ceilings else math.inf


def candidate_range(lr_low: float, lr_high: float, num_candidates: int | str,
                    num_epochs: float, max_epochs: int, constant: bool
                    ) -> tuple[float, float, int | str]:
    """The short runs' (lr_low, lr_high, num_candidates) from the range test's range. At a
    constant lr the candidates start lower, at lr_low x horizon_factor (the range is read for
    one-cycle peaks), with as many as the range test's own range asks for (the time budget);
    each is then scored over its last epoch (TAIL_EVALS)."""
    if not constant:
        return lr_low, lr_high, num_candidates
    if num_candidates == "auto":
        num_candidates = len(candidate_lrs(lr_low, lr_high, "auto")[0])
    return lr_low * horizon_factor(num_epochs, max_epochs), lr_high, num_candidates


def _scale_to_horizon(result: TuneResult, horizon: float, num_epochs: float,
                      max_epochs: int) -> None:
    """`horizon`: the epochs the short runs' scores stand for (before num_epochs when they
    are spread over the last epoch). Short runs as long as the run itself: nothing to scale."""
    factor = horizon_factor(horizon, max_epochs)
    if factor >= 1 or num_epochs >= max_epochs:
        return
    chosen, result.lr, result.horizon_factor = result.lr, result.lr * factor, factor
    scored = f", scored over their last epoch: {horizon:.3g} epochs on average" \
        if horizon < num_epochs else ""
    result.findings.append(info(
        "tune", "short_runs_horizon",
        f"The lr stays constant, and the short runs ({num_epochs:.3g} of {max_epochs} epochs"
        f"{scored}) favour a higher constant lr than the whole run: {chosen:.3g} scaled by "
        f"sqrt({horizon:.3g}/{max_epochs}) = {factor:.2f} to {result.lr:.3g} (at a constant "
        "lr the best lr falls like 1/sqrt(steps)).", short_run_lr=chosen, lr=result.lr,
        horizon_factor=factor, horizon_epochs=horizon))


def _settled(finding: Finding, rt: LrRangeResult, short: ShortRunResult) -> Finding:
    """The range test's seeds disagreeing on the point matters only when the point is used:
    short runs that told their candidates apart (short.told_apart; a tie or no learning keeps
    the warning, audit s13 T5) have done what its warning asks. Where their pick lies is said
    from the numbers: after widening it may sit outside the range (audit s13 T4)."""
    lr = short.chosen_lr
    where = "inside" if rt.lr_low <= lr <= rt.lr_high else \
        "below" if lr < rt.lr_low else "above"
    rounds = max((c.round for c in short.candidates), default=0)
    widened = f", after {rounds} widening(s)" if rounds else ""
    return explained(
        finding, f"The short runs chose {lr:.3g} instead, {where} the range "
        f"({rt.lr_low:.3g} to {rt.lr_high:.3g}){widened}.",
        "Nothing to do; a larger tune.num_steps or train.batch_size steadies the test.")


def _unsettled(finding: Finding, short: ShortRunResult) -> Finding:
    """The warning stays (audit s13 T5), but its find-lr fix, "run `trainwise tune`", is the
    command just run (review s13 VT2): the fix says why the short runs did not settle it."""
    if short.kept_range_point == "no_learning":
        fix = ("The range is as shaky as the short runs: nothing learned, so see "
               "short_runs_no_learning (stage 'data', stage 'check') before the lr.")
    elif any(f.severity is Severity.ERROR for f in short.findings):
        fix = "The short runs stopped with an error: mend it first (its fix), then rerun."
    else:
        fix = ("The short runs tied too (short_runs): more validation rows "
               "(split.val_fraction), longer short runs (tune.short_run_epochs) or a larger "
               "tune.num_steps tell the lrs apart.")
    return replace(finding, fix=fix)


def _few_short_run_steps(steps: int, num_epochs: int, max_epochs: int) -> Finding:
    few = f"{steps} optimizer step{'s' * (steps != 1)}"  # a 45-row table: 1 (audit s16 D10)
    return warning(
        "tune", "short_runs_few_steps",
        f"Each short run has only {few} ({num_epochs} of {max_epochs} "
        f"epochs; short runs take at most half of them): below {MIN_SHORT_RUN_STEPS} their "
        "choice gets noisier (on Friedman-1, 32-step runs picked 2.6x too high in 1 of 5 "
        "seeds).", "Give the run more steps: a smaller train.batch_size or a larger "
        "train.max_epochs; or compare the candidates in the report before trusting the pick.",
        steps=steps, min_steps=MIN_SHORT_RUN_STEPS)


def _capped(steps: int, steps_per_epoch: int, num_epochs: int, max_epochs: int) -> Finding:
    share = f"{steps / steps_per_epoch:.0%} of an epoch" if steps < steps_per_epoch else \
        f"{steps / steps_per_epoch:.3g} epochs"
    return info(
        "tune", "short_runs_capped",
        f"Short runs capped at {steps} steps ({share} of {steps_per_epoch} steps) on this data, "
        f"instead of {num_epochs} of {max_epochs} epochs: longer runs chose no better on the "
        f"calibration tasks (50-300 steps), and uncapped they can cost more than training "
        "itself. Each ends mid-epoch, the real schedule compressed into its steps (to run "
        "whole epochs anyway, set tune.short_run_epochs).",
        steps=steps, max_steps=MAX_SHORT_RUN_STEPS, steps_per_epoch=steps_per_epoch,
        uncapped_epochs=num_epochs)


def _range_point_at_constant_lr(lr: float) -> Finding:
    return warning(
        "tune", "range_point_at_constant_lr",
        f"Training at the range test's point ({lr:.3g}) with a constant lr: that point is read "
        "as the peak of a one-cycle schedule, and a constant lr wants less (on the anchors' "
        "two tasks it was 1.5x and 6x above the best constant lr of a grid search, "
        "bench/tune_vs_oracle.py).",
        "Set tune.short_runs = true (the default) so short real runs choose the lr, or use "
        "train.schedule = \"onecycle\".", lr=lr)

