"""What stage_train needs around `fit`: process agreement, rank-0 writers, the NaN finding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from trainwise.console import ProgressBar
from trainwise.findings import Finding, error, info
from trainwise.stages import RunContext
from trainwise.train.batch_norm import has_batch_norm
from trainwise.train.callbacks import HistoryWriter, TensorBoardLogger
from trainwise.train.diagnose_nonfinite import calm_before, fault_fix, fault_message


def agree_across_processes(ctx: RunContext) -> Finding | None:
    """Every process must train on the same split with the same learning rate; rank 0's lr
    is taken (a range test on another process could differ in the last digit on a GPU)."""
    fabric, cfg = ctx.fabric, ctx.config.train
    world = fabric.world_size
    if world == 1:
        return None
    if cfg.batch_size % world:
        return error("train", "batch_not_divisible", f"train.batch_size {cfg.batch_size} does "
                     f"not split evenly over {world} processes.", f"Set train.batch_size to a "
                     f"multiple of {world} (devices x num_nodes); it is the batch of one step.")
    smallest = min(len(ctx.splits["val"].y), len(ctx.splits["test"].y))
    if smallest < world:
        return error("train", "split_too_small", f"A split has {smallest} samples, fewer than "
                     f"the {world} processes evaluating it.", "Use fewer devices or more data.")
    mine = ctx.meta.get("split", {}).get("fingerprint", "")
    if fabric.broadcast(mine, src=0) != mine:
        return error("train", "split_differs", f"Process {fabric.global_rank} made another split "
                     "than process 0.", "Check that every machine reads the same data files.")
    ctx.lr = float(fabric.broadcast(ctx.lr, src=0))
    return None


def batch_norm_across_processes(ctx: RunContext) -> list[Finding]:
    """Batch norm over the global batch on GPUs (SyncBatchNorm); per process on the CPU,
    where torch's SyncBatchNorm does not run, so results drift a little from one device."""
    model = ctx.model
    if ctx.fabric.world_size == 1 or not has_batch_norm(model):
        return []
    if ctx.fabric.device.type == "cuda":
        ctx.model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return [info("train", "sync_batch_norm", "Batch norm layers use the statistics of the "
                     "whole batch across processes (SyncBatchNorm).")]
    return [info("train", "batch_norm_per_process", f"Batch norm statistics come from each "
                 f"process's {ctx.config.train.batch_size // ctx.fabric.world_size} samples, not "
                 f"the whole batch of {ctx.config.train.batch_size} (SyncBatchNorm needs GPUs): "
                 "results differ slightly from one device.")]


def checkpoint_target(ctx: RunContext) -> tuple[Path | None, list[Finding]]:
    """checkpoints/last.pt, on every strategy: under FSDP the shards are gathered into one
    file with a one-device run's layout (train/full_state.py)."""
    return ctx.run.checkpoint_path("last"), []


def writer_callbacks(ctx: RunContext, bar: Any, total_steps: int,
                     resumed_step: int | None) -> list[Any]:
    """History, TensorBoard and the progress bar: on global rank 0 only."""
    if not ctx.fabric.is_global_zero:
        return []
    purge = None if resumed_step is None else resumed_step + 1
    progress_bar = ProgressBar(bar, total_steps, max_minutes=ctx.config.train.max_minutes)
    bar.update(progress_bar.task, completed=resumed_step or 0)
    return [HistoryWriter(ctx.run), TensorBoardLogger(ctx.run.tensorboard_dir, purge_step=purge),
            progress_bar]


def nonfinite_finding(ctx: RunContext, nonfinite: dict[str, Any], last_good_step: int | None,
                      divergence: Finding | None = None) -> Finding:
    """Write the offending batch's samples to nonfinite_batch.json and say what to do: the one
    finding of a NaN/inf. `divergence` is the diagnosis's finding of the same step, folded
    into this one: its fix was built with the run's TrainingPlan (ctx.history has no plan, so
    a rule rerun on it said "rerun the range test" where train.lr was set: review s12 VT2)."""
    positions = nonfinite.get("sample_indices")
    rows = None
    train_rows = ctx.splits["train"].rows  # split.npz's 'train': position -> data row
    if positions is not None and train_rows is not None:
        rows = train_rows[np.asarray(positions, dtype=np.int64)].tolist()
    record = {**nonfinite, "data_rows": rows, "last_good_checkpoint_step": last_good_step,
              "note": "sample_indices index the training part; data_rows the data set as "
                      "loaded (after data.max_samples)"}
    if ctx.fabric.is_global_zero:
        ctx.run.write_json("nonfinite_batch.json", record)
    shown = ", ".join(map(str, (rows or positions or [])[:8]))
    batch = (f"The batch's samples ({shown}{', ...' if len(rows or positions or []) > 8 else ''})"
             f" are in nonfinite_batch.json; checkpoints/last.pt is the last good state (step "
             f"{last_good_step}).")
    history = getattr(ctx, "history", None) or []
    calm = calm_before(history, nonfinite["step"])
    found = error("train", "non_finite_loss",
                  f"{_nonfinite_what(nonfinite, calm)} {_where_stopped(ctx, nonfinite, history)}"
                  f" {batch}", fault_fix("nonfinite_batch.json: sample_indices, data_rows")
                  if calm else _divergence_fix(divergence),
                  **record, **({"cause": "numerical_fault", **calm} if calm else {}))
    return replace(found, step=nonfinite["step"])  # the curves mark it, as they did divergence


def _nonfinite_what(nonfinite: dict[str, Any], calm: dict[str, Any] | None) -> str:
    if calm is None:  # it climbed first (divergence), or too few steps before it to tell
        return f"The loss or gradient became NaN/inf at step {nonfinite['step']} (epoch " \
               f"{nonfinite['epoch']})."
    return fault_message("loss or gradient", "NaN/inf", nonfinite["step"], calm)


def _divergence_fix(divergence: Finding | None) -> str:
    """The diagnosis's fix for a NaN after a rise (its lr advice knows whether the config set
    the lr, and float16's floor; it already says to look for extreme inputs), then where the
    batch's samples are."""
    first = divergence.fix if divergence is not None else (
        "Lower the learning rate or set train.grad_clip (tune stage).")
    return f"{first} Inspect the batch's samples (nonfinite_batch.json), then start a new run."


def _where_stopped(ctx: RunContext, nonfinite: dict[str, Any], history: list[Any]) -> str:
    """Where training stopped: the loop checks for NaN when it moves the logged values to the
    host, every train.log_every steps and at each epoch's end (a check per step would stall
    the GPU), so it may stop a few steps after the NaN (audit s12 L7: NaN at 60, stop at 65)."""
    step = nonfinite["step"]
    stopped = max((int(row["step"]) for row in history
                   if row.get("kind") == "step" and isinstance(row.get("step"), int)),
                  default=step)
    if stopped <= step:
        return "Training stopped at that step."
    every = ctx.config.train.log_every
    return (f"Detected at step {stopped} (checked every train.log_every = {every} steps and "
            f"at each epoch's end); training stopped there, after {stopped - step} more "
            f"step{'s' if stopped - step > 1 else ''} with non-finite values.")
