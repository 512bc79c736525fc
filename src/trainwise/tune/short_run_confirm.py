"""A best short run at the top of the range, confirmed on a second data order.

When the best candidate is the highest lr tried and the next widening step would pass the
range test's divergence (short_runs_at_range_top), nothing above it can be tried, and a short
run that close to divergence varies the most from one data order to the next. On Friedman-1
(bench/tune_vs_oracle.py's regression task, tune seeds 100-490) the top candidate's 4-epoch
loss spanned 0.077-0.25 against 0.069-0.12 for the middle one, and in 3 of 40 seeds it won by
luck: picks of 0.43-0.57 that score +17% over the oracle's best in the 15-epoch run. Trained
again on 5 other data orders from the same initial weights, those three tops lost to their
lower neighbour in 14 of 15.

So the top and its lower neighbour train once more on a second data order (the short runs'
seed + 1, the same initial weights), and the top's score becomes the neighbour's plus their
paired difference averaged over the two orders: common random numbers, as in the first
grid, so the neighbour's score and every other candidate's stay on the first order's scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from trainwise.findings import Finding, info
from trainwise.tune.candidates import beyond_edge
from trainwise.tune.short_run_learning import learned
from trainwise.tune.short_run_noise import flat
from trainwise.tune.short_run_result import Candidate, best_key, finite_or_none, lr_loss_pairs

SECOND_ORDER = 1  # the second data order's seed: the short runs' seed + this


def top_needs_confirming(candidates: list[Candidate], max_lr: float, start: float) -> bool:
    """The best candidate is the highest lr tried (not so under a diverged one), it learned,
    the grid is not flat, and the next widening step would pass `max_lr` (so it was not,
    and will not be, tried)."""
    finite = [c for c in candidates if math.isfinite(c.val_loss)]
    if len(finite) < 2 or flat([c.val_loss for c in finite]) or not learned(finite, start):
        return False
    beyond = beyond_edge(lr_loss_pairs(candidates))
    return min(finite, key=best_key) is max(candidates, key=lambda c: c.lr) and \
        beyond is not None and beyond > max_lr * (1 + 1e-9)


def confirm_top(candidates: list[Candidate], retrain: Callable[[float], Candidate],
                seed: int) -> Finding:
    """Retrain the top candidate and its lower neighbour with `retrain(lr)` (the second data
    order), set the top's score (and row losses) to the neighbour's plus their paired
    difference averaged over both orders, and say so. The top diverging on the second order
    leaves its score infinite (not trusted); its neighbour diverging leaves the top's first
    score standing. The top's tail is emptied: its first-order spread no longer spans it."""
    finite = sorted((c for c in candidates if math.isfinite(c.val_loss)), key=lambda c: c.lr)
    top, neighbour = finite[-1], finite[-2]
    top_again, neighbour_again = retrain(top.lr), retrain(neighbour.lr)
    first = top.val_loss - neighbour.val_loss
    second = top_again.val_loss - neighbour_again.val_loss
    top.repeat = {"seed": seed, "first_val_loss": top.val_loss,
                  "val_loss": finite_or_none(top_again.val_loss),
                  "neighbour_lr": neighbour.lr, "neighbour_val_loss":
                  finite_or_none(neighbour_again.val_loss)}
    top.tail = []  # the first order's evaluations no longer span the score (review s16 VN4)
    if not math.isfinite(top_again.val_loss):
        top.val_loss, top.row_losses = math.inf, []  # unstable near divergence: not trusted
    elif math.isfinite(neighbour_again.val_loss):
        top.val_loss = neighbour.val_loss + (first + second) / 2
        top.row_losses = _paired_rows(top, neighbour, top_again, neighbour_again)
    # else the neighbour diverged on the second order: the top stands on its first score
    # (review s16 VN3: the pick fell to the neighbour, the run that diverged)
    return _said(top, neighbour, top_again, neighbour_again, first)


def _paired_rows(top: Candidate, neighbour: Candidate, top_again: Candidate,
                 neighbour_again: Candidate) -> list[float]:
    """Each row's loss for the top on the neighbour's first-order scale, as its score: the
    neighbour's row plus the row's paired difference averaged over the two orders."""
    rows = [top.row_losses, neighbour.row_losses, top_again.row_losses,
            neighbour_again.row_losses]
    if len({len(r) for r in rows}) != 1:
        return []  # no paired rows: short_run_noise falls back to its floor
    return [n + ((t - n) + (t2 - n2)) / 2 for t, n, t2, n2 in zip(*rows, strict=True)]


def _said(top: Candidate, neighbour: Candidate, top_again: Candidate,
          neighbour_again: Candidate, first: float) -> Finding:
    held = math.isfinite(top.val_loss) and top.val_loss < neighbour.val_loss
    if not math.isfinite(top_again.val_loss):
        outcome = "it diverged on the second order, so it is not trusted"
    elif not math.isfinite(neighbour_again.val_loss):
        outcome = (f"the neighbour diverged on the second order, so the top stands on its "
                   f"first score ({top.val_loss:.4g})")
    elif held:
        outcome = f"it stays the best ({top.val_loss:.4g} against {neighbour.val_loss:.4g})"
    else:
        outcome = (f"it scores {top.val_loss:.4g} against the neighbour's "
                   f"{neighbour.val_loss:.4g}, so it is no longer the best")
    return info(
        "tune", "short_runs_top_confirmed",
        f"The best short run ({top.lr:.3g}) was the highest lr tried, next to the range "
        "test's divergence, where one short run's loss varies most between data orders. It "
        f"and its neighbour ({neighbour.lr:.3g}) trained again on a second data order: "
        f"{_loss(top_again)} against {_loss(neighbour_again)} (first order "
        f"{top.repeat['first_val_loss']:.4g} against {neighbour.val_loss:.4g}, a gap of "
        f"{first:+.2g}). Over both orders, {outcome}.",
        top_lr=top.lr, held=held, score=finite_or_none(top.val_loss), **top.repeat)


def _loss(candidate: Candidate) -> str:
    return f"{candidate.val_loss:.4g}" if math.isfinite(candidate.val_loss) else "diverged"

