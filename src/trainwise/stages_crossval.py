"""The crossval stage (split.num_folds > 1): the run's model trained again on every other fold,
so a small data set's validation score comes with its spread instead of one lucky draw (audit
s11 M5: on 150 rows one fold's accuracy was 80% with an interval of 63-91%).

Each fold trains as the run did: the same initial weights, lr and batch size (tuned once, on
the run's fold), schedule, early stopping and max_epochs (or the epoch train.max_minutes
stopped the run at), with its inputs, a regression target and balanced class weights fitted on
its own training rows. It is scored at its best epoch on its own validation rows. The run's
fold is not trained twice: its numbers come from the run's history. The test part is never
touched here; it scores the run's model once, in the evaluate stage. What the scores say is
train/crossval_verdict.py.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from torch import nn

from trainwise.console import ProgressBar, progress, say
from trainwise.data.figures import save_png
from trainwise.data.periods import (
    GROUPED_KFOLD_FIX,
    SAME_PERIOD_WHY,
    UNSEEN_GROUPS,
    groups_share_period,
)
from trainwise.data.split import TIMED
from trainwise.findings import Finding, info
from trainwise.model.baselines import loss_function
from trainwise.model.class_weights import balanced_class_weights
from trainwise.stages import RunContext, eval_batch_size
from trainwise.stages_split import fit_parts
from trainwise.stages_training import early_stopping, step_settings
from trainwise.train.batch_norm import batch_parts, drop_lone_last_batch
from trainwise.train.crossval_verdict import crossval_figure, crossval_finding
from trainwise.train.crossval_windows import (
    BALANCED,
    METRIC,
    RANKING_KEYS,
    chosen_metric,
    fold_facts,
    ranking_words,
    shown,
)
from trainwise.train.diagnose_common import best_epoch
from trainwise.train.fit_inputs import schedule_in_steps
from trainwise.train.loop import fit
from trainwise.train.regression_predictions import TargetUnits
from trainwise.train.sharding import num_steps_per_epoch


def stage_crossval(ctx: RunContext) -> list[Finding]:
    """Train every fold but the run's; a finding with the mean and spread over all folds."""
    assert ctx.data is not None and ctx.model is not None
    skipped = _skip_reason(ctx)
    if skipped:
        return [info("crossval", "crossval_skipped", skipped)]
    key, _ = METRIC[ctx.data.task]
    note = _groups_share_period(ctx)
    timed = ctx.meta.get("split", {}).get("strategy") in TIMED and not note
    rows = [_fold_row(ctx, j, train, val, key) | _facts(ctx, train, val, timed)
            for j, (train, val) in enumerate(ctx.folds)]
    setup = (f"the same model, lr {ctx.lr:.3g} and batch size {ctx.config.train.batch_size} "
             "on each")
    finding, ctx.meta["cross_validation"] = crossval_finding(
        rows, ctx.data.task, timed, ctx.trained_fold, setup, note)
    _save_figure(ctx, rows, timed)
    return [finding]


def _groups_share_period(ctx: RunContext) -> str:
    """A note when group_time folds are no backtest: the split stage found the groups span one
    shared period (meta split.same_period, periods.py), so the folds are whole groups ordered
    by start (audit s13 F5: 12 stores that all start on one day; fold 0 trained on 2 stores,
    and 2 stores were never validated)."""
    data, split = ctx.data, ctx.meta.get("split", {})
    assert data is not None
    if split.get("strategy") != "group_time" or data.times is None:
        return ""
    same = split.get("same_period")
    if same is None:  # a run folder whose split predates the recorded verdict
        same = groups_share_period(data.times, ctx.folds)
    if not same:
        return ""
    return (f" These folds are whole groups ordered by start time, but {SAME_PERIOD_WHY}: "
            f"each {UNSEEN_GROUPS} (no backtest), and they train on "
            f"different numbers of groups. Instead, {GROUPED_KFOLD_FIX}; "
            "then rerun from the split stage.")


def _skip_reason(ctx: RunContext) -> str:
    """Why the folds cannot be trained here, or ""."""
    if ctx.config.split.num_folds == 1:  # until="crossval" on a single split
        return ("One validation split (split.num_folds = 1): nothing to cross-validate. Set "
                "split.num_folds = 5 to train every fold and see the spread of the validation "
                "score.")
    if not ctx.folds or ctx.initial_weights is None:  # a folder from before they were saved
        return ("Cross-validation not rerun on resume: this run folder's split.npz or "
                "checkpoints/fold_start.pt (the folds and their starting weights) predate this "
                "version. Rerun the whole run (`trainwise run RUN_DIR/config.toml`) to "
                "cross-validate.")
    if ctx.fabric.world_size > 1:
        return ("Cross-validation runs on one process only; this run used several, so only its "
                "own fold was trained.")
    return ""


