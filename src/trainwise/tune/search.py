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
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.config import TuneConfig
from trainwise.findings import Finding
from trainwise.tune.lr_range import LrRangeResult, lr_range_test
from trainwise.tune.short_runs import MakeScheduler, ShortRunResult, onecycle, short_runs

SHORT_RUN_FRACTION = 0.15  # each short run gets 15% of the real run's epochs. Calibration
# (5 seeds, worst excess over a one-cycle grid oracle of the refined pick): MNIST-1D 12.5% ->
# 3.2%, 25% -> 3.7%; Friedman-1 13% -> 3.9%, 20% -> 2.3%, 33% -> 3.4%: no gain from longer
# runs, while 15% keeps `trainwise run` on MNIST-1D (40 epochs -> 6 per candidate) < 3 min
MIN_SHORT_RUN_STEPS = 50  # below ~50 steps a compressed one-cycle is mostly warm-up and
# anneal (~15 steps each): on Friedman-1, 32-step runs picked 2.6x too high in 1 of 5 seeds
# (+9% loss), 48-step runs kept all 5 within +2.3%


def short_run_epochs(config: TuneConfig, max_epochs: int, steps_per_epoch: int) -> int:
    """tune.short_run_epochs, or SHORT_RUN_FRACTION of train.max_epochs, raised to reach
    MIN_SHORT_RUN_STEPS optimizer steps (but never past half of max_epochs); at least 1."""
    if config.short_run_epochs != "auto":
        return int(config.short_run_epochs)
    epochs = max(1, round(SHORT_RUN_FRACTION * max_epochs))
    if epochs * steps_per_epoch < MIN_SHORT_RUN_STEPS:
        epochs = max(epochs, min(math.ceil(MIN_SHORT_RUN_STEPS / max(steps_per_epoch, 1)),
                                 max_epochs // 2))
    return epochs


@dataclass
class TuneResult:
    lr: float  # the peak lr to train with; nan when tuning failed
    range_test: LrRangeResult
    short: ShortRunResult | None  # None when short runs are off or the range test failed
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """tune.json; its "batch_size" entry is added by the caller (stage_tune)."""
        short = self.short.to_dict() if self.short else {
            "candidates": [], "chosen_lr": None, "widened": False, "spacing": None,
            "num_epochs": 0}
        rt = self.range_test
        return {**short, "chosen_lr": self.lr if math.isfinite(self.lr) else None,
                "source": "short_runs" if self.short else "range_test",
                "range": {"lr": _finite(rt.lr), "lr_low": _finite(rt.lr_low),
                          "lr_high": _finite(rt.lr_high),
                          "spread_decades": _finite(rt.spread_decades)},
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def tune_lr(model: nn.Module, loss_fn: Callable[..., torch.Tensor], train_loader: Iterable,
            val_loader: Iterable, make_optimizer: Callable[..., torch.optim.Optimizer], *,
            config: TuneConfig | None = None, max_epochs: int = 40,
            range_loader: Iterable | None = None, make_scheduler: MakeScheduler | None = onecycle,
            task: str = "classification", fabric: Fabric | None = None, grad_clip: float = 0.0,
            seed: int = 0) -> TuneResult:
    """Range test (config.num_seeds seeds from `seed`) then, unless config.short_runs is off,
    short runs over its range; `lr` is the chosen one-cycle peak.

    `make_optimizer(model, lr=None)` builds the real optimizer; `range_loader` (default:
    `train_loader`) feeds the range test, e.g. the training loader with drop_last=True.
    Problems come back as error findings in `findings`, never as exceptions.
    """
    config = config or TuneConfig()
    started = time.perf_counter()
    rt = lr_range_test(model, loss_fn, range_loader or train_loader, make_optimizer,
                       start_lr=config.start_lr, end_lr=config.end_lr,
                       num_steps=config.num_steps,
                       seeds=tuple(range(seed, seed + config.num_seeds)))
    result = TuneResult(rt.lr, rt, None, {"range_test": time.perf_counter() - started},
                        list(rt.findings))
    if not config.short_runs or not math.isfinite(rt.lr):
        return result
    started = time.perf_counter()
    result.short = short_runs(
        model, loss_fn, train_loader, val_loader, make_optimizer, lr_low=rt.lr_low,
        lr_high=rt.lr_high,
        num_epochs=short_run_epochs(config, max_epochs, len(train_loader)),  # type: ignore
        num_candidates=config.num_candidates, max_widenings=config.max_widenings,
        make_scheduler=make_scheduler, task=task, fabric=fabric, grad_clip=grad_clip,
        seed=seed)
    result.seconds["short_runs"] = time.perf_counter() - started
    result.findings += result.short.findings
    result.lr = result.short.chosen_lr
    return result


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
