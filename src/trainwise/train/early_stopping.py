"""Early stopping on validation loss with Keras semantics.

`patience` counts epochs without improvement: with patience=3 and the best loss at epoch 4,
training stops after epoch 7. An epoch improves when `val_loss < best_loss - min_delta`
(Keras `EarlyStopping(mode="min")`). A non-finite loss stops at once when `check_finite`
is on (Lightning's `check_finite`): a NaN never recovers, and waiting only burns compute.
"""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Tracks the best validation loss; `should_stop` turns True when patience runs out."""

    def __init__(self, patience: int, min_delta: float = 0.0, check_finite: bool = True):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0 (epochs without improvement), "
                             f"got {patience!r}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0 (the smallest decrease "
                             f"that counts as an improvement), got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.check_finite = check_finite
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.wait = 0  # epochs since the last improvement
        self.should_stop = False
        self.stopped_epoch: int | None = None

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when it is a new best."""
        val_loss = float(val_loss)
        if not math.isfinite(val_loss):
            if self.check_finite:
                self._stop(epoch)
            else:
                self._wait_one(epoch)
            return False
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.wait = val_loss, epoch, 0
            return True
        self._wait_one(epoch)
        return False

    def _wait_one(self, epoch: int) -> None:
        self.wait += 1
        if self.wait >= self.patience and self.best_epoch is not None:
            self._stop(epoch)

    def _stop(self, epoch: int) -> None:
        if not self.should_stop:
            self.should_stop, self.stopped_epoch = True, epoch

    def state_dict(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta,
                "check_finite": self.check_finite, "best_loss": self.best_loss,
                "best_epoch": self.best_epoch, "wait": self.wait,
                "should_stop": self.should_stop, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`, so a resumed run stops where an uninterrupted one would."""
        missing = {"best_loss", "best_epoch", "wait", "should_stop"} - set(state)
        if missing:
            raise KeyError(f"EarlyStopping state lacks {sorted(missing)}; pass the dict "
                           f"returned by EarlyStopping.state_dict()")
        self.patience = int(state.get("patience", self.patience))
        self.min_delta = float(state.get("min_delta", self.min_delta))
        self.check_finite = bool(state.get("check_finite", self.check_finite))
        self.best_loss = float(state["best_loss"])
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
        self.should_stop = bool(state["should_stop"])
        self.stopped_epoch = state.get("stopped_epoch")

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"best_loss={self.best_loss:.4g}, best_epoch={self.best_epoch}, "
                f"wait={self.wait}, should_stop={self.should_stop})")
