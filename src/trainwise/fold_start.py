"""What the crossval stage needs from the run's own training, kept in checkpoints/fold_start.pt
so that a resumed run cross-validates as the uninterrupted one (review s11 final F1, F2): the
weights training started from (a user's model is trained in place, and a resumed run is handed
that same object, so its weights at resume are trained ones) and the epoch train.max_minutes
stopped training at (a resumed run whose training had already ended never meets its budget).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from trainwise.stages import RunContext
from trainwise.train.callbacks import save_atomically

NAME = "fold_start"


def begin(ctx: RunContext, resuming: bool) -> None:
    """Before training: ctx.initial_weights (and a resumed run's ctx.epochs_cap). A fresh run
    keeps the model's weights as they are now and saves them; a resumed run reads them back
    (None from a folder written before this file existed: the crossval stage says so)."""
    if not ctx.folds:
        ctx.initial_weights = None
        return
    if resuming:
        source = Path(getattr(ctx, "source", None) or ctx.run.path)
        path = source / "checkpoints" / f"{NAME}.pt"
        saved = torch.load(path, weights_only=True) if path.is_file() else {}
        ctx.initial_weights, ctx.epochs_cap = saved.get("model"), saved.get("epochs_cap")
        return
    ctx.initial_weights = copy.deepcopy(ctx.model.state_dict())
    _save(ctx)


def finish(ctx: RunContext, stopped_epoch: int | None) -> None:
    """After training: the epoch the time budget stopped it at, this attempt's or, when this
    resumed attempt met no budget, the first attempt's."""
    if not ctx.folds:
        return
    ctx.epochs_cap = stopped_epoch or ctx.epochs_cap
    _save(ctx)


def _save(ctx: RunContext) -> None:
    if ctx.fabric.is_global_zero and ctx.initial_weights is not None:
        path = ctx.run.checkpoint_path(NAME)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomically({"model": ctx.initial_weights, "epochs_cap": ctx.epochs_cap}, path)
