"""diagnose(history): healthy runs stay quiet, each broken run is named by exactly its code.

Histories are synthetic: numpy curves per step (loss, grad_norm, lr) and per epoch
(val_loss, val_accuracy, mean confidence and a confidence histogram), written as the rows
that the loop writes (docs/run_folder.md).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from run_words import diagnose
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES, healthy, list_rules
from trainwise.train.diagnose_common import PLAN_KEY, TrainingPlan

STEPS_PER_EPOCH = 25
NUM_EPOCHS = 30
NUM_STEPS = STEPS_PER_EPOCH * NUM_EPOCHS
VAL_SIZE = 400


@dataclass
class Curves:
    """Per-step and per-epoch curves of one synthetic run."""

    loss: np.ndarray
    grad_norm: np.ndarray
    lr: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    val_confidence: np.ndarray
    num_classes: int | None = 10
    extra_rows: list[dict] = field(default_factory=list)
    skipped_steps: tuple[int, ...] = ()  # float16 steps the loss scaler skipped
    epoch_keys: dict = field(default_factory=dict)  # more keys, the same in every epoch row


def confidence_hist(mean: float, num_classes: int, rng: np.random.Generator) -> list[int]:
    """Top-probability histogram (20 bins) of VAL_SIZE samples with the given mean: a Beta
    between the chance floor 1/C and 1."""
    floor = 1.0 / num_classes
    m = float(np.clip((mean - floor) / (1 - floor), 0.01, 0.99))
    confidences = floor + (1 - floor) * rng.beta(20 * m, 20 * (1 - m), size=VAL_SIZE)
    index = np.minimum((confidences * 20).astype(int), 19)
    return np.bincount(index, minlength=20).tolist()


def rows_from(curves: Curves, seed: int = 0, with_classes: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed + 1000)
    history: list[dict] = []
    num_steps = len(curves.loss)
    for start in range(0, num_steps, STEPS_PER_EPOCH):
        epoch = start // STEPS_PER_EPOCH
        stop = min(start + STEPS_PER_EPOCH, num_steps)
        for i in range(start, stop):
            history.append({"kind": "step", "step": i + 1, "epoch": epoch,
                            "loss": float(curves.loss[i]), "grad_norm": float(curves.grad_norm[i]),
                            "lr": float(curves.lr[i])})
            if i + 1 in curves.skipped_steps:
                history[-1].update(grad_norm=math.inf, skipped=True)
        if epoch >= len(curves.val_loss):
            continue
        conf, acc = float(curves.val_confidence[epoch]), float(curves.val_accuracy[epoch])
        row = {"kind": "epoch", "epoch": epoch, "step": stop,
               "train_loss": float(np.mean(curves.loss[start:stop])),
               "val_loss": float(curves.val_loss[epoch]), "val_accuracy": acc,
               "val_mean_confidence": conf, "val_ece": abs(conf - acc),
               "val_confidence_hist": confidence_hist(conf, curves.num_classes or 10, rng),
               "lr": float(curves.lr[stop - 1]), "seconds": 0.5}
        row.update(copy.deepcopy(curves.epoch_keys))
        if with_classes and curves.num_classes:
            row["num_classes"] = curves.num_classes
        history.append(row)
    return history + curves.extra_rows


# ----------------------------------------------------------------------------- healthy runs
def _noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    return np.exp(rng.normal(0, sigma, size))  # multiplicative, as minibatch losses scatter


def _epoch_t() -> np.ndarray:
    return (np.arange(NUM_EPOCHS) + 1) / NUM_EPOCHS


def _healthy_val(progress_e: np.ndarray, rng: np.random.Generator, floor: float = 0.25,
                 noise: float = 0.03) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    val = (floor + 2.05 * np.exp(-6 * progress_e)) * _noise(rng, len(progress_e), noise)
    acc = np.clip(0.1 + 0.82 * (1 - np.exp(-6 * progress_e)) + rng.normal(0, 0.01, len(val)),
                  0, 1)
    conf = np.clip(acc + rng.normal(0.02, 0.01, len(val)), 0.1, 1)  # slightly over, as nets are
    return val, acc, conf


def healthy_exponential(seed: int = 0) -> Curves:
    """Constant lr, loss decays fast then slowly, batch noise, grad norm settling."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    loss = (0.08 + 2.22 * np.exp(-6 * t)) * _noise(rng, NUM_STEPS, 0.15)
    grad = (0.6 + 2.0 * np.exp(-4 * t)) * _noise(rng, NUM_STEPS, 0.3)
    val, acc, conf = _healthy_val(_epoch_t(), rng)
    return Curves(loss, grad, np.full(NUM_STEPS, 1e-3), val, acc, conf)


def one_cycle_lr(peak: float = 3e-3) -> np.ndarray:
    """torch OneCycleLR shape: cosine warmup over 30% from peak/25, cosine down to peak/1e4."""
    t = np.arange(NUM_STEPS) / NUM_STEPS
    up = peak / 25 + (peak - peak / 25) * (1 - np.cos(np.pi * t / 0.3)) / 2
    down = peak / 1e4 + (peak - peak / 1e4) * (1 + np.cos(np.pi * (t - 0.3) / 0.7)) / 2
    return np.where(t < 0.3, up, down)


