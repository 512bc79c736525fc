"""The tune stage: the batch size (when tune.batch_size = "auto", or the default cut to fit a
small table), then the learning rate by the range test and short real runs, at the loader and
schedule training will use.

The loader, the schedule and the blame of extreme class weights are shared with the train
stage and live beside it (stages_training.py), so the two stages cannot drift apart.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from trainwise.console import TuneProgress, console, progress
from trainwise.data.audit import extreme_targets
from trainwise.findings import Finding, Severity, info
from trainwise.stages import RunContext, eval_batch_size
from trainwise.stages_training import blame_extreme_weights, run_scheduler, training_loader
from trainwise.tune.batch_probe import find_batch_size
from trainwise.tune.batch_size import MAX_MICRO_BATCH, fixed_batch_findings
from trainwise.tune.default_batch import fitted_batch_finding, fitted_default_batch
from trainwise.tune.large_batch import accumulation_steps, large_batch_finding
from trainwise.tune.lr_verdict import spread_text
from trainwise.tune.range_blame import fine_tuning, lead_with_data, target_outlier_blame
from trainwise.tune.search import tune_lr
from trainwise.tune.short_run_result import finite_or_none


def stage_tune(ctx: RunContext) -> list[Finding]:
    """Batch size (if tune.batch_size = "auto"), then the range test and short real runs."""
    cfg, tune = ctx.config.train, ctx.config.tune
    assert ctx.model is not None and ctx.loss_fn is not None and ctx.data is not None
    ctx.model.to(ctx.fabric.device)
    train = ctx.splits["train"]
    findings, record = [], {"mode": "fixed", "chosen": cfg.batch_size}
    if tune.batch_size == "auto":  # before the lr: the lr is tuned at the batch size used
        x, y = train.tensors(limit=MAX_MICRO_BATCH)
        with console.status("[bold]tune[/]: batch size..."):
            batch = find_batch_size(ctx.model, ctx.loss_fn, x, y, ctx.make_optimizer,
                                    len(train.y), ctx.fabric)
        findings, record = list(batch.findings), batch.to_dict()
        if not batch.batch_size:
            return findings
        cfg.batch_size = batch.batch_size
    elif fitted := fitted_default_batch(cfg, len(train.y)):  # the default, cut to the rows
        user_lr = None if cfg.lr == "auto" else float(cfg.lr)
        findings = [fitted_batch_finding(cfg.batch_size, fitted, len(train.y), user_lr)]
        record = {"mode": "fitted", "chosen": fitted, "default": cfg.batch_size}
        cfg.batch_size = fitted
    else:
        findings += fixed_batch_findings(cfg.batch_size, len(train.y))
    ctx.meta["batch_size"] = cfg.batch_size  # the one used: meta's config keeps the one given
    large = large_batch_finding(cfg.batch_size, cfg.max_epochs * len(train.y) // cfg.batch_size,
                                ctx.fabric.world_size, cfg.accumulate_grad_batches, cfg.schedule,
                                lr_measured=cfg.lr == "auto")
    findings += [large] if large else []
    if cfg.lr != "auto":
        ctx.lr = float(cfg.lr)
        ctx.run.write_json("tune.json", {"candidates": [], "chosen_lr": ctx.lr, "widened": False,
                                         "source": "config", "batch_size": record})
        return findings + [info("tune", "lr_given", f"Learning rate {ctx.lr:g} given in the "
                                "config; no range test (set train.lr = \"auto\" to measure it).")]
    # the train stage's loader (its note on a dropped last batch is given once, by training)
    short_run_loader, problems = training_loader(ctx, "tune")
    if short_run_loader is None:
        return findings + problems
    with progress() as bar:  # the short runs can train for minutes: steps and an ETA
        result = _tune_lr(ctx, short_run_loader,
                          TuneProgress(bar) if ctx.fabric.is_global_zero else None)
    ctx.run.write_json("lr_range.json", result.range_test.to_dict())
    ctx.run.write_json("tune.json", {**result.to_dict(), "batch_size": record})
    if math.isfinite(result.lr):
        ctx.lr = float(result.lr)
    if ctx.fabric.world_size > 1:  # each rank's short runs saw its own shard: rank 0 decides
        ctx.lr = float(ctx.fabric.broadcast(ctx.lr, src=0))
    precision = ctx.meta.get("precision", "32-true")
    measured_at = f" (measured at {precision}, as training runs)" \
        if precision != "32-true" else ""
    chosen = [_chosen_finding(ctx.lr, result, measured_at)] if math.isfinite(result.lr) else []
    cost = _cost_finding(ctx, result, len(short_run_loader))
    tuned = lead_with_data(blame_extreme_weights(ctx, result.findings),
                           _range_blame(ctx, result.range_test))
    tuned = fine_tuning(tuned, ctx.starts_trained, result.range_test.lr_high)
    return chosen + findings + tuned + cost  # first: the stage's headline


def _range_blame(ctx: RunContext, test: Any) -> list[Finding]:
    """lr_range_target_outliers: a range test broken at its start by extreme regression
    targets (audit s14 R2); they are counted on the targets the model is trained on."""
    if ctx.data is None or ctx.data.task != "regression" or not test.curves:
        return []
    far = extreme_targets(np.asarray(ctx.splits["train"].y))
    tune = ctx.config.tune
    return target_outlier_blame(test, tune.num_steps, tune.end_lr, len(far), ctx.target_log)


# METHOD §4 / issue 6: tuning should cost at most ~3 plain training runs. A short training
# (MNIST-1D at 3 epochs: tune 6.2 s, train 1.7 s, audit s13 T8) spends most of it in the range
# test's fixed num_seeds x num_steps, which the short runs' budget does not scale down.
COST_BUDGET = 3.0


def _cost_finding(ctx: RunContext, result: Any, steps_per_epoch: int) -> list[Finding]:
    """A note when tuning took over COST_BUDGET times the training it tunes, that training
    estimated from the short runs' own seconds per step (evaluations included: about)."""
    short = result.short
    if short is None or short.num_steps <= 0 or not steps_per_epoch:
        return []
    timed = [c.seconds / short.num_steps for c in short.candidates if c.seconds > 0]
    if not timed:
        return []
    tuned = sum(result.seconds.values())
    training = statistics.median_high(timed) * ctx.config.train.max_epochs * steps_per_epoch
    if tuned <= COST_BUDGET * training:
        return []
    cfg = ctx.config.tune
    return [Finding(  # an info with a fix: nothing is wrong, the cost is said
        "tune", Severity.INFO, "tune_cost",
        f"Tuning took {tuned:.1f} s, about {tuned / training:.1f}x the training steps it "
        f"tunes (~{training:.1f} s for {ctx.config.train.max_epochs} epochs at the short runs' "
        "time per step; evaluation and monitoring add to a real run): the range test's "
        f"{cfg.num_seeds} x {cfg.num_steps} steps weigh most in a short training.",
        {"tune_seconds": round(tuned, 2), "training_seconds": round(training, 2),
         "ratio": round(tuned / training, 2), "budget": COST_BUDGET},
        "For cheaper tuning: set train.lr to the lr found (no tuning on reruns), or lower "
        "tune.num_steps / tune.num_seeds (a noisier range test).")]


