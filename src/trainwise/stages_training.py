"""The stages after the model exists: the preflight check and training, with the loader and
schedule the tune stage (stages_tune.py) shares; evaluate is in stages_evaluate.py."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwise import fold_start
from trainwise.amounts import loss_text
from trainwise.checks._common import DEFAULT_LR
from trainwise.checks.initial import from_kept_weights
from trainwise.checks.preflight import preflight
from trainwise.console import console, progress
from trainwise.data.audit import extreme_targets
from trainwise.findings import Finding, error, explained, info
from trainwise.model.class_weights import ClassWeightedCrossEntropy, extreme_weights
from trainwise.resume import checkpoint_extra, resume_state
from trainwise.stages import (
    PREFLIGHT_SAMPLES,
    RunContext,
    eval_batch_size,
    kept_weights,
    own_model,
)
from trainwise.train.batch_norm import batch_parts, batch_too_small, drop_lone_last_batch
from trainwise.train.busy_cpu import BusyCpuWatch
from trainwise.train.callbacks import BestWeights
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_common import TrainingPlan, patience_words
from trainwise.train.diagnose_schedule import CUT_LR_SHARE, after_early_stopping
from trainwise.train.fit_inputs import schedule_in_steps
from trainwise.train.fit_task import loss_rules_checked
from trainwise.train.live_diagnosis import RUN_SHARE, LiveDiagnosis
from trainwise.train.loop import fit
from trainwise.train.sharding import num_steps_per_epoch
from trainwise.train.time_budget import TimeBudget
from trainwise.training_setup import (
    agree_across_processes,
    batch_norm_across_processes,
    checkpoint_target,
    nonfinite_finding,
    writer_callbacks,
)
from trainwise.tune.large_batch import accumulation_steps, warmup_schedule, warmup_steps


def stage_check(ctx: RunContext) -> list[Finding]:
    if not ctx.config.run.checks:
        return [info("check", "skipped", "Preflight checks skipped (run.checks = false).")]
    assert ctx.model is not None and ctx.loss_fn is not None and ctx.data is not None
    # a seeded random subset of the training split: a file sorted by label must not give
    # the checks one class (the user cannot reorder rows we pick)
    x, y = ctx.splits["train"].sample(PREFLIGHT_SAMPLES, seed=ctx.config.run.seed,
                                      stratify=ctx.data.task == "classification")
    findings = from_kept_weights(
        preflight(ctx.model, ctx.loss_fn, x, y, task=ctx.data.task,
                  num_classes=ctx.data.num_classes, make_optimizer=check_optimizer(ctx),
                  seed=ctx.config.run.seed), kept_weights(ctx))
    for finding in findings:  # the tune stage reads the range test as fine-tuning then
        if finding.code == "loss_at_init_trained":
            ctx.starts_trained = ctx.starts_trained or (
                f"its loss at init, {finding.evidence['loss']:.3g}, is far below an "
                "untrained model's")
    return findings + _raised_lr(ctx)


def check_optimizer(ctx: RunContext) -> Any:
    """The optimizer of the checks' short training runs: at the checks' own lr (AdamW 3e-3,
    what trainwise.check uses, no weight decay) unless train.lr is set higher, then at
    train.lr with the configured weight decay. A smaller train.lr is the tune stage's
    question, not a bug: at 1e-4 a correct MLP on 4 clean classes went 1.4 -> 1.04 in the
    300-step overfit test and the check stopped the run blaming the data pipeline (audit s15
    B4); at 1e-3 it ends at 0.15-0.18 where 3e-3 memorises the batch in 140-160 (s11 D9)."""
    lr = ctx.config.train.lr
    if lr == "auto" or float(lr) < DEFAULT_LR:
        return None
    return lambda model: ctx.make_optimizer(model, float(lr))


def _raised_lr(ctx: RunContext) -> list[Finding]:
    """An info saying the checks trained at DEFAULT_LR, not the smaller train.lr."""
    lr = ctx.config.train.lr
    if lr == "auto" or float(lr) >= DEFAULT_LR:
        return []
    return [info("check", "check_lr_raised",
                 f"the short trainings of these checks (300 steps at most) ran at lr "
                 f"{DEFAULT_LR:g}, not train.lr = {float(lr):g}, which is too small to show "
                 "in so few steps whether the model can learn; training uses train.lr.",
                 check_lr=DEFAULT_LR, train_lr=float(lr))]


def patience_starts(schedule: str, max_epochs: int) -> int:
    """The epoch from which early stopping counts patience. One-cycle (torch's, pct_start
    0.3) rises to its peak by 30% of the run and its cosine decay reaches half the peak at
    0.3 + 0.7 / 2 = 65%: before that the validation loss is noisy by design, and a stop there
    cuts the annealing that gives much of the final accuracy. The default MNIST-1D run,
    counted from the peak (30%), stopped at epoch 23 of 40 with the lr at 66% of its peak:
    97.8% test accuracy, 99.2% with the schedule run out (schedule_cut's measurement).
    A patience the user set is delayed too (audit s12 L2 weighed honouring it from epoch 1):
    a patience of 8 counted from epoch 1 stopped that run at epoch 11 (94.4%), and a smaller
    one stops sooner still; the delay is said instead, in the config's comment, the README,
    the `trained` summary and the stop reason (BestWeights.stop_reason)."""
    return math.ceil((0.3 + 0.7 * CUT_LR_SHARE) * max_epochs) if schedule == "onecycle" else 0


def run_scheduler(ctx: RunContext, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """train.schedule over `total_steps`; a constant or cosine schedule at an effective batch
    above MAX_MICRO_BATCH starts with a linear warmup (one-cycle has its own)."""
    kind = ctx.config.train.schedule
    if kind == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks,
                                                   total_steps=total_steps)
    warmup = warmup_steps(ctx.config.train.batch_size, kind, total_steps)
    main = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup)
            if kind == "cosine" else None)
    return warmup_schedule(optimizer, main, warmup) if warmup else main


def early_stopping(ctx: RunContext, best_path: Path | None = None) -> BestWeights:
    """The run's early stopping, patience counted from patience_starts: the train stage's and
    each crossval fold's alike."""
    cfg = ctx.config.train
    return BestWeights(cfg.patience, best_path,
                       min_epochs=patience_starts(cfg.schedule, cfg.max_epochs))


def step_settings(ctx: RunContext, optimizer: torch.optim.Optimizer, total_steps: int,
                  processes: int) -> dict[str, Any]:
    """fit's keywords that make each step what the run's steps are (the schedule over
    `total_steps`, logging, clipping, gradient accumulation): the train stage's and each
    crossval fold's alike."""
    cfg = ctx.config.train
    return {"scheduler": run_scheduler(ctx, optimizer, total_steps),
            "log_every": cfg.log_every, "grad_clip": cfg.grad_clip,
            "accumulate_grad_batches": accumulation_steps(cfg.batch_size, processes,
                                                          cfg.accumulate_grad_batches)}


def training_loader(ctx: RunContext, stage: str) -> tuple[Any, list[Finding]]:
    """The shuffled training loader at train.batch_size, or None and the error when BatchNorm
    would get a batch of one; a short last batch of one is dropped (with a note)."""
    cfg, train = ctx.config.train, ctx.splits["train"]
    parts = batch_parts(cfg.batch_size, ctx.fabric.world_size, cfg.accumulate_grad_batches)
    too_small = batch_too_small(ctx.model, len(train.y), cfg.batch_size, parts, stage)
    if too_small is not None:
        return None, [too_small]
    drop, notes = drop_lone_last_batch(ctx.model, len(train.y), cfg.batch_size, parts, stage)
    return train.loader(cfg.batch_size, shuffle=True, seed=ctx.config.run.seed,
                        drop_last=drop), notes


def _before_training(ctx: RunContext) -> tuple[Any, list[Finding]]:
    """(training loader, notes), or (None, notes ending in the error) when the processes
    disagree or BatchNorm would get a batch of one."""
    problem = agree_across_processes(ctx)
    if problem:
        return None, [problem]
    notes = batch_norm_across_processes(ctx)  # may swap in SyncBatchNorm: before the loader
    train_loader, more = training_loader(ctx, "train")
    return train_loader, notes + more  # on a refusal `more` holds the error, after the notes


def _restore_tuned(ctx: RunContext, checkpoint: dict[str, Any] | None) -> None:
    """On resume, the tuned lr and batch size from the checkpoint: the tune stage is not rerun."""
    if checkpoint is not None:
        ctx.lr = checkpoint["extra"]["lr"]
        ctx.config.train.batch_size = checkpoint["extra"]["batch_size"]
        ctx.meta["batch_size"] = ctx.config.train.batch_size  # as stages_tune.py records it


def stage_train(ctx: RunContext) -> list[Finding]:
    cfg, seed = ctx.config.train, ctx.config.run.seed
    assert ctx.model is not None and ctx.loss_fn is not None and ctx.data is not None
    checkpoint = getattr(ctx, "checkpoint", None)  # set when resuming (trainwise.resume)
    _restore_tuned(ctx, checkpoint)
    train_loader, notes = _before_training(ctx)
    if train_loader is None:  # notes end in the error
        return notes
    checkpoint_path, no_checkpoints = checkpoint_target(ctx)
    fold_start.begin(ctx, resuming=checkpoint is not None)  # the folds' starting weights
    val_loader = ctx.splits["val"].loader(eval_batch_size("val", cfg.batch_size),
                                          shuffle=False, seed=seed)
    optimizer = ctx.make_optimizer(ctx.model, ctx.lr)
    total_steps = cfg.max_epochs * num_steps_per_epoch(train_loader, ctx.fabric.world_size)
    best = early_stopping(ctx, ctx.run.checkpoint_path("best")
                          if ctx.fabric.is_global_zero else None)
    resumed = resume_state(ctx.run, checkpoint, ctx.fabric.is_global_zero)
    busy_cpu = BusyCpuWatch(on_cpu=ctx.fabric.device.type == "cpu")
    budget = ([TimeBudget(cfg.max_minutes, agree=lambda stop: ctx.fabric.broadcast(stop, src=0))]
              if cfg.max_minutes > 0 else [])
    # run_scheduler's schedule, over total_steps; the check stage ran check()'s loss rules
    checked = loss_rules_checked(ctx.config.run.checks and checkpoint is None)
    with progress() as bar, schedule_in_steps(), checked:
        # the user's after early stopping (they see its verdict) and before the writers (a
        # metric they add to an epoch row reaches history.jsonl); the live diagnosis last: it
        # reads the epoch's stop and row
        callbacks = [best, *budget, busy_cpu, *ctx.user_callbacks, *writer_callbacks(
            ctx, bar, total_steps, checkpoint and checkpoint["train_state"]["step"]),
            live_diagnosis(ctx, _training_plan(ctx, total_steps, best.min_epochs))]
        state = fit(ctx.model, train_loader, val_loader, optimizer=optimizer,
                    loss_fn=ctx.loss_fn, max_epochs=cfg.max_epochs, task=ctx.data.task,
                    fabric=ctx.fabric, callbacks=callbacks, layer_every=cfg.layer_every,
                    **step_settings(ctx, optimizer, total_steps, ctx.fabric.world_size),
                    checkpoint_path=checkpoint_path,
                    checkpoint_every=ctx.config.run.checkpoint_every_steps,
                    checkpoint_extra={**checkpoint_extra(ctx.meta, ctx.lr),
                                      "batch_size": cfg.batch_size},
                    resume_state=resumed, target_units=ctx.target_units())
    ctx.history, ctx.trained_model = state.history, state.model
    clock_epoch = next((b.stopped_at[0] for b in budget if b.stopped_at), None)
    fold_start.finish(ctx, clock_epoch)
    plan = _training_plan(ctx, total_steps, best.min_epochs,
                          clock_stopped=clock_epoch is not None)
    # the evaluate stage's "train longer" has no plan: it reads this (None: not the clock)
    ctx.meta["time_budget_minutes"] = plan.time_budget_minutes
    findings = diagnose(state.history, num_classes=ctx.data.num_classes or None, plan=plan)
    findings += [f for f in [busy_cpu.finding(), *(b.finding(cfg.max_epochs, cfg.schedule)
                                                   for b in budget)] if f is not None]
    if best.early_stopping.should_stop:  # patience ran out (a NaN stops the loop, not it)
        findings = after_early_stopping(findings, state.history, plan)
    if cfg.class_weights == "balanced" and ctx.data.task == "classification":
        findings = [_weighted_calibration(f) for f in findings]
    epochs = [row for row in state.history if row["kind"] == "epoch"]
    es = best.early_stopping
    summary = (f"Trained {len(epochs)} epochs ({state.step} steps) at peak lr {ctx.lr:.3g}; "
               f"best validation loss {loss_text(es.best_loss)} at epoch {es.best_epoch}"
               + (_mean_loss_note(ctx.splits["val"].y, es.best_loss)
                  if ctx.data.task == "regression" else "."))
    summary += _patience_note(best, epochs[-1]["epoch"] if epochs else 0, cfg.max_epochs)
    if state.resumed_from_step is not None:
        summary += f" Resumed from the checkpoint at step {state.resumed_from_step}."
    if state.stop_reason:  # a callback's "stopped by Mine" read "Stopped: stopped by Mine."
        reason = state.stop_reason
        summary += (f" {reason[0].upper()}{reason[1:]}." if reason.startswith("stopped ")
                    else f" Stopped: {reason}.")
        if ctx.fabric.is_global_zero:  # once, as the progress bar; a NaN fails the run too
            console.print(stop_line(state, es, state.nonfinite is not None or any(
                f.severity.value == "error" for f in findings)), soft_wrap=True)
    findings[:0] = [info("train", "trained", summary, best_epoch=es.best_epoch,
                         best_val_loss=es.best_loss, num_steps=state.step,
                         patience=cfg.patience, patience_from=best.min_epochs or 1), *notes,
                     *no_checkpoints]
    if state.nonfinite is not None:  # never continue silently: the recipe stops here
        diverged = next((f for f in findings if f.code == "divergence"), None)
        findings = [f for f in findings if f.code != "divergence"]  # one NaN, one finding
        findings.append(nonfinite_finding(ctx, state.nonfinite, state.checkpoint_step,
                                          diverged))
    if ctx.data.task == "regression":
        findings = _blame_extreme_targets(findings, ctx.splits["train"].y,
                                          ctx.trained_targets(), ctx.target_log)
    findings = blame_extreme_weights(ctx, findings)
    diagnosed = any(f.severity.value == "error" for f in findings)
    if not diagnosed and not any(math.isfinite(row["val_loss"]) for row in epochs):
        findings.append(error("train", "no_finite_val_loss",
                              "No epoch produced a finite validation loss.",
                              "Lower the learning rate (tune stage) or check the inputs for "
                              "extreme values (data stage)."))
    return findings


def _mean_loss_note(val_y: Any, best_loss: float) -> str:
    """What predicting the training rows' mean scores on the validation rows, in val_loss's
    units: the MSE of (y_val - mean_train) / std_train. It is 1 only when the validation rows
    spread as the training rows do: two outliers in the training rows inflated the std and a
    network that had learned nothing showed 0.585, read as 42% better than the mean (audit
    s14 R11)."""
    y = np.asarray(val_y, dtype=np.float64).reshape(-1)
    if not len(y):
        return " (MSE of the target standardised by the training rows' mean and std)."
    mean_loss = float(np.mean(y ** 2))  # the mean predicts 0 on the standardised scale
    share = 1 - best_loss / mean_loss if mean_loss > 0 else 0.0
    verdict = (f"{share:.0%} below it" if share >= 0.005 else
               "no better than it: the network has not learned more than the mean")
    return (" (MSE of the target standardised by the training rows' mean and std; predicting "
            f"that mean scores {loss_text(mean_loss)} on these validation rows, so the best is "
            f"{verdict}).")


def _patience_note(best: BestWeights, last_epoch: int, max_epochs: int) -> str:
    """The `trained` summary's sentence on when early stopping starts counting, when that is
    not epoch 1 (a Keras or Lightning user expects epoch 1: audit s12 L2). Only where patience
    could act (the run reached best.min_epochs and min_epochs + patience - 1, the first epoch
    it can stop at, is within train.max_epochs: a 2-epoch run never stops on patience 8) and
    the stop reason does not say it already (review s12 VT4)."""
    start, patience = best.min_epochs, best.early_stopping.patience
    if start <= 1 or last_epoch < start or start + patience - 1 > max_epochs \
            or best.early_stopping.should_stop:
        return ""
    return (f" Early stopping ({patience_words(patience, start)}) waited until one-cycle had "
            "annealed the lr to half its peak: before that the validation loss is noisy by "
            "design (train.schedule = \"cosine\" or \"constant\" counts from epoch 1).")


def live_diagnosis(ctx: RunContext, plan: TrainingPlan) -> LiveDiagnosis:
    """The diagnosis at epoch ends (train/live_diagnosis.py), on rank 0, its verdict broadcast:
    up to RUN_SHARE of the CPU time, and at once when the training loss rose."""
    return LiveDiagnosis(ctx.data.num_classes or None, plan, share=RUN_SHARE,
                         max_epochs=ctx.config.train.max_epochs, hint="see the report",
                         active=ctx.fabric.is_global_zero,
                         agree=lambda code: ctx.fabric.broadcast(code, src=0))


def stop_line(state: Any, es: Any, failed: bool) -> str:
    """Why training ended before train.max_epochs, and which epoch's weights are kept:
    "early stopping at epoch 6: no better validation loss for 3 epochs since epoch 3
    (train.patience = 3): testing the weights of epoch 3 (val_loss 0.2040)"."""
    why = state.stop_reason if state.stop_reason.startswith("early stopping") \
        else f"training stopped at epoch {state.epoch}: {state.stop_reason}"
    if es.best_epoch is None:
        return f"{why}: no epoch had a finite validation loss"
    weights = f"the weights of epoch {es.best_epoch} (val_loss {loss_text(es.best_loss)})"
    return f"{why}: {weights} are kept; the error below ends the run" if failed else (
        f"{why}: testing {weights}")


def _training_plan(ctx: RunContext, total_steps: int, patience_from: int,
                   clock_stopped: bool = False) -> TrainingPlan:
    """What the diagnosis cannot read off the history: where the lr came from, the schedule
    as run_scheduler built it, the epoch early stopping counted from (BestWeights.min_epochs),
    and whether train.max_minutes ended training (`clock_stopped`: the fixes then say to raise
    it, as raising max_epochs would change nothing)."""
    cfg = ctx.config.train
    return TrainingPlan(
        lr_from_config=None if cfg.lr == "auto" else float(cfg.lr), schedule=cfg.schedule,
        warmup=cfg.schedule == "onecycle" or warmup_steps(cfg.batch_size, cfg.schedule,
                                                         total_steps) > 0,
        decays=cfg.schedule != "constant", planned_steps=total_steps,
        planned_epochs=cfg.max_epochs, val_rows=len(ctx.splits["val"].y),
        leak_columns=leak_columns(ctx), class_names=tuple(map(str, ctx.data.class_names or ())),
        class_weighted=cfg.class_weights == "balanced",
        train_class_counts=tuple(((ctx.meta.get("data") or {}).get("class_counts") or {})
                                 .get("train") or ()),
        time_budget_minutes=cfg.max_minutes if clock_stopped else None,
        patience=cfg.patience, patience_from=patience_from or 1,
        weight_decay=cfg.weight_decay, dropout=_baseline_dropout(ctx),
        target_standardised=ctx.data.task == "regression")


def _baseline_dropout(ctx: RunContext) -> float | None:
    """model.dropout where it acts: every built-in baseline has dropout layers it sets;
    your own module (model= or "pkg.module:Class") ignores the key."""
    return None if own_model(ctx) else ctx.config.model.dropout


def leak_columns(ctx: RunContext) -> tuple[str, ...]:
    """The features the data stage flagged as target_leak (none for a run resumed from a
    folder written before they were recorded)."""
    return tuple((ctx.meta.get("data") or {}).get("target_leaks") or ())


def _weighted_calibration(finding: Finding) -> Finding:
    """Class weights move probability toward the rare classes on purpose: a confidence gap is
    then what the weights do, not a fault that label smoothing or temperature fixes."""
    if finding.code not in ("overconfidence", "underconfidence"):
        return finding
    return explained(
        finding, "With train.class_weights = \"balanced\" the predicted probabilities "
        "overstate the rare classes by design, so this gap is expected.",
        "Nothing to do for the weighted run; read its probabilities as scores, or train with "
        "class_weights = \"none\" where calibrated probabilities matter.")


EXPLOSIONS = ("divergence", "loss_exploding", "non_finite_loss", "gradient_spike")
# what extreme class weights do to training and to the range test (model/class_weights.py)
WEIGHT_EFFECTS = (*EXPLOSIONS, "lr_range_no_descent", "lr_range_unstable")


def blame_extreme_weights(ctx: RunContext, findings: list[Finding]) -> list[Finding]:
    """Spikes and a range test that did not fall under extreme class weights: the weights
    are the first suspect, before the data or the lr the rules name (audit s9 I8)."""
    if not isinstance(ctx.loss_fn, ClassWeightedCrossEntropy):
        return findings
    extreme = extreme_weights(ctx.loss_fn.weights, ctx.splits["train"].y, ctx.data.class_names,
                              ctx.config.train.batch_size)
    if extreme is None:
        return findings
    return [extreme.blame(f) if f.code in WEIGHT_EFFECTS else f for f in findings]


def _blame_extreme_targets(findings: list[Finding], train_targets: Any,
                          all_targets: Any = None, log: str = "") -> list[Finding]:
    """A loss that explodes on a regression with extreme targets: the data stage's
    target_outliers is the first suspect, before the lr the rule names (METHOD.md: the fault
    is usually one stage earlier). `all_targets`: every row's (the data stage counted them
    all: "3 values" there, "the 2" here read as a contradiction, audit s14 R9); `log`: the
    log already in force, not advised again."""
    far = extreme_targets(np.asarray(train_targets))
    if not len(far):
        return findings
    total = len(extreme_targets(np.asarray(all_targets))) if all_targets is not None else 0
    which = (f"the {len(far)} of the {total} extreme target values the data stage named "
             "(target_outliers) that are in the training split" if total > len(far) else
             f"the {len(far)} extreme target values the data stage named (target_outliers)")
    remedy = ("fix or drop them (the log, data.target_transform = \"log\", is already in "
              "force)" if log else "fix or drop them, or train on their log "
              "(data.target_transform = \"log\")")
    first = (f"First look at {which}: a squared loss on them can explode whatever the lr; "
             f"{remedy}. Then: ")
    return [dataclasses.replace(f, fix=first + (f.fix or ""), evidence={
        **f.evidence, "extreme_targets": len(far)}) if f.code in EXPLOSIONS else f
        for f in findings]
