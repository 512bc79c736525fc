"""Which peak lrs the short runs try, how a narrow range stretches, and which lr they choose: pure
functions of the range and of (lr, validation loss) pairs, so they are tested on their own."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trainwise.findings import TrainwiseError

LOG_SPACING_ABOVE = 3.0  # a range wider than 3x is log-spaced: even spacing would pile up
# the points at its top (over 1 decade, 3 even points are 1, 5.5, 10: nothing below 5x)
MAX_STEP = 2.5  # "auto" adds candidates (up to 5) until neighbours are <= 2.5x apart, so
# every lr in the range is within sqrt(2.5) = 1.6x of one: inside the 2x target
MIN_SPAN = 2.0  # a range narrower than 2x is stretched to 2x around its middle, then shifted
# inside what the range test tried (narrower only when that is under 2x: (1.0, 1.2) with the
# test's top at 1.5 gives 1.0 to 1.5): closer candidates differ by less than the noise of one
# short run. tune.json's "stretched" records it; "widened" is the extra grid steps past the edge
FIT_NEIGHBOURS = 2  # the parabola goes through the best candidate and 2 neighbours a side
BLOWN_UP = 3.0  # a candidate above the best scoring over 3x both its loss and the lowest lr's
# blew up: past a cliff. It stays in the fit, and the message says so: on MNIST-1D (0.0071:
# 0.243, 0.018: 0.194, 0.046: 0.179, 0.12: 1.38) it pulled the vertex from the best 0.046 onto
# 0.019 (audit s13 T7), but digits-anchor seed 130 has the same shape (0.19 at 7.7x the best)
# and leaving it out moved that calibrated pick 0.015 -> 0.040 (bench/tune_vs_oracle.py)


def candidate_lrs(lr_low: float, lr_high: float, num: int | str = "auto", *,
                  min_lr: float = 0.0, max_lr: float = math.inf) -> tuple[list[float], str]:
    """3-5 lrs from lr_low to lr_high inclusive, and the spacing used ("log" or "even").

    Log-spaced when the range spans more than a factor of 3, else evenly spaced; "auto"
    takes as many as keep neighbours <= MAX_STEP apart (at least 3, at most 5). A range
    narrower than MIN_SPAN is stretched (`stretched_to_min_span`), never past [min_lr,
    max_lr]: what the range test tried.
    """
    if not 0 < lr_low <= lr_high or not math.isfinite(lr_high):
        raise TrainwiseError(f"need 0 < lr_low <= lr_high, got {lr_low} and {lr_high}; pass "
                             "the range the range test found (lr_low, lr_high).")
    if lr_high / lr_low < MIN_SPAN:
        lr_low, lr_high = stretched_to_min_span(lr_low, lr_high, min_lr, max_lr)
    ratio = lr_high / lr_low
    if num == "auto":
        num = min(5, max(3, math.ceil(math.log(ratio) / math.log(MAX_STEP) - 1e-9) + 1))
    if not isinstance(num, int) or not 3 <= num <= 5:
        raise TrainwiseError(f"num_candidates={num!r}: use 3 to 5 (METHOD.md §4), or 'auto'.")
    if ratio > LOG_SPACING_ABOVE:
        return [float(v) for v in np.geomspace(lr_low, lr_high, num)], "log"
    return [float(v) for v in np.linspace(lr_low, lr_high, num)], "even"


def stretched_to_min_span(lr_low: float, lr_high: float, min_lr: float = 0.0,
            max_lr: float = math.inf) -> tuple[float, float]:
    """A range narrower than MIN_SPAN stretched to MIN_SPAN around its middle, then shifted
    inside [min_lr, max_lr] (narrower only when those are closer than MIN_SPAN). Unclamped, a
    range test ending at its end_lr 0.5 with lr_high 0.5 gave candidates up to 0.532, past
    anything the test tried, and training at 0.532 exploded (audit s15 K1)."""
    middle = math.sqrt(lr_low * lr_high)
    low, high = middle / math.sqrt(MIN_SPAN), middle * math.sqrt(MIN_SPAN)
    ceiling, floor = max(max_lr, lr_high), min(min_lr, lr_low)  # the range itself stays
    if high > ceiling:  # the top of what the test tried (its divergence or end_lr): move down
        low, high = ceiling / MIN_SPAN, ceiling
    if low < floor:  # the bottom (tune.start_lr): move up, as far as the ceiling allows
        low, high = floor, min(floor * MIN_SPAN, ceiling)
    return low, high


def beyond_edge(results: Sequence[tuple[float, float]]) -> float | None:
    """From (lr, val_loss) pairs: the next lr past the best when it is the lowest or highest
    lr tried, one step (the ratio to its neighbour, so log grids stay log) further; None when
    the best is inside. All diverged (inf): a step down."""
    lrs, losses = zip(*sorted(results), strict=True)
    best = int(np.argmin(losses)) if any(math.isfinite(v) for v in losses) else 0
    if best == 0:
        return lrs[0] ** 2 / lrs[1]
    if best == len(lrs) - 1:
        return lrs[-1] ** 2 / lrs[-2]
    return None


def refine(results: Sequence[tuple[float, float]]) -> float:
    """The chosen peak lr of `refine_how`, alone."""
    return refine_how(results)[0]


def refine_how(results: Sequence[tuple[float, float]]) -> tuple[float, str, list[float]]:
    """From (lr, val_loss) pairs, the chosen peak lr, how it was chosen and the lrs fitted
    (none unless "vertex" or "concave"): "vertex", the
    vertex of a least-squares parabola in (log10 lr, log val loss) through the best candidate
    and up to FIT_NEIGHBOURS finite ones on each side, kept between the best's two neighbours;
    "edge", the best itself when it is the lowest or highest lr fitted; "concave", the best
    itself when the fit curves down (no minimum).

    Why not the plain argmin: one short run's validation loss is noisy, and near the optimum
    the curve is flat, so the argmin hops between neighbours. On the calibration tasks
    (bench/tune_vs_oracle.py) the fit halved the seed-to-seed spread of the chosen lr
    (Friedman-1: 0.62 -> 0.12 decades) and its worst excess over the oracle (12% -> 2%).
    """
    finite = sorted((lr, v) for lr, v in results if math.isfinite(v))
    x = np.log10([lr for lr, _ in finite])
    losses = np.array([v for _, v in finite])
    best = int(np.argmin(losses))
    if best in (0, len(finite) - 1):
        return finite[best][0], "edge", []
    window = slice(max(0, best - FIT_NEIGHBOURS), best + FIT_NEIGHBOURS + 1)
    fitted = [lr for lr, _ in finite[window]]
    y = np.log(losses) if losses.min() > 0 else losses  # log: scale-free; a NLL may go < 0
    a, b, _ = np.polyfit(x[window], y[window], 2)
    if a <= 0:
        return finite[best][0], "concave", fitted
    return float(10 ** np.clip(-b / (2 * a), x[best - 1], x[best + 1])), "vertex", fitted


def blown_up(results: Sequence[tuple[float, float]]) -> list[float]:
    """The lrs above the best's whose finite loss is over BLOWN_UP x both the best's and the
    lowest lr's (which barely trained): past a cliff, far worse than not training. A smooth
    steep bowl, exp((log lr)^2), rises 5x one decade from its minimum but stays below its
    own low side."""
    finite = sorted((lr, v) for lr, v in results if math.isfinite(v))
    if not finite:
        return []
    best_lr, best = min(finite, key=lambda p: p[1])
    ceiling = BLOWN_UP * max(best, finite[0][1])
    return [lr for lr, v in finite if lr > best_lr and best > 0 and v > ceiling]