def _fold_row(ctx: RunContext, fold: int, train: np.ndarray, val: np.ndarray,
              key: str) -> dict[str, Any]:
    """meta.json's row of one fold: trained here, or read from the run's history."""
    best, failed = {}, ""
    if fold == ctx.trained_fold:
        best = best_epoch(ctx.history) or {}
    else:
        try:
            with progress() as bar, schedule_in_steps():  # the run's schedule, in steps
                best = _train_fold(ctx, fold, train, val, bar)
        except Exception as exc:  # noqa: BLE001 - a fold the run's settings cannot train (a
            # short time window, BatchNorm on a few rows) must not cost the run its test
            failed = f"{type(exc).__name__}: {exc}"
    say(f"fold {fold} ({fold + 1} of {len(ctx.folds)}): {METRIC[ctx.data.task][1]} "
        f"{shown(best.get(key), key)}{ranking_words(best)} at epoch {best.get('epoch')}")
    return {"fold": fold, "train_rows": len(train), "val_rows": len(val),
            "best_epoch": best.get("epoch"), "val_loss": best.get("val_loss"),
            key: best.get(key), **_balanced(best),
            **{k: best[k] for k in RANKING_KEYS if best.get(k) is not None},
            "trained_by": "run" if fold == ctx.trained_fold else "crossval",
            **({"error": failed[:300]} if failed else {})}


def _balanced(best: dict[str, Any]) -> dict[str, Any]:
    """The fold's balanced accuracy beside its accuracy (a classification's epoch rows carry
    it): the metric the verdict quotes when the classes are imbalanced."""
    value = best.get(BALANCED[0])
    return {} if value is None else {BALANCED[0]: value}


def _facts(ctx: RunContext, train: np.ndarray, val: np.ndarray, timed: bool) -> dict[str, Any]:
    """The fold's class counts or naive baselines, and its time span on time folds
    (crossval_windows.fold_facts); the previous value only on a split of each series by time,
    where the row before a validation row is known when it is forecast."""
    data = ctx.data
    assert data is not None
    times = data.times if timed else None
    return fold_facts(data.y, train, val, data.task, times, data.groups,
                      per_series=ctx.meta.get("split", {}).get("strategy") == "time")


def _train_fold(ctx: RunContext, fold: int, train: np.ndarray, val: np.ndarray,
                bar: Any) -> dict[str, Any]:
    """Fold `fold` trained from the run's initial weights; its best epoch's history row."""
    cfg, seed, data = ctx.config.train, ctx.config.run.seed, ctx.data
    log = ctx.target_log  # the split stage's choice: "log", "log1p" or "" (none)
    parts = fit_parts(data, train, val, ctx.config.data.augment, log)
    model = copy.deepcopy(ctx.model)
    model.load_state_dict(ctx.initial_weights)
    pieces = batch_parts(cfg.batch_size, 1, cfg.accumulate_grad_batches)
    drop, _ = drop_lone_last_batch(model, len(train), cfg.batch_size, pieces, "crossval")
    train_loader = parts.train.loader(cfg.batch_size, shuffle=True, seed=seed + fold,
                                      drop_last=drop)
    val_loader = parts.val.loader(eval_batch_size("val", cfg.batch_size), shuffle=False,
                                  seed=seed)
    optimizer = ctx.make_optimizer(model, ctx.lr)
    total_steps = cfg.max_epochs * num_steps_per_epoch(train_loader, 1)  # the run's schedule,
    # cut where the run's time budget cut it
    state = fit(model, train_loader, val_loader, optimizer=optimizer,
                loss_fn=_fold_loss(ctx, parts.train.y), max_epochs=ctx.epochs_cap or
                cfg.max_epochs, task=data.task, fabric=ctx.fabric,
                callbacks=[early_stopping(ctx), ProgressBar(bar, total_steps, f"fold {fold}")],
                layer_every=0, **step_settings(ctx, optimizer, total_steps, 1),
                target_units=TargetUnits(parts.target_mean, parts.target_scale, log))
    return best_epoch(state.history) or {}


def _fold_loss(ctx: RunContext, y_train: np.ndarray) -> nn.Module:
    """The run's loss, with balanced class weights counted on this fold's training rows (the
    run's were counted on its own, which hold this fold's validation rows)."""
    assert ctx.loss_fn is not None and ctx.data is not None
    if ctx.config.train.class_weights != "balanced" or ctx.data.task != "classification":
        return ctx.loss_fn
    return loss_function(ctx.data.task, balanced_class_weights(y_train, ctx.data.num_classes))


def _save_figure(ctx: RunContext, rows: list[dict[str, Any]], timed: bool) -> None:
    figure = crossval_figure(rows, ctx.data.task, ctx.trained_fold, timed)
    if figure is None:
        return
    path = save_png(figure, ctx.run.figure_path("cross_validation.png"))
    name = chosen_metric(rows, ctx.data.task, METRIC[ctx.data.task])[1]  # as the finding's
    ctx.meta["cross_validation"]["figure"] = {  # the report draws it under Training
        "path": str(path.relative_to(ctx.run.path)), "title": "Cross-validation",
        "caption": f"Each fold's {name} at its best epoch, trained from the same initial "
                   "weights with the same lr and batch size; " + (
                       "later time windows train on more rows; " if timed else "the band is "
                       "the mean +- one standard deviation over folds; ") + "a grey x marks "
                   "the fold's baseline where one is known (always the majority class, the "
                   "previous value or the training mean, as the legend says)."}
