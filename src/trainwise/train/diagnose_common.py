"""Shared pieces of the diagnosis rules: curves out of history rows, robust smoothing, and
the one way a rule builds a Finding. Pure functions over lists of dicts; nothing here
mutates a row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from trainwise.findings import Finding, Severity

Row = dict[str, Any]
STAGE = "train"
LEARNED_MARGIN = 0.01  # learned: a validation loss over 1% below chance, ln C (or below the
# untrained model's, in the tune stage); within it is no learning: on random labels (3
# classes) short runs scored 1.094-1.118 against ln 3 = 1.099 (audit s13 T6). One bar for
# train.not_learned and tune.short_run_learning (review s13 VT8)


def row_kind(row: Row) -> str:
    """'step', 'epoch', 'test', ...; rows from a user's own logger may lack `kind`."""
    kind = row.get("kind")
    if kind:
        return str(kind)
    return "epoch" if "val_loss" in row else "step"


def rows_of(history: Sequence[Row], kind: str) -> list[Row]:
    return [row for row in history if row_kind(row) == kind]


def best_epoch(history: Sequence[Row]) -> Row | None:
    """The epoch row of the lowest finite validation loss: the weights training kept, which
    every verdict on "the model" reads (the diagnosis, the threshold, the report's figures)."""
    epochs = [row for row in rows_of(history, "epoch")
              if isinstance(row.get("val_loss"), (int, float)) and math.isfinite(row["val_loss"])]
    return min(epochs, key=lambda row: row["val_loss"]) if epochs else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None  # missing, None or not a number: the row simply has no such signal
    return float(value)


def epoch_losses(history: list[Row], *, positive: bool = False
                 ) -> tuple[list[Row], np.ndarray, np.ndarray]:
    """(rows, train, val) of the epoch rows whose train_loss and val_loss are both finite
    numbers (and above 0 when `positive`: a rule that divides by them)."""
    rows, train, val = [], [], []
    for row in rows_of(history, "epoch"):
        t, v = _as_float(row.get("train_loss")), _as_float(row.get("val_loss"))
        if t is None or v is None or not (math.isfinite(t) and math.isfinite(v)):
            continue
        if positive and not (t > 0 and v > 0):
            continue
        rows.append(row)
        train.append(t)
        val.append(v)
    return rows, np.array(train, dtype=np.float64), np.array(val, dtype=np.float64)


def _is_number(value: Any) -> bool:
    return isinstance(value, (float, int, np.number)) and not isinstance(value, bool)


