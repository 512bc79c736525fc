"""The crossval stage (split.num_folds > 1): the run's model trained again on every other fold,
so a small data set's validation score comes with its spread instead of one lucky draw (audit
s11 M5: on 150 rows one fold's accuracy was 80% with an interval of 63-91%).

Each fold trains as the run did: the same initial weights, lr and batch size (tuned once, on
the run's fold), schedule, early stopping and max_epochs, with its inputs (and a regression
target) standardised by its own training rows. It is scored at its best epoch on its own
validation rows. The run's fold is not trained twice: its numbers come from the run's history.
The test part is never touched here; it scores the run's model once, in the evaluate stage.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from trainwise.console import ProgressBar, console, progress
from trainwise.data.figures import save_png
from trainwise.findings import Finding, info, warning
from trainwise.stages import RunContext, eval_batch_size, fit_parts
from trainwise.stages_training import patience_starts, run_scheduler
from trainwise.train.batch_norm import batch_parts, drop_lone_last_batch
from trainwise.train.callbacks import BestWeights
from trainwise.train.loop import fit
from trainwise.train.regression_predictions import TargetUnits
from trainwise.train.sharding import num_steps_per_epoch
from trainwise.tune.batch_size import accumulation_steps

# The score each fold reports: what a reader compares across folds, in the task's own units.
METRIC = {"classification": ("val_accuracy", "validation accuracy"),
          "regression": ("val_rmse", "validation RMSE")}
WIDE_SPREAD = 0.10  # folds' accuracies 10+ points apart: the run's one fold is a draw from a
# wide spread (a 30-row fold: one row is 3 points, so 10 points is 3+ rows' worth)


def stage_crossval(ctx: RunContext) -> list[Finding]:
    """Train every fold but the run's; an info with the mean and spread over all folds."""
    assert ctx.data is not None and ctx.model is not None
    if not ctx.folds or ctx.initial_weights is None:  # until="crossval" on a single split
        return [info("crossval", "crossval_skipped", "One validation split (split.num_folds = "
                     "1): nothing to cross-validate. Set split.num_folds = 5 to train every "
                     "fold and see the spread of the validation score.")]
    if ctx.fabric.world_size > 1:
        return [info("crossval", "crossval_skipped", "Cross-validation runs on one process "
                     "only; this run used several, so only its own fold was trained.")]
    key, _ = METRIC[ctx.data.task]
    rows: list[dict[str, Any]] = []
    for j, (train, val) in enumerate(ctx.folds):
        if j == ctx.trained_fold:
            best = _best_row(ctx.history)
        else:
            with progress() as bar:
                best = _train_fold(ctx, j, train, val, bar)
        rows.append({"fold": j, "train_rows": len(train), "val_rows": len(val),
                     "best_epoch": best.get("epoch"), "val_loss": best.get("val_loss"),
                     key: best.get(key), "trained_by": "run" if j == ctx.trained_fold
                     else "crossval"})
        console.print(f"fold {j} ({j + 1} of {len(ctx.folds)}): "
                      f"{_score_text(ctx, best.get(key))} at epoch {best.get('epoch')}",
                      soft_wrap=True)
    summary = _summary(ctx, rows)
    _add_figure(ctx, rows)
    return [summary]


def _train_fold(ctx: RunContext, fold: int, train: np.ndarray, val: np.ndarray,
                bar: Any) -> dict[str, Any]:
    """Fold `fold` trained from the run's initial weights; its best epoch's history row."""
    cfg, seed = ctx.config.train, ctx.config.run.seed
    log = ctx.data.task == "regression" and ctx.config.data.target_transform == "log"
    parts = fit_parts(ctx.data, train, val, ctx.config.data.augment, log)
    model = copy.deepcopy(ctx.model)
    model.load_state_dict(ctx.initial_weights)
    pieces = batch_parts(cfg.batch_size, 1, cfg.accumulate_grad_batches)
    drop, _ = drop_lone_last_batch(model, len(train), cfg.batch_size, pieces, "crossval")
    train_loader = parts.train.loader(cfg.batch_size, shuffle=True, seed=seed + fold,
                                      drop_last=drop)
    val_loader = parts.val.loader(eval_batch_size("val", cfg.batch_size), shuffle=False,
                                  seed=seed)
    optimizer = ctx.make_optimizer(model, ctx.lr)
    best = BestWeights(cfg.patience, min_epochs=patience_starts(cfg.schedule, cfg.max_epochs))
    total_steps = cfg.max_epochs * num_steps_per_epoch(train_loader, 1)
    state = fit(model, train_loader, val_loader, optimizer=optimizer, loss_fn=ctx.loss_fn,
                max_epochs=cfg.max_epochs, task=ctx.data.task,
                scheduler=run_scheduler(ctx, optimizer, total_steps), fabric=ctx.fabric,
                callbacks=[best, ProgressBar(bar, total_steps, f"fold {fold}")],
                log_every=cfg.log_every, layer_every=0, grad_clip=cfg.grad_clip,
                accumulate_grad_batches=accumulation_steps(cfg.batch_size, 1,
                                                           cfg.accumulate_grad_batches),
                target_units=TargetUnits(parts.target_mean, parts.target_scale, log))
    return _best_row(state.history)


