"""Learning-rate suggestion rules: a registry of pure functions over one range-test curve.

Every rule is called as `rule(lrs, losses) -> lr`, where `lrs` rise exponentially and `losses`
are the RAW per-step losses the range test recorded (lr_range.json's "losses"). Each anchor
rule then does what its library does from raw losses: its own smoothing, its own trimming of
the ends, its own pick. So all rules can be compared on the same recorded curves, and keyword
arguments expose each library's knobs (tests turn smoothing and trimming off to check the
picks against hand-made curves). The curve is cut at its first non-finite loss first.

`trainwise` (ours, the default) lives in `trainwise.tune.lr_rule`; it also gives a range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trainwise.findings import TrainwiseError
from trainwise.tune.lr_rule import finite_prefix, suggest_range

Rule = Callable[[Sequence[float], Sequence[float]], float]
RULES: dict[str, Rule] = {}


def register(name: str) -> Callable[[Rule], Rule]:
    def add(rule: Rule) -> Rule:
        RULES[name] = rule
        return rule

    return add


def list_rules() -> list[str]:
    """Names of the registered rules, ours first."""
    return sorted(RULES, key=lambda name: (name != "trainwise", name))


def get_rule(name: str) -> Rule:
    if name not in RULES:
        raise TrainwiseError(f"unknown learning-rate rule '{name}'; choose one of {list_rules()}.")
    return RULES[name]


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], rule: str = "trainwise") -> float:
    """The learning rate that rule `rule` picks from one recorded curve."""
    return float(get_rule(rule)(lrs, losses))


# ---------------------------------------------------------------------------------- shared parts
def debiased_ema(losses: np.ndarray, beta: float = 0.98, offset: int = 0) -> np.ndarray:
    """fastai AvgSmoothLoss, Lightning: an EMA from 0, divided by 1 - beta**(k + 1 + offset)."""
    out, avg = np.empty_like(losses), 0.0
    for k, value in enumerate(losses):
        avg = beta * avg + (1 - beta) * value
        out[k] = avg / (1 - beta ** (k + 1 + offset)) if beta > 0 else value
    return out


def _trim(x: np.ndarray, y: np.ndarray, start: int, end: int, need: int) -> tuple:
    """Drop `start` points at the front and `end` at the back, unless fewer than `need` remain.

    The libraries fail (IndexError, or "not enough points") on curves that short; falling back
    to the whole curve keeps every rule defined on a short (early-stopped) test.
    """
    stop = x.size - end
    if stop - start >= need:
        return x[start:stop], y[start:stop]
    return x, y


# ---------------------------------------------------------------------------------- fastai
def _fastai_curve(lrs, losses, beta: float, skip_start: int | None, skip_end: int, need: int):
    """fastai `Learner.lr_find`: smoothed losses trimmed to [num_it//10 : -5] before any pick.

    We only know the recorded length, so len(curve)//10 stands for num_it//10 (they differ
    when the test stopped early).
    """
    x, y = finite_prefix(lrs, losses)
    y = debiased_ema(y, beta)
    start = x.size // 10 if skip_start is None else skip_start
    return _trim(x, y, start, skip_end, need)


def valley_index(losses: np.ndarray) -> int:
    """fastai `valley` (ESRI): about 1/2 along the longest strictly decreasing subsequence.

    The O(n^2) search and its index arithmetic are kept as written in fastai
    (`fastai/callback/schedule.py`), including `max_start = max_end - length`.
    """
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


@register("fastai.valley")
def fastai_valley(lrs, losses, *, beta: float = 0.98, skip_start: int | None = None,
                  skip_end: int = 5) -> float:
    """fastai's default suggestion (`SuggestionMethod.Valley`, PR fastai/fastai#3377)."""
    x, y = _fastai_curve(lrs, losses, beta, skip_start, skip_end, need=1)
    return float(x[valley_index(y)])  # a negative index wraps, as fastai's tensor indexing does