def _tune_lr(ctx: RunContext, short_run_loader: Any, bar: TuneProgress | None) -> Any:
    """tune_lr at the loaders, schedule and micro-batches training will use."""
    cfg, train, seed = ctx.config.train, ctx.splits["train"], ctx.config.run.seed
    assert ctx.model is not None and ctx.loss_fn is not None and ctx.data is not None
    return tune_lr(
        ctx.model, ctx.loss_fn, short_run_loader,
        ctx.splits["val"].loader(eval_batch_size("val", cfg.batch_size), shuffle=False, seed=seed),
        ctx.make_optimizer, config=ctx.config.tune, max_epochs=cfg.max_epochs,
        # whole batches keep the range test's loss points comparable, but a batch you set
        # above the training rows (kept as set) would leave none: one short batch instead
        range_loader=train.loader(cfg.batch_size, shuffle=True, seed=seed,
                                  drop_last=len(train.y) >= cfg.batch_size),
        make_scheduler=lambda optimizer, steps: run_scheduler(ctx, optimizer, steps),
        task=ctx.data.task, fabric=ctx.fabric, grad_clip=cfg.grad_clip, seed=seed,
        constant_lr=cfg.schedule == "constant", schedule=cfg.schedule,  # after any warmup
        # micro-batches as training will use: the range test's loader is whole batches, the
        # short runs' is sliced over the processes
        accumulate=(accumulation_steps(cfg.batch_size, 1, cfg.accumulate_grad_batches),
                    accumulation_steps(cfg.batch_size, ctx.fabric.world_size,
                                       cfg.accumulate_grad_batches)), progress=bar,
        fix_terms="config")  # the run's fixes name its config keys (tune.num_steps)


def _chosen_finding(lr: float, result: Any, measured_at: str) -> Finding:
    """The stage's headline. After find-lr the range and its spread lead, ahead of the prose:
    the summary table cut the headline at ~80 characters, in the middle of them (audit s13
    T1); the evidence carries them for the verdict line and --json."""
    test = result.range_test
    evidence = {"lr": lr, "lr_low": finite_or_none(test.lr_low),
                "lr_high": finite_or_none(test.lr_high),
                "spread_decades": finite_or_none(test.spread_decades),
                "source": "range_test" if result.short is None else "short_runs"}
    if result.short is None:
        return info("tune", "lr_chosen",
                    f"Range {test.lr_low:.3g}-{test.lr_high:.3g}, "
                    f"{spread_text(test.spread_decades)}; learning rate {lr:.3g}, "
                    f"{_lr_source(result)}{measured_at}.", **evidence)
    return info("tune", "lr_chosen", f"Learning rate for training: {lr:.3g}, "
                f"{_lr_source(result)}{measured_at}.", **evidence)


def _lr_source(result: Any) -> str:
    if result.short is None:  # the range and its spread are in the headline's lead
        return ("the range test's point. tune.short_runs is off: `trainwise find-lr` stops "
                "there; `trainwise tune` or `run` adds the short runs")
    if result.short.kept_range_point == "no_learning":
        return (f"the range test's point, kept: none of {len(result.short.candidates)} short "
                "runs learned (short_runs_no_learning)")
    if result.short.kept_range_point == "flat_grid":  # review s13 VT1
        return (f"the range test's point, kept: the {len(result.short.candidates)} short runs "
                "scored alike (short_runs_indistinguishable)")
    how = f"chosen by {len(result.short.candidates)} short runs"
    if result.horizon_factor < 1:
        how += f" and scaled by {result.horizon_factor:.2f} for the whole run's constant lr"
    return how