def _best_row(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch row with the lowest finite validation loss (the weights early stopping keeps);
    {} when no epoch had one."""
    epochs = [row for row in history if row.get("kind") == "epoch"
              and math.isfinite(row.get("val_loss", math.nan))]
    return min(epochs, key=lambda row: row["val_loss"]) if epochs else {}


def _score_text(ctx: RunContext, value: float | None) -> str:
    key, name = METRIC[ctx.data.task]
    if value is None or not math.isfinite(value):
        return f"{name} not available"
    return f"{name} {value:.1%}" if key == "val_accuracy" else f"{name} {value:.4g}"


def _summary(ctx: RunContext, rows: list[dict[str, Any]]) -> Finding:
    key, name = METRIC[ctx.data.task]
    scores = np.array([row[key] for row in rows if row.get(key) is not None], dtype=float)
    scores = scores[np.isfinite(scores)]
    mean, sd = float(scores.mean()), float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
    ctx.meta["cross_validation"] = {"metric": key, "folds": rows, "mean": mean, "std": sd,
                                    "trained_fold": ctx.trained_fold}
    percent = key == "val_accuracy"
    show = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.4g}")
    own = next((row[key] for row in rows if row["fold"] == ctx.trained_fold), None)
    message = (f"Cross-validation over {len(rows)} folds (the same model, lr {ctx.lr:.3g} and "
               f"batch size {ctx.config.train.batch_size} on each): {name} {show(mean)} "
               f"+- {show(sd)} (standard deviation over folds; from {show(scores.min())} to "
               f"{show(scores.max())}). The run's model (fold {ctx.trained_fold}) scored "
               f"{show(own) if own is not None else 'n/a'} and is the one tested.")
    evidence = {"metric": key, "mean": mean, "std": sd, "scores": scores.tolist()}
    if percent and len(scores) > 1 and scores.max() - scores.min() >= WIDE_SPREAD:
        return warning("crossval", "crossval_spread", message + " The folds disagree by "
                       f"{scores.max() - scores.min():.0%}: one split's score is a draw from "
                       "that spread.", "Quote the mean and spread above, not one fold's "
                       "score; more rows narrow it (data stage).", **evidence)
    return info("crossval", "cross_validation", message, **evidence)


def _add_figure(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    """One dot per fold with the mean and +-1 standard deviation: the spread at a glance."""
    key, name = METRIC[ctx.data.task]
    folds = [row for row in rows if row.get(key) is not None and math.isfinite(row[key])]
    if len(folds) < 2:
        return
    scores = np.array([row[key] for row in folds])
    figure = Figure(figsize=(5.5, 2.6))
    ax = figure.subplots()
    ax.axhspan(scores.mean() - scores.std(ddof=1), scores.mean() + scores.std(ddof=1),
               color="0.9", label="mean +- 1 sd")
    ax.axhline(scores.mean(), color="0.5", linewidth=1)
    for row in folds:
        own = row["fold"] == ctx.trained_fold
        ax.plot(row["fold"], row[key], "o", color="C1" if own else "C0",
                label="the run's fold (tested)" if own else None)
    ax.set_xticks([row["fold"] for row in folds])
    ax.set_xlabel("fold")
    ax.set_ylabel(name)
    if key == "val_accuracy":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path = save_png(figure, ctx.run.figure_path("cross_validation.png"))
    ctx.meta["cross_validation"]["figure"] = {  # the report draws it under Training
        "path": str(path.relative_to(ctx.run.path)), "title": "Cross-validation",
        "caption": f"Each fold's {name} at its best epoch, trained from the same initial "
                   "weights with the same lr and batch size; the band is the mean +- one "
                   "standard deviation over folds."}
