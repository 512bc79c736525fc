"""Built-in callbacks: plain objects with the event methods they need (see loop.emit)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainwise.safe_write import replacing
from trainwise.train.diagnose_common import patience_words
from trainwise.train.early_stopping import EarlyStopping
from trainwise.train.full_state import full_model_state, load_full_model_state

if TYPE_CHECKING:  # the loop imports Lightning, which a Monitor in a user's loop does not need
    from trainwise.train.loop import TrainState


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """Write to a fresh temporary file, fsync, then rename: a kill mid-save never leaves a
    torn file, and a planted link of any name is never written through (review VS9)."""
    with replacing(Path(path), "wb", fsync=True) as handle:
        torch.save(payload, handle)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # Fabric wraps the model; save the user's module


class BestWeights:
    """Early stopping on validation loss; keeps the best weights and restores them at the end.

    Also writes checkpoints/best.pt and checkpoints/last.pt when given their paths.
    """

    def __init__(self, patience: int, best_path: Path | None = None,
                 last_path: Path | None = None, min_epochs: int = 0):
        self.early_stopping = EarlyStopping(patience=patience)
        self.min_epochs = min_epochs  # patience counts only from here (after a warm-up)
        self.best_path, self.last_path = best_path, last_path
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, state: TrainState, row: dict[str, Any], model: nn.Module) -> None:
        val_loss = row["val_loss"]
        module = _unwrap(model)
        if math.isfinite(val_loss) and self.early_stopping.update(row["epoch"], val_loss):
            self.best_state = full_model_state(model)  # gathered whole under FSDP
            if self.best_path:
                save_atomically({"model": self.best_state, "epoch": row["epoch"],
                                 "val_loss": val_loss}, self.best_path)
        if row["epoch"] < self.min_epochs:
            # One-cycle's rising learning rate makes the validation loss noisy by design: a
            # patience of 8 once stopped MNIST-1D at epoch 11 of 40 (94.4% instead of 99.2%).
            self.early_stopping.wait, self.early_stopping.should_stop = 0, False
        if self.last_path:
            save_atomically({"model": module.state_dict(), "epoch": row["epoch"],
                             "step": state.step}, self.last_path)
        if self.early_stopping.should_stop:
            state.should_stop = True
            state.stop_reason = self.stop_reason(row["epoch"])

    def stop_reason(self, epoch: int) -> str:
        """What ended training, with the true count of epochs since the best: with patience
        counted from min_epochs, 2 epochs of patience once ended a run 17 epochs past its
        best, and "no better validation loss for 2 epochs" was false (audit s12 L2). A NaN
        validation loss never gets here: on_epoch_end keeps it from EarlyStopping, and the
        loop stops on the NaN itself."""
        es = self.early_stopping
        return (f"early stopping at epoch {epoch}: no better validation loss for "
                f"{epoch - (es.best_epoch or 0)} epochs since epoch {es.best_epoch} "
                f"({patience_words(es.patience, self.min_epochs)})")

    def on_fit_end(self, model: nn.Module) -> None:
        if self.best_state is not None:
            load_full_model_state(model, self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """Checkpointed with the training state: a resumed run keeps its best weights."""
        return {"early_stopping": self.early_stopping.state_dict(), "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.best_state = state["best_state"]


class HistoryWriter:
    """Appends history rows to the run folder as they arrive, so a crash keeps them."""

    def __init__(self, run: Any):
        self.run = run

    def on_step_end(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.run.append_history(rows)

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.run.append_history([row])


class TensorBoardLogger:
    """Live curves: `tensorboard --logdir runs/`.

    `purge_step`: on resume, events from that step on (written after the checkpoint, before the
    kill) are dropped, so the curves do not fold back on themselves.
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def on_step_end(self, rows: list[dict[str, Any]]) -> None:
        """One point per flushed window of steps (every `log_every` steps): the window's mean
        loss, its largest gradient norm (a spike stays visible), the last lr and throughput;
        per-layer norms at their own steps. history.jsonl keeps every step. Why not every step:
        TensorBoard's writer checksums each event in pure Python, ~80 us an event, ~2% of a
        small CNN's step."""
        if not rows:
            return
        last = rows[-1]
        losses = [r["loss"] for r in rows if isinstance(r.get("loss"), (int, float))]
        grads = [r["grad_norm"] for r in rows if isinstance(r.get("grad_norm"), (int, float))]
        values = {f"step/{key}": last[key] for key in ("lr", "samples_per_second")
                  if isinstance(last.get(key), (int, float))}
        if losses:
            values["step/loss"] = sum(losses) / len(losses)  # NaN stays NaN: a gap, as it should
        if grads:
            values["step/grad_norm_max"] = max(grads, key=lambda g: (math.isnan(g), g))
        self._write(values, last["step"])
        for row in rows:
            layers = row.get("layer_grad_norms") or {}
            self._write({f"layer_grad_norm/{k}": v for k, v in layers.items()}, row["step"])

    def _write(self, values: dict[str, float], step: int) -> None:
        """All values in one event (add_scalar writes one event per value)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))
                                     for tag, value in values.items()])
            self.writer._get_file_writer().add_summary(summary, step)

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self._write({f"epoch/{key}": value for key, value in row.items()
                     if isinstance(value, float) and key not in ("seconds",)}, row["step"])

    def on_fit_end(self) -> None:
        self.writer.close()