def healthy_one_cycle(seed: int = 0) -> Curves:
    """Progress follows the cumulative lr: slow warmup, fast middle, flat annealed end."""
    rng = np.random.default_rng(seed)
    lr = one_cycle_lr()
    progress = np.cumsum(lr) / lr.sum()
    loss = (0.1 + 2.2 * np.exp(-7 * progress)) * _noise(rng, NUM_STEPS, 0.12)
    grad = (0.5 + 1.5 * np.exp(-5 * progress)) * _noise(rng, NUM_STEPS, 0.25)
    epoch_progress = progress[STEPS_PER_EPOCH - 1:: STEPS_PER_EPOCH]
    val, acc, conf = _healthy_val(epoch_progress, rng)
    return Curves(loss, grad, lr, val, acc, conf)


def healthy_flat_val(seed: int = 0) -> Curves:
    """Converges by mid-run; the second half is a noisy flat line for train and val alike."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    loss = (0.3 + 2.0 * np.exp(-12 * t)) * _noise(rng, NUM_STEPS, 0.2)
    grad = (1.0 + 1.0 * np.exp(-8 * t)) * _noise(rng, NUM_STEPS, 0.35)
    val, acc, conf = _healthy_val(np.minimum(2 * _epoch_t(), 1.0) * 1.5, rng, floor=0.4,
                                  noise=0.06)
    return Curves(loss, grad, np.full(NUM_STEPS, 3e-4), val, acc, conf)


def healthy_regression(seed: int = 0) -> Curves:
    """An MSE run that gets near zero: no accuracy or confidence at all."""
    curves = healthy_exponential(seed)
    curves.loss = curves.loss * 0.4 - 0.03
    curves.loss = np.abs(curves.loss) + 1e-3
    curves.val_accuracy = np.full(NUM_EPOCHS, np.nan)
    curves.num_classes = None
    return curves


def healthy_converged_spiky(seed: int = 0) -> Curves:
    """Measured on real MLP runs: once the training loss is ~0, most batches give tiny
    gradients and the short last batch of each epoch (or one hard sample) gives 5-20x more."""
    curves = healthy_one_cycle(seed)
    rng = np.random.default_rng(seed + 11)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    curves.grad_norm = curves.grad_norm * np.where(t > 0.4, 0.05, 1.0)
    last_batches = np.arange(STEPS_PER_EPOCH - 1, NUM_STEPS, STEPS_PER_EPOCH)
    last_batches = last_batches[t[last_batches] > 0.4]
    curves.grad_norm[last_batches] *= rng.uniform(5, 20, len(last_batches))
    return curves


def recipe_plan(**changes) -> dict:
    """The meta row diagnose(plan=...) adds for the default recipe: lr from the range test,
    one-cycle over the whole run."""
    plan = {"lr_from_config": None, "schedule": "onecycle", "warmup": True, "decays": True,
            "planned_steps": NUM_STEPS, "planned_epochs": NUM_EPOCHS, **changes}
    return {"kind": "meta", PLAN_KEY: TrainingPlan(**plan)}


def healthy_one_cycle_planned(seed: int = 0) -> Curves:
    """The default recipe's run, its plan known: one-cycle run to its end."""
    curves = healthy_one_cycle(seed)
    curves.extra_rows = [recipe_plan()]
    return curves


HEALTHY = [healthy_exponential, healthy_one_cycle, healthy_flat_val, healthy_regression,
           healthy_converged_spiky, healthy_one_cycle_planned]


def regression_rows(curves: Curves, seed: int) -> list[dict]:
    rows = rows_from(curves, seed)
    for row in rows:
        if row["kind"] == "epoch" and not np.isfinite(row["val_accuracy"]):
            for key in ("val_accuracy", "val_mean_confidence", "val_ece", "val_confidence_hist"):
                row.pop(key)
    return rows


def build(builder: Callable[..., Curves], seed: int = 0) -> list[dict]:
    curves = builder(seed)
    if builder is unscaled_target:  # R^2 per epoch row, carried in by extra_rows
        r2 = curves.extra_rows.pop()["val_r2"]
        rows = regression_rows(curves, seed)
        for row, value in zip([r for r in rows if r["kind"] == "epoch"], r2, strict=True):
            row["val_r2"] = value
        return rows
    if builder is healthy_regression:
        return regression_rows(curves, seed)
    return rows_from(curves, seed, with_classes=getattr(builder, "with_classes", False))


# ------------------------------------------------------------------------------ broken runs
def diverged(seed: int = 0) -> Curves:
    """lr too high: the loss climbs for 40 steps, then NaN; the loop stops at that step."""
    curves = healthy_exponential(seed)
    nan_at = 400
    climb = np.exp(np.linspace(0, 5, 40))
    curves.loss[nan_at - 40: nan_at] *= climb
    curves.grad_norm[nan_at - 40: nan_at] *= climb
    curves.loss[nan_at] = curves.grad_norm[nan_at] = np.nan
    keep = nan_at + 1
    curves.loss, curves.grad_norm, curves.lr = (a[:keep] for a in
                                                (curves.loss, curves.grad_norm, curves.lr))
    last_epoch = nan_at // STEPS_PER_EPOCH
    curves.val_loss = curves.val_loss[: last_epoch + 1].copy()
    curves.val_loss[last_epoch] = np.nan
    return curves