def series(rows: list[Row], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) for the rows that carry a number under `key`; NaN/inf are kept.

    A row without a step number takes its position in `rows`.
    """
    # Plain comprehensions: histories hold a row per step, tens of thousands of them.
    found = [(row.get("step"), index, row[key]) for index, row in enumerate(rows)
             if _is_number(row.get(key))]
    steps = np.fromiter((step if _is_number(step) else index for step, index, _ in found),
                        dtype=np.int64, count=len(found))
    values = np.fromiter((value for _, _, value in found), dtype=np.float64, count=len(found))
    return steps, values


class History(list):
    """The rows as given, plus a memo of the columns the rules read (diagnose wraps the
    history in one so nine rules do not each rescan thousands of rows). Never mutated."""

    def __init__(self, rows: list[Row]):
        super().__init__(rows)
        self.columns: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def column(history: list[Row], kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """series() of the rows of one kind, memoised when `history` is a History."""
    memo = getattr(history, "columns", None)
    if memo is None:
        return series(rows_of(history, kind), key)
    if (kind, key) not in memo:
        memo[(kind, key)] = series(rows_of(history, kind), key)
    steps, values = memo[(kind, key)]
    return steps.copy(), values.copy()  # callers may filter in place; the memo stays intact


def finite(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    return steps[keep], values[keep]


class LossCurve(NamedTuple):
    """The finite training loss: per-step rows when there are any, else epoch train_loss."""

    steps: np.ndarray
    values: np.ndarray
    per_step: bool

    @property
    def start(self) -> float:
        """Where training started: per step, the lower of the first loss (at initialisation)
        and the median of the first 3 (batch noise averages out; a loss that explodes on the
        first update does not count as the start); for epoch means, the first epoch (a run
        may have converged within it)."""
        if self.per_step:
            return float(min(self.values[0], np.median(self.values[:3])))
        return float(self.values[0])


def loss_curve(history: list[Row]) -> LossCurve:
    steps, values = column(history, "step", "loss")
    if len(values) >= 2:
        return LossCurve(*finite(steps, values), per_step=True)
    return LossCurve(*finite(*column(history, "epoch", "train_loss")), per_step=False)


def loss_between(history: list[Row], first: int, last: int) -> tuple[float, float] | None:
    """(loss at the start of training, median loss over steps [first, last]), or None."""
    curve = loss_curve(history)
    inside = (curve.steps >= first) & (curve.steps <= last)
    if len(curve.values) < 3 or not inside.any():
        return None
    return curve.start, float(np.median(curve.values[inside]))


def batch_samples(history: list[Row], steps: list[int]) -> tuple[int, list[int]] | None:
    """(step, sample indices) of the first of `steps` (in that order of preference) whose row
    carries `sample_indices` (the monitor keeps them for spikes and the first NaN)."""
    found = {row.get("step"): row["sample_indices"] for row in rows_of(history, "step")
             if isinstance(row.get("sample_indices"), list)}
    for step in steps:
        if step in found:
            return step, [int(i) for i in found[step]]
    return None


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median: robust to batch noise and to single spikes, which a moving
    mean would smear over the window. Edges are mirrored; repeating the edge value instead
    would let one noisy first point dominate the first half-window."""
    window = max(1, min(int(window), len(values)))
    if window <= 2 or len(values) < 3:
        return values.astype(np.float64)
    if window % 2:  # scipy's C filter, the same numbers: numpy's below takes 0.5 s on 20k steps
        from scipy.ndimage import median_filter  # imported here: ~0.5 s, only when diagnosing

        return median_filter(values.astype(np.float64), size=window, mode="mirror")
    left = window // 2
    padded = np.pad(values, (left, window - 1 - left), mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def smoothing_window(num_points: int) -> int:
    """About 5% of the curve, odd, at least 3: wide enough to beat batch noise, narrow
    enough to keep the shape of a one-cycle curve."""
    window = max(3, num_points // 20)
    return window + 1 - window % 2


def diff_noise(values: np.ndarray) -> float:
    """Robust std of one point's noise around its neighbours, from consecutive differences
    (a trend cancels in them): 1.4826 * MAD of the differences, over sqrt 2 because a
    difference holds two points' noise. 0.0 with fewer than 2 points."""
    steps = np.diff(np.asarray(values, dtype=np.float64))
    if not len(steps):
        return 0.0
    return 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / math.sqrt(2)


def finite_value(row: Row, key: str) -> float | None:
    """row[key] as a float when it is a finite number (not a bool), else None."""
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def noise_scale(values: np.ndarray, smooth: np.ndarray) -> float:
    """Robust std of the point-to-point noise: 1.4826 * MAD of the residuals."""
    residual = values - smooth
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest stretch of True; (0, 0) when there is none."""
    best_start, best_length, start = 0, 0, None
    for index, flag in enumerate(np.append(mask, False)):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start > best_length:
                best_start, best_length = start, index - start
            start = None
    return best_start, best_length


def final_run_start(flags: Sequence[bool] | np.ndarray) -> int:
    """Index where the final unbroken run of True starts (flags[-1] must be True): the onset
    a rule names for a condition that still holds at the end."""
    start = len(flags) - 1
    while start > 0 and flags[start - 1]:
        start -= 1
    return start


def num(value: float | None, digits: int = 4) -> float | None:
    """A JSON-safe number for evidence: 4 significant digits; None for NaN/inf."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def num_classes(history: list[Row]) -> int | None:
    """Number of classes if any row states it (the recipe knows it from the data)."""
    for row in history:
        value = _as_float(row.get("num_classes"))
        if value is not None and value >= 2:
            return int(value)
    return None


@dataclass(frozen=True)
class TrainingPlan:
    """What the history cannot show about how training was set up. The recipe knows it and
    passes it to diagnose(); a user's own loop may not (None: unknown, and the rules that
    need it stay silent or fall back to what the curves show)."""

    lr_from_config: float | None = None  # train.lr set by the user: no range test ran
    schedule: str | None = None  # "onecycle", "cosine", "constant"
    warmup: bool | None = None  # the schedule raises the lr first (one-cycle; a warm-up)
    decays: bool | None = None  # the schedule anneals the lr toward its end
    planned_steps: int | None = None  # optimizer steps the schedule was built for
    planned_epochs: int | None = None  # train.max_epochs
    val_rows: int | None = None  # rows in the validation part (a perfect score on few is luck)
    leak_columns: tuple[str, ...] = ()  # features the data audit flagged as target_leak
    class_names: tuple[str, ...] = ()  # classification: the names a finding calls classes by
    class_weighted: bool | None = None  # train.class_weights = "balanced" weighs the loss
    train_class_counts: tuple[int, ...] = ()  # classification: rows per class in training
    time_budget_minutes: float | None = None  # train.max_minutes, when that clock ended training
    patience: int | None = None  # train.patience: early stopping ran and kept the best epoch
    patience_from: int | None = None  # the epoch its patience counted from (one-cycle: ~65%)
    weight_decay: float | None = None  # train.weight_decay (AdamW, on weights only)
    dropout: float | None = None  # model.dropout of a built-in baseline (None: your own model)
    # trainwise run trains a regression on (y - mean) / std and logs val_rmse in y's own units
    target_standardised: bool | None = None


PLAN_KEY = "training_plan"  # the meta row diagnose() adds carries the plan under this key


def plan_of(history: list[Row]) -> TrainingPlan:
    """The TrainingPlan of the meta row diagnose() added; an empty one when there is none."""
    for row in history:
        plan = row.get(PLAN_KEY) if row.get("kind") == "meta" else None
        if isinstance(plan, TrainingPlan):
            return plan
    return TrainingPlan()


def lr_advice(history: list[Row], direction: str, tune_hint: str) -> str:
    """How to `direction` ("lower" / "raise") the learning rate: with the range test
    (`tune_hint`, tune stage) when it chose the lr, else by saying the config set it."""
    given = plan_of(history).lr_from_config
    if given is not None:
        return (f"train.lr = {given:g} was set in the config, so no range test ran: set "
                f"train.lr = \"auto\" to measure it (tune stage), or {direction} it")
    return f"{direction.capitalize()} the learning rate (tune stage: {tune_hint})"


def longer_training(history: list[Row]) -> str:
    """train_longer for the run whose TrainingPlan diagnose() added to `history`."""
    return train_longer(plan_of(history).time_budget_minutes)


def train_longer(minutes: float | None) -> str:
    """The setting that trains longer: train.max_epochs, or train.max_minutes when the time
    budget (of `minutes`) ended training (raising max_epochs then changes nothing: the clock
    stops the run at the same epoch; review s11 VT7). The evaluate stage, which has no
    history plan, passes the minutes itself."""
    if minutes is None:
        return "raise train.max_epochs"
    return (f"raise train.max_minutes (now {minutes:g}; the time budget ended training, not "
            "train.max_epochs)")


def patience_words(patience: int, start: int) -> str:
    """The early stopping setting as every message words it: "train.patience = 8, counted from
    epoch 26" when patience starts late (one-cycle's annealing), else "train.patience = 8".
    The stop reason, the `trained` summary and the overfitting fix say it alike."""
    counted = f", counted from epoch {start}" if start > 1 else ""
    return f"train.patience = {patience}{counted}"


def hist_of(row: Row) -> np.ndarray | None:
    hist = row.get("val_confidence_hist")
    if not isinstance(hist, (list, tuple)) or not hist:
        return None
    try:
        counts = np.asarray(hist, dtype=np.float64)
    except (TypeError, ValueError):
        return None  # not a list of counts: treat as absent rather than fail the diagnosis
    ok = counts.ndim == 1 and np.all(np.isfinite(counts)) and counts.sum() > 0
    return counts if ok else None


def hist_mean(hist: np.ndarray) -> float:
    """Mean confidence estimated from bin centres (error at most half a bin, 0.025)."""
    centres = (np.arange(len(hist)) + 0.5) / len(hist)
    return float(np.dot(hist, centres) / hist.sum())


def hist_mass(hist: np.ndarray, low: float, high: float) -> float:
    """Fraction of samples whose top probability falls in bins inside [low, high)."""
    edges = np.arange(len(hist)) / len(hist)
    inside = (edges >= low - 1e-9) & (edges < high - 1e-9)
    return float(hist[inside].sum() / hist.sum())


def mean_confidence(row: Row) -> float | None:
    value = _as_float(row.get("val_mean_confidence"))
    if value is not None and math.isfinite(value):
        return value
    hist = hist_of(row)
    return hist_mean(hist) if hist is not None else None


# The advice to weigh the classes, said in one wording by every rule that gives it (train and
# evaluate stage); its "(train stage)" is the key loop_terms.py rewrites into a weighted loss
# for a Monitor user's own loop.
WEIGH_CLASSES = ('set train.class_weights = "balanced" (train stage), so each class weighs as '
                 "much as the most frequent one in the loss")


def class_weights_advice(first: bool = False) -> str:
    """WEIGH_CLASSES; capitalised (`first`) where it starts a sentence."""
    return WEIGH_CLASSES[0].upper() + WEIGH_CLASSES[1:] if first else WEIGH_CLASSES


def make(severity: Severity, code: str, message: str, fix: str, step: Any,
         **evidence: Any) -> Finding:
    """The train-stage Finding every rule returns; `step` marks the onset on the curves."""
    at = None if step is None else int(step)
    return Finding(STAGE, severity, code, message, evidence, fix, at)


def regularise_words(plan: TrainingPlan) -> str:
    """How to regularise, in the run's own keys and their values: a fix that said "add
    weight decay or dropout (train stage)" to a run with both at 0 named neither key and put
    dropout in the wrong stage (audit s13 P7). A user's own loop (no plan) gets the levers."""
    if plan.weight_decay is None:
        return ("add weight decay or dropout to your model and optimizer, or get more data or "
                "augment a little (data stage).")
    levers = [f"raise train.weight_decay (now {plan.weight_decay:g}; 0.01-0.1 is usual)"]
    if plan.dropout is not None:
        levers.append(f"model.dropout (now {plan.dropout:g}; 0.1-0.3, model stage)")
    return " or ".join(levers) + ", or get more data or augment a little (data stage)."