@register("fastai.steep")
def fastai_steep(lrs, losses, *, beta: float = 0.98, skip_start: int | None = None,
                 skip_end: int = 5) -> float:
    """fastai `steep`: argmin of the forward difference of loss w.r.t. log(lr), left point."""
    x, y = _fastai_curve(lrs, losses, beta, skip_start, skip_end, need=2)
    if x.size < 2:
        return float(x[0])
    grads = np.diff(y) / np.diff(np.log(x))
    return float(x[int(np.argmin(grads))])


@register("fastai.minimum")
def fastai_minimum(lrs, losses, *, beta: float = 0.98, skip_start: int | None = None,
                   skip_end: int = 5) -> float:
    """fastai `minimum`: the lr of the lowest smoothed loss, divided by 10."""
    x, y = _fastai_curve(lrs, losses, beta, skip_start, skip_end, need=1)
    return float(x[int(np.argmin(y))] / 10)


@register("fastai.slide")
def fastai_slide(lrs, losses, *, beta: float = 0.98, skip_start: int | None = None,
                 skip_end: int = 5, lr_diff: int = 15, thresh: float = 0.005) -> float:
    """fastai `slide` (Novetta): slide a window of `lr_diff` points left from the end while the
    index-gradient differs by more than `thresh` (absolute loss units, so not scale-invariant)."""
    x, y = _fastai_curve(lrs, losses, beta, skip_start, skip_end, need=lr_diff + 1)
    if x.size < 2:
        return float(x[0])
    grad = np.gradient(y)
    lr_diff = min(lr_diff, x.size - 1)  # fastai raises IndexError on curves this short
    r_idx, l_idx = -1, -1 - lr_diff
    local_min_lr = x[l_idx]
    while l_idx >= -x.size and abs(grad[r_idx] - grad[l_idx]) > thresh:
        local_min_lr = x[l_idx]
        r_idx, l_idx = r_idx - 1, l_idx - 1
    return float(local_min_lr)


# ---------------------------------------------------------------------------------- others
def lr_finder_smooth(losses: np.ndarray, smooth_f: float = 0.05) -> np.ndarray:
    """torch-lr-finder's smoothing: an EMA seeded with the first raw loss, not debiased."""
    out = losses.copy()
    for k in range(1, out.size):
        out[k] = smooth_f * losses[k] + (1 - smooth_f) * out[k - 1] if smooth_f > 0 else losses[k]
    return out


@register("torch-lr-finder")
def torch_lr_finder(lrs, losses, *, smooth_f: float = 0.05, skip_start: int = 10,
                    skip_end: int = 5) -> float:
    """davidtvs/pytorch-lr-finder `LRFinder.plot(suggest_lr=True)`: the steepest point,
    argmin of `np.gradient(losses)` w.r.t. the INDEX (uniform in log lr for an exp ramp)."""
    x, y = finite_prefix(lrs, losses)
    x, y = _trim(x, lr_finder_smooth(y, smooth_f), skip_start, skip_end, need=2)
    if x.size < 2:
        return float(x[0])
    return float(x[int(np.argmin(np.gradient(y)))])


@register("lightning")
def lightning(lrs, losses, *, beta: float = 0.98, skip_begin: int = 10,
              skip_end: int = 1) -> float:
    """Lightning `_LRFinder.suggestion()`: argmin of `torch.gradient(losses, spacing=[lrs])`,
    the slope w.r.t. the RAW lr (since v2.5.3, PR #21055; issue #21141 reports the low-lr bias).

    Lightning >= 2.0 reads `trainer.global_step` after the optimizer step, so its debias term
    is 1 - beta**(k+2) for the k-th batch: offset=1 reproduces that.
    """
    x, y = finite_prefix(lrs, losses)
    x, y = _trim(x, debiased_ema(y, beta, offset=1), skip_begin, skip_end, need=2)
    if x.size < 2:
        return float(x[0])
    return float(x[int(np.argmin(np.gradient(y, x)))])  # same 2nd-order scheme as torch.gradient


@register("trainwise")
def trainwise(lrs, losses) -> float:
    """Ours: see `trainwise.tune.lr_rule.suggest_range`."""
    return suggest_range(lrs, losses).lr