def nan_from_start(seed: int = 0) -> Curves:
    curves = diverged(seed)
    curves.loss = np.full(3, np.nan)
    curves.grad_norm, curves.lr = np.full(3, np.nan), np.full(3, 1e-3)
    curves.val_loss = np.full(1, np.nan)
    return curves


def loss_explodes(seed: int = 0) -> Curves:
    """Halfway, the loss turns and climbs smoothly to 6x its minimum, and stays there."""
    curves = healthy_exponential(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    rise = 1 + 5 * np.clip((t - 0.5) / 0.2, 0, 1)
    curves.loss = curves.loss * rise
    curves.grad_norm = curves.grad_norm * rise
    epoch_rise = 1 + 5 * np.clip((_epoch_t() - 0.5) / 0.2, 0, 1)
    curves.val_loss = curves.val_loss * epoch_rise
    return curves


def explodes_then_dies(seed: int = 0) -> Curves:
    """Measured with Adam at lr 3: the loss jumps 1e4x on the first update, the ReLUs die,
    and the model sits at chance (ln 10) with small gradients for the rest of the run."""
    curves = plateaus(seed)
    rng = np.random.default_rng(seed + 13)
    burst = 1e4 * np.exp(-np.arange(1, 60) / 8)
    curves.loss[1:60] += burst * _noise(rng, 59, 0.3)
    curves.grad_norm[0] = 0.7
    curves.grad_norm[1:60] = burst / 10 + 0.2
    curves.grad_norm[60:] = 0.2 * _noise(rng, NUM_STEPS - 60, 0.2)
    curves.val_loss[0] = 500.0
    return curves


def memorises(seed: int = 0) -> Curves:
    """Shuffled labels: training loss falls steadily by memorisation, validation only rises."""
    curves = lr_steady_but_slow(seed)
    rng = np.random.default_rng(seed + 17)
    curves.lr = np.full(NUM_STEPS, 1e-3)
    curves.val_loss = (2.31 + 0.6 * _epoch_t() ** 1.5) * _noise(rng, NUM_EPOCHS, 0.005)
    curves.val_accuracy = np.full(NUM_EPOCHS, 0.1)
    curves.val_confidence = np.full(NUM_EPOCHS, 0.15)
    return curves


def labels_in_another_order(seed: int = 0) -> Curves:
    """Validation labels encoded in another class order (audit s15 B15): training learns,
    validation accuracy sits at 3% on 10 classes of 40 rows (chance 10%) and its loss rises."""
    curves = memorises(seed)
    curves.val_accuracy = np.full(NUM_EPOCHS, 0.03)
    curves.epoch_keys = {"val_class_counts": {
        "rows": [40] * 10, "right": [1] * 8 + [2] * 2, "predicted": [40] * 10}}
    return curves


def overfits(seed: int = 0) -> Curves:
    """Train loss keeps falling; val loss bottoms out at epoch 10 and climbs ~60%."""
    curves = healthy_exponential(seed)
    rng = np.random.default_rng(seed + 7)
    epochs = np.arange(NUM_EPOCHS)
    base = 0.35 + 1.9 * np.exp(-0.6 * epochs)
    curves.val_loss = (base + 0.012 * np.maximum(epochs - 10, 0) ** 1.2) * _noise(
        rng, NUM_EPOCHS, 0.02)
    return curves


def plateaus(seed: int = 0) -> Curves:
    """Loss stuck at ln(10) with noise; gradients shrink 3x but do not vanish; model at chance."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    loss = 2.30 * _noise(rng, NUM_STEPS, 0.02)
    grad = (0.3 + 0.7 * np.exp(-5 * t)) * _noise(rng, NUM_STEPS, 0.2)
    val = 2.30 * _noise(rng, NUM_EPOCHS, 0.005)
    acc = 0.1 + rng.normal(0, 0.01, NUM_EPOCHS)
    return Curves(loss, grad, np.full(NUM_STEPS, 1e-3), val, acc, acc + 0.01)


def lr_steady_but_slow(seed: int = 0) -> Curves:
    """lr 1e-6: the loss falls in a straight line, 2.3 -> 1.8, still falling at the end."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    loss = (2.3 - 0.5 * t) * _noise(rng, NUM_STEPS, 0.02)
    grad = 1.0 * _noise(rng, NUM_STEPS, 0.2)
    val = (2.32 - 0.5 * _epoch_t()) * _noise(rng, NUM_EPOCHS, 0.005)
    acc = 0.1 + 0.15 * _epoch_t()
    return Curves(loss, grad, np.full(NUM_STEPS, 1e-6), val, acc, acc)


def lr_tiny_flat(seed: int = 0) -> Curves:
    """lr 1e-7: nothing moves, not even the gradient norm."""
    curves = lr_steady_but_slow(seed)
    rng = np.random.default_rng(seed + 3)
    curves.loss = 2.3 * _noise(rng, NUM_STEPS, 0.03)
    curves.val_loss = np.full(NUM_EPOCHS, 2.31)
    curves.val_accuracy = np.full(NUM_EPOCHS, 0.1)
    curves.val_confidence = np.full(NUM_EPOCHS, 0.11)
    curves.lr = np.full(NUM_STEPS, 1e-7)
    return curves


SPIKE_STEPS = (301, 302, 555)  # 1-based steps as written in the rows


def grad_spikes(seed: int = 0) -> Curves:
    curves = healthy_exponential(seed)
    for step in SPIKE_STEPS:
        curves.grad_norm[step - 1] *= 40
    return curves


def early_corrupt_batch(seed: int = 0) -> Curves:
    """A batch with inputs x100 at step 6, inside the first epoch."""
    curves = healthy_exponential(seed)
    curves.grad_norm[5] *= 15
    return curves


def float16_overflows(seed: int = 0) -> Curves:
    """One step in ten skipped by the float16 loss scaler: a tenth fewer updates."""
    curves = healthy_exponential(seed)
    curves.skipped_steps = tuple(range(7, NUM_STEPS, 10))
    return curves


DIP_STEP = 330  # mid-epoch (epochs end at multiples of STEPS_PER_EPOCH)


def batch_fitted_to_zero(seed: int = 0) -> Curves:
    """A batch scaled 1000x that the model answers right with saturated confidence: its loss
    and gradient underflow to exactly 0 (measured in the zoo on 8x8 digits)."""
    curves = healthy_exponential(seed)
    curves.loss[DIP_STEP - 1] = curves.grad_norm[DIP_STEP - 1] = 0.0
    return curves


VANISH_FROM = 100


def vanishes(seed: int = 0) -> Curves:
    """Gradients collapse to 1e-6x at step 100; the loss stalls at 2.2 (not converged)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(NUM_STEPS)
    grad = np.where(steps < VANISH_FROM, 1.0, 1e-6) * _noise(rng, NUM_STEPS, 0.2)
    loss = (2.2 + 0.1 * np.exp(-steps / 30)) * _noise(rng, NUM_STEPS, 0.01)
    val = np.full(NUM_EPOCHS, 2.05)
    acc = np.full(NUM_EPOCHS, 0.2)
    return Curves(loss, grad, np.full(NUM_STEPS, 1e-3), val, acc, acc + 0.02)


def frozen(seed: int = 0) -> Curves:
    """Every parameter frozen: the gradient norm is exactly 0 and nothing learns."""
    curves = plateaus(seed)
    curves.grad_norm = np.zeros(NUM_STEPS)
    return curves


def overconfident(seed: int = 0) -> Curves:
    """Losses look fine but from epoch 20 the model claims 0.97 while right 80% of the time."""
    curves = healthy_exponential(seed)
    curves.val_accuracy = np.minimum(curves.val_accuracy, 0.80)
    curves.val_confidence = curves.val_accuracy + 0.02
    curves.val_confidence[20:] = 0.97
    return curves


def confused(seed: int = 0) -> Curves:
    """Training loss falls but validation is at chance: val data processed differently."""
    curves = healthy_exponential(seed)
    rng = np.random.default_rng(seed + 5)
    curves.val_loss = 2.30 * _noise(rng, NUM_EPOCHS, 0.01)
    curves.val_accuracy = 0.1 + rng.normal(0, 0.01, NUM_EPOCHS)
    curves.val_confidence = np.full(NUM_EPOCHS, 0.13)
    return curves


def underconfident(seed: int = 0) -> Curves:
    """A softmax before CrossEntropyLoss: right 85% of the time, never above 0.23 confident."""
    curves = healthy_exponential(seed)
    curves.val_confidence = np.minimum(curves.val_confidence, 0.21)
    return curves


def held_up_by_dropout(seed: int = 0) -> Curves:
    """Dropout 0.9 (audit s15 B5): the training loss (epoch means) levels at 1.5, 25% above a
    validation loss that runs with dropout off; accuracy 0.7."""
    curves = healthy_exponential(seed)
    rng = np.random.default_rng(seed + 29)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    curves.loss = (1.5 + 0.8 * np.exp(-30 * t)) * _noise(rng, NUM_STEPS, 0.05)
    means = curves.loss.reshape(NUM_EPOCHS, STEPS_PER_EPOCH).mean(axis=1)
    curves.val_loss = means / 1.25 * _noise(rng, NUM_EPOCHS, 0.005)
    curves.val_accuracy = np.full(NUM_EPOCHS, 0.7)
    curves.val_confidence = np.full(NUM_EPOCHS, 0.68)
    return curves


def leaks_validation(seed: int = 0) -> Curves:
    """Validation rows drawn from the training rows: the validation loss is the training loss
    at each epoch's end (without batch noise), while the loss still falls (2.3 -> 0.16), as
    in the recorded leak (tests/data/mnist1d_leaked_validation.json.gz)."""
    curves = healthy_exponential(seed)
    rng = np.random.default_rng(seed + 23)
    t = np.arange(1, NUM_STEPS + 1) / NUM_STEPS
    curves.loss = (0.05 + 2.25 * np.exp(-3 * t)) * _noise(rng, NUM_STEPS, 0.15)
    ends = t[STEPS_PER_EPOCH - 1::STEPS_PER_EPOCH]
    curves.val_loss = (0.05 + 2.25 * np.exp(-3 * ends)) * _noise(rng, NUM_EPOCHS, 0.01)
    return curves


def label_copied(seed: int = 0) -> Curves:
    """A feature copies the label (audit s8 T1): from epoch 3 every validation row is right
    and sure, the loss ~0, and the data audit flagged the column."""
    curves = healthy_exponential(seed)
    curves.val_loss[2:] = 1e-6
    curves.val_accuracy[2:] = curves.val_confidence[2:] = 1.0
    curves.extra_rows = [recipe_plan(val_rows=VAL_SIZE, leak_columns=("outcome_flag",))]
    return curves


def ordered_batches(seed: int = 0) -> Curves:
    """Data sorted by label, never shuffled: 5 class blocks of 5 steps per epoch; the loss
    jumps where a block starts and collapses inside it, the same way every epoch."""
    curves = healthy_exponential(seed)
    position = np.arange(NUM_STEPS) % STEPS_PER_EPOCH % 5  # step inside its class block
    curves.loss = curves.loss * np.exp(1.2 - 0.6 * position)
    return curves


CUT_EPOCHS = 17  # of 30: one-cycle's lr is then at 69% of its peak


def schedule_cut_short(seed: int = 0) -> Curves:
    """Early stopping ended the default recipe's one-cycle run at epoch 17 of 30, its lr
    still near the peak (the audit's MNIST-1D run: epoch 23 of 40, at 66%)."""
    curves = healthy_one_cycle_planned(seed)
    keep = CUT_EPOCHS * STEPS_PER_EPOCH
    curves.loss, curves.grad_norm, curves.lr = (a[:keep] for a in
                                                (curves.loss, curves.grad_norm, curves.lr))
    curves.val_loss, curves.val_accuracy, curves.val_confidence = (
        a[:CUT_EPOCHS] for a in (curves.val_loss, curves.val_accuracy, curves.val_confidence))
    return curves


def collapsed_to_majority(seed: int = 0) -> Curves:
    """2% positives (8 of 400 validation rows): the model answers '0' for every row, so its
    accuracy is the majority's 0.98 and its balanced accuracy 0.5 (audit s9 I2)."""
    curves = healthy_exponential(seed)
    curves.num_classes = 2
    curves.val_accuracy = np.full(NUM_EPOCHS, 0.98)
    curves.val_confidence = np.full(NUM_EPOCHS, 0.97)
    curves.epoch_keys = {"val_balanced_accuracy": 0.5, "val_class_counts": {
        "rows": [392, 8], "right": [392, 0], "predicted": [400, 0]}}
    return curves


def misses_rare_classes(seed: int = 0) -> Curves:
    """Six classes; the two smallest (7 and 6 of 400 validation rows) are never predicted
    while the others are mostly right (audit s9 I7: recall 0 on two classes at 94%)."""
    curves = healthy_exponential(seed)
    curves.epoch_keys = {"val_balanced_accuracy": 0.6, "val_class_counts": {
        "rows": [200, 100, 50, 37, 7, 6], "right": [195, 95, 45, 30, 0, 0],
        "predicted": [205, 100, 50, 45, 0, 0]}}
    return curves


def confused_with_classes(seed: int = 0) -> Curves:
    return confused(seed)


confused_with_classes.with_classes = True  # type: ignore[attr-defined]

def stopped_while_improving(seed: int = 0) -> Curves:
    """The healthy run's first 5 epochs only (user audit s11 M12: train.max_epochs = 5): the
    epoch budget ends it with the validation loss falling fast, its best epoch the last."""
    curves = healthy_exponential(seed)
    steps = 5 * STEPS_PER_EPOCH
    return Curves(curves.loss[:steps], curves.grad_norm[:steps], curves.lr[:steps],
                  curves.val_loss[:5], curves.val_accuracy[:5], curves.val_confidence[:5])


def over_regularised(seed: int = 0) -> Curves:
    """User audit s15 B3 (AdamW weight_decay=10): at a constant lr the training loss falls to
    its low by 20% of the run, then climbs 15% back and stays there, level with validation."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    level = 0.6 + 1.7 * np.exp(-15 * t) + 0.1 * np.clip((t - 0.2) / 0.4, 0, 1)
    loss = level * _noise(rng, NUM_STEPS, 0.06)
    grad = (0.6 + 2.0 * np.exp(-4 * t)) * _noise(rng, NUM_STEPS, 0.3)
    val = level[STEPS_PER_EPOCH - 1:: STEPS_PER_EPOCH] * 0.98 * _noise(rng, NUM_EPOCHS, 0.01)
    acc = np.clip(0.78 + rng.normal(0, 0.01, NUM_EPOCHS), 0, 1)
    conf = np.clip(acc + rng.normal(0.0, 0.01, NUM_EPOCHS), 0.1, 1)
    return Curves(loss, grad, np.full(NUM_STEPS, 1e-3), val, acc, conf)


def unscaled_target(seed: int = 0) -> Curves:
    """User audit s15 B1: a regression target of mean 1e6, std 2e6 (MSE ~5e12): 30 epochs
    take 7% off the loss and the validation R^2 stays below 0, still rising at the end."""
    curves = healthy_regression(seed)
    rng = np.random.default_rng(seed + 21)
    t = np.arange(NUM_STEPS) / NUM_STEPS
    curves.loss = 5.5e12 * (1 - 0.07 * t ** 2) * _noise(rng, NUM_STEPS, 0.02)
    r2 = -0.25 + 0.1 * _epoch_t() ** 2
    curves.val_loss = 4.1e12 * (1 - r2)  # MSE = (1 - R^2) var(y), var(y) = 4.1e12
    curves.extra_rows = [{"kind": "epoch_r2", "val_r2": list(r2)}]
    return curves


BROKEN = [
    (diverged, "divergence"),
    (nan_from_start, "divergence"),
    (loss_explodes, "loss_exploding"),
    (explodes_then_dies, "loss_exploding"),
    (overfits, "overfitting"),
    (memorises, "overfitting"),
    (labels_in_another_order, "systematically_wrong"),
    (plateaus, "plateau"),
    (lr_steady_but_slow, "lr_too_low"),
    (lr_tiny_flat, "lr_too_low"),
    (grad_spikes, "gradient_spike"),
    (early_corrupt_batch, "gradient_spike"),
    (batch_fitted_to_zero, "gradient_dip"),
    (vanishes, "vanishing_gradients"),
    (frozen, "vanishing_gradients"),
    (overconfident, "overconfidence"),
    (underconfident, "underconfidence"),
    (held_up_by_dropout, "heavy_regularisation"),
    (ordered_batches, "ordered_batches"),
    (leaks_validation, "validation_leak"),
    (float16_overflows, "loss_scaler_skips"),
    (confused, "confusion"),
    (confused_with_classes, "confusion"),
    (label_copied, "too_good"),
    (collapsed_to_majority, "collapse"),
    (misses_rare_classes, "missed_classes"),
    (stopped_while_improving, "still_improving"),
    (unscaled_target, "target_scale"),
    (over_regularised, "loss_rising"),
]
POSITIVE = {code: builder for builder, code in reversed(BROKEN)}  # first builder per code
ALL_BUILDERS = HEALTHY + [builder for builder, _ in BROKEN]


def problems(findings) -> list[str]:
    return [f.code for f in findings if f.severity is not Severity.INFO]


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("builder", HEALTHY, ids=lambda b: b.__name__)
def test_healthy_runs_do_not_warn(builder, seed):
    findings = diagnose(build(builder, seed))
    assert [f.code for f in findings] == ["healthy"], [f.message for f in findings]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("builder", "code"), BROKEN, ids=lambda x: getattr(x, "__name__", x))
def test_broken_run_is_named_by_exactly_its_code(builder, code, seed):
    findings = diagnose(build(builder, seed))
    assert problems(findings) == [code], [f.message for f in findings]


def test_every_rule_has_a_positive_case():
    assert set(POSITIVE) == set(list_rules()) == set(RULES)


@pytest.mark.parametrize("name", list_rules())
def test_rule_fires_on_its_case_and_not_on_healthy_runs(name):
    rule = RULES[name]
    assert [f.code for f in rule(build(POSITIVE[name]))] == [name]
    for builder in HEALTHY:
        assert rule(build(builder)) == [], builder.__name__


@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=lambda b: b.__name__)
def test_rules_are_pure(builder):
    history = build(builder)
    before = copy.deepcopy(history)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    for rule in RULES.values():
        rule(history)
    diagnose(history, num_classes=10)
    assert history == before or _same_with_nan(history, before)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def _same_with_nan(a: list[dict], b: list[dict]) -> bool:
    # NaN != NaN, so compare the JSON text instead
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=lambda b: b.__name__)
def test_findings_are_json_safe_and_actionable(builder):
    for finding in diagnose(build(builder)):
        json.dumps(finding.to_dict(), allow_nan=False)
        assert finding.stage == "train"
        if finding.severity is not Severity.INFO:
            assert "stage" in finding.fix and finding.evidence and finding.step is not None


def test_divergence_is_an_error_at_the_nan_step_and_folds_the_symptoms():
    (finding,) = diagnose(build(diverged))
    assert finding.severity is Severity.ERROR
    assert finding.step == 401  # row 400 (0-based) is step 401
    assert finding.evidence["key"] == "loss" and finding.evidence["last_finite_loss"] > 1
    assert "tune stage" in finding.fix
    assert "loss_exploding" in finding.evidence["also_seen"]


def test_nan_from_the_first_step_points_at_the_data():
    (finding,) = diagnose(build(nan_from_start))
    assert "data stage" in finding.fix and finding.evidence["last_finite_loss"] is None


def test_isolated_nonfinite_grad_norm_is_not_divergence():
    history = build(healthy_exponential)
    history[200]["grad_norm"] = float("inf")  # an AMP overflow step, skipped by the scaler
    assert [f.code for f in diagnose(history)] == ["healthy"]


def test_loss_exploding_marks_the_turn_and_is_an_error_when_it_ends_above_the_start():
    (finding,) = [f for f in diagnose(build(loss_explodes)) if f.code == "loss_exploding"]
    assert 320 <= finding.step <= 390  # the curve turns up at step ~375
    history = build(loss_explodes)
    for row in history:
        if row["kind"] == "step" and row["step"] > 600:
            row["loss"] *= 10  # ends far above where it started
    (worse,) = RULES["loss_exploding"](history)
    assert worse.severity is Severity.ERROR


def test_overfitting_reports_the_best_epoch_and_its_step():
    (finding,) = diagnose(build(overfits))
    assert 8 <= finding.evidence["best_epoch"] <= 12
    assert finding.step == (finding.evidence["best_epoch"] + 1) * STEPS_PER_EPOCH
    assert finding.evidence["epochs_past_best"] >= 15 and finding.evidence["rise"] > 0.15


def test_a_loss_that_explodes_on_the_first_update_is_an_error_from_step_one():
    (finding,) = diagnose(build(explodes_then_dies))
    assert finding.severity is Severity.ERROR and finding.step == 1
    assert finding.evidence["peak_loss"] > 1000
    assert {"vanishing_gradients", "plateau"} & set(finding.evidence["also_seen"])


def test_memorisation_is_overfitting_that_points_at_the_labels():
    (finding,) = diagnose(build(memorises))
    assert finding.evidence["never_learned"] and "labels" in finding.fix
    assert "never got clearly below the first epoch's" in finding.fix  # best: noise
    assert "Keep the weights" not in finding.fix
    history = build(memorises)
    history[next(i for i, row in enumerate(history) if row["kind"] == "epoch")]["val_loss"] = 2.0
    (finding,) = RULES["overfitting"](history)
    assert finding.evidence["best_epoch"] == 0 and "never improved on the first" in finding.fix


def test_a_small_gain_before_memorising_keeps_the_best_epoch_in_the_fix():
    """The audit's case (150 MNIST-1D rows, wide MLP): validation improved 9% by epoch 3, then
    rose. The fix must not say it never improved; it names the epoch to keep and the gain."""
    history = build(memorises)
    val = [2.23, 2.14, 2.03] + [2.2 + 0.12 * i for i in range(NUM_EPOCHS - 3)]
    for row in history:
        if row["kind"] == "epoch":
            row["val_loss"] = val[row["epoch"]]
    (finding,) = RULES["overfitting"](history)
    assert finding.evidence["never_learned"] and finding.evidence["best_epoch"] == 2
    assert "never improved" not in finding.fix
    assert "improved only 9% (epoch 0 -> 2)" in finding.fix
    assert "Keep the weights of epoch 2" in finding.fix and "labels" in finding.fix


def test_overfitting_needs_the_training_loss_to_keep_falling():
    history = build(overfits)
    for row in history:
        if row["kind"] == "epoch" and row["epoch"] > 10:
            row["train_loss"] = 1.0 + row["epoch"]  # train rising too: not overfitting
    assert RULES["overfitting"](history) == []


def test_gradient_spikes_are_listed_and_warmup_is_ignored():
    (finding,) = diagnose(build(grad_spikes))
    assert finding.step == SPIKE_STEPS[0]
    assert finding.evidence["spike_steps"] == list(SPIKE_STEPS)
    history = build(healthy_exponential)
    history[1]["grad_norm"] *= 100  # step 2: initialisation noise
    assert RULES["gradient_spike"](history) == []


def test_vanishing_gradients_mark_the_onset_and_spare_converged_runs():
    (finding,) = diagnose(build(vanishes))
    assert abs(finding.step - VANISH_FROM) <= 10
    assert "plateau" in finding.evidence["also_seen"]
    history = build(vanishes)
    for row in history:
        if row["kind"] == "step":
            row["loss"] = 2.3 * np.exp(-row["step"] / 20)  # memorised: loss ~ 0 is converged
    assert RULES["vanishing_gradients"](history) == []


def test_zero_gradient_from_the_start_names_frozen_parameters():
    (finding,) = diagnose(build(frozen))
    assert "requires_grad" in finding.fix


def test_overconfidence_onset_is_the_first_epoch_of_the_gap():
    (finding,) = diagnose(build(overconfident))
    assert finding.evidence["onset_epoch"] == 20
    assert finding.step == 21 * STEPS_PER_EPOCH
    assert finding.evidence["high_confidence_mass"] > 0.5


@pytest.mark.parametrize("make_curves,code,on_six_rows", [
    (overconfident, "overconfidence", False), (confused, "confusion", False),
    (underconfident, "underconfidence", True)])
def test_confidence_rules_wait_for_enough_validation_rows(make_curves, code, on_six_rows):
    """The same curves, their histograms rescaled to a tiny validation set: a gap of 0.17
    (over-confident at accuracy 0.80) is 1.0 standard errors on 6 rows, 8.5 on 400; "near
    chance" is not judged under MIN_CONFUSION_ROWS; a softmax-capped model's gap of ~0.7
    stands even on 6 rows."""
    history = build(make_curves)
    assert code in [f.code for f in diagnose(history)]
    for row in history:
        if row["kind"] == "epoch":
            hist = np.asarray(row["val_confidence_hist"], dtype=float)
            row["val_confidence_hist"] = np.round(hist / hist.sum() * 6).astype(int).tolist()
    assert (code in [f.code for f in diagnose(history)]) is on_six_rows
    accuracy, gap = 0.80, 0.97 - 0.80  # the over-confident curves' last epoch, by hand
    assert gap < 2 * math.sqrt(accuracy * (1 - accuracy) / 6)  # unresolved on 6 rows
    assert gap > 2 * math.sqrt(accuracy * (1 - accuracy) / VAL_SIZE)  # resolved on VAL_SIZE


def test_confusion_uses_num_classes_when_given():
    history = build(confused)
    (finding,) = diagnose(history, num_classes=10)
    assert finding.evidence["chance"] == pytest.approx(0.1)
    assert finding.evidence["num_classes"] == 10
    (bound,) = diagnose(history)  # without it: bounded from the histogram
    assert bound.evidence["chance"] >= 0.1 and bound.evidence["num_classes"] is None


def test_confusion_does_not_fire_on_a_hard_but_learning_model():
    history = build(healthy_exponential)
    rng = np.random.default_rng(0)
    for row in history:
        if row["kind"] == "epoch":
            row["val_accuracy"], row["val_mean_confidence"] = 0.42, 0.45
            row["val_confidence_hist"] = confidence_hist(0.45, 10, rng)
    assert RULES["confusion"](history) == [] and diagnose(history, num_classes=10)[0].code == (
        "healthy")


def test_findings_are_ordered_errors_first_then_by_onset():
    history = build(grad_spikes)
    for row in history:
        if row["kind"] == "epoch" and row["epoch"] >= 20:
            row["val_accuracy"], row["val_mean_confidence"] = 0.8, 0.99
    codes = [f.code for f in diagnose(history)]
    assert codes == ["gradient_spike", "overconfidence"]


def test_healthy_summary_names_the_best_epoch():
    (finding,) = diagnose(build(healthy_exponential))
    assert finding.severity is Severity.INFO
    assert {"best_epoch", "best_val_loss", "final_grad_norm"} <= set(finding.evidence)
    assert finding.step == (finding.evidence["best_epoch"] + 1) * STEPS_PER_EPOCH


def test_a_failing_rule_is_reported_not_fatal(monkeypatch):
    def broken(history):
        raise RuntimeError("boom")

    monkeypatch.setitem(RULES, "plateau", broken)
    findings = diagnose(build(overfits))
    assert [f.code for f in findings] == ["overfitting", "rule_failed"]
    assert "boom" in findings[1].message and findings[1].severity is Severity.INFO


def test_odd_histories_do_not_crash():
    assert diagnose([])[0].code == "insufficient_history"
    assert diagnose([{"kind": "test", "test_loss": 0.1}])[0].code == "insufficient_history"
    few = build(healthy_exponential)[:4]
    assert [f.code for f in diagnose(few)] == ["healthy"]
    no_kind = [{k: v for k, v in row.items() if k != "kind"} for row in build(overfits)]
    assert problems(diagnose(no_kind)) == ["overfitting"]
    epochs_only = [row for row in build(overfits) if row["kind"] == "epoch"]
    assert problems(diagnose(epochs_only)) == ["overfitting"]
    missing = [{"kind": "step", "step": i, "loss": None} for i in range(20)]
    assert [f.code for f in diagnose(missing)] == ["insufficient_history"]
    garbage = build(overconfident)
    for row in garbage:
        if row["kind"] == "epoch":
            row["val_confidence_hist"] = ["a", None]
    assert problems(diagnose(garbage)) == ["overconfidence"]  # from val_mean_confidence


def test_healthy_counts_the_epochs_run_not_the_epochs_validated():
    # a loop validating every 2nd epoch (user audit s11 D2): 6 epochs, 3 with a val_loss;
    # the verdict read "epoch 6 of 3"
    rows = [{"kind": "epoch", "epoch": e, "step": 16 * e, "train_loss": 1.0 / e}
            | ({"val_loss": {2: 0.37, 4: 0.165, 6: 0.098}[e]} if e % 2 == 0 else {})
            for e in range(1, 7)]
    finding = healthy(rows)
    assert finding.evidence["num_epochs"] == 6 and finding.evidence["num_validated"] == 3
    assert "at epoch 6 of 6, 3 of them validated (the last one" in finding.message


def test_the_overconfidence_fix_names_the_runs_keys_not_absent_levers():
    """Audit s13 P9: trainwise run has no label smoothing or temperature key and already
    keeps the best epoch: the fix names train.weight_decay with its value, and says the
    post-hoc levers are outside trainwise."""
    rows = build(overconfident) + [{"kind": "meta", PLAN_KEY: TrainingPlan(
        patience=5, weight_decay=0.01, dropout=0.1)}]
    (finding,) = [f for f in diagnose(rows) if f.code == "overconfidence"]
    assert finding.fix.startswith("Early stopping already tests the best epoch's weights. "
                                  "Raise train.weight_decay (now 0.01)")
    assert "trainwise has no setting for it" in finding.fix
    assert "add label smoothing (0.1)" not in finding.fix


def test_overconfidence_above_the_chance_loss_points_to_the_lr():
    """A run whose validation loss never got below ln C did not learn: its confidence is a
    symptom of the lr (the audit's wine run at lr 0.57: val loss 3.9 vs ln 3 = 1.1)."""
    rows = build(overconfident)
    for row in rows:
        if row.get("kind") == "epoch":
            row["val_loss"] = 3.0 + row["val_loss"]  # all above ln 10 = 2.30
    (finding,) = RULES["overconfidence"](rows + [{"kind": "meta", "num_classes": 10}])
    assert "never came clearly below the chance loss ln 10 = 2.3" in finding.fix
    assert "Lower the learning rate" in finding.fix


def test_overconfidence_within_one_percent_of_chance_is_not_learned_as_elsewhere():
    """Review s13 final F4: 1.090 on 3 classes (ln 3 = 1.0986) is 'not learned' for the
    evaluate stage (1% margin) and was 'learned' for this fix (a strict > ln C)."""
    rows = build(overconfident)
    for row in rows:
        if row.get("kind") == "epoch":
            row["val_loss"] = 1.090 + 0.001 * row["epoch"]
    (finding,) = RULES["overconfidence"](rows + [{"kind": "meta", "num_classes": 3}])
    assert "never came clearly below the chance loss ln 3 = 1.1" in finding.fix
