"""What the short runs found: each candidate's scores, the chosen lr and the findings that
say how it was chosen (a table of lr -> validation loss, an edge that may hide a better lr)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from trainwise.findings import Finding, Severity, error, info, warning
from trainwise.tune.candidates import BLOWN_UP, beyond_edge, blown_up, refine_how


@dataclass
class Candidate:
    lr: float  # the peak lr of the schedule
    val_loss: float  # after the last epoch (the median of `tail`, if any); inf: diverged
    curve: list[float]  # validation loss after each epoch
    train_curve: list[float]  # mean training loss of each epoch
    seconds: float
    round: int = 0  # 0: the first grid; k: added by the k-th widening
    tail: list[float] = field(default_factory=list)  # losses spread over the last epoch
    row_losses: list[float] = field(default_factory=list)  # each validation row's (the first
    # MAX_NOISE_ROWS), at the end, for short_run_noise; not in tune.json
    repeat: dict[str, Any] | None = None  # the top of the range trained again on a second
    # data order (short_run_confirm): val_loss is then the two orders' paired average

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "val_loss": finite_or_none(self.val_loss),
                "curve": [finite_or_none(v) for v in self.curve],
                "train_curve": [finite_or_none(v) for v in self.train_curve],
                "tail": [finite_or_none(v) for v in self.tail],
                "seconds": round(self.seconds, 3), "round": self.round,
                **({"repeat": self.repeat} if self.repeat else {})}


@dataclass
class ShortRunResult:
    chosen_lr: float  # refine's pick, or what short_run_learning / short_run_noise settled on;
    # nan when none trained
    candidates: list[Candidate]  # in the order they ran
    widened: bool
    spacing: str  # "log" or "even"
    num_epochs: int
    findings: list[Finding] = field(default_factory=list)
    best_lr: float = math.nan  # the candidate with the lowest validation loss
    constant_lr: bool = False  # make_scheduler gave no scheduler: the lr stayed constant
    horizon_epochs: float = math.nan  # the epochs the scores stand for (tail: before the end)
    tail_evals: int = 1  # validation losses per score (> 1: their median, over the last epoch)
    num_steps: int = 0  # optimizer steps per run: fewer than num_epochs' when capped (max_steps)
    capped: bool = False  # ended mid-epoch at max_steps, before num_epochs
    told_apart: bool = True  # the best beat every other candidate beyond noise (short_run_noise)
    val_rows: int = 0  # validation rows the scores average over (0: unknown); the row losses
    # (Candidate.row_losses) cover the first MAX_NOISE_ROWS of them
    stretched: list[float] | None = None  # [low, high] the candidates spanned when the range
    # was narrower than MIN_SPAN (candidates.stretched_to_min_span); None: the range as given
    kept_range_point: str = ""  # why chosen_lr is the range test's point, kept: "no_learning"
    # (short_run_learning) or "flat_grid" (short_run_noise); "": the short runs chose. A
    # one-cycle reading that the horizon scaling must not touch

    def to_dict(self) -> dict[str, Any]:
        """The short-run part of tune.json."""
        return {"candidates": [c.to_dict() for c in self.candidates],
                "chosen_lr": finite_or_none(self.chosen_lr),
                "best_lr": finite_or_none(self.best_lr),
                "widened": self.widened, "stretched": self.stretched, "spacing": self.spacing,
                "num_epochs": self.num_epochs, "constant_lr": self.constant_lr,
                "horizon_epochs": finite_or_none(self.horizon_epochs),
                "tail_evals": self.tail_evals,
                "num_steps": self.num_steps, "capped": self.capped}


def verdict(candidates: list[Candidate], widened: bool, spacing: str, num_epochs: int,
             max_widenings: int, tail_evals: int = 1, length: str = "",
             max_lr: float = math.inf) -> ShortRunResult:
    finite = [c for c in candidates if math.isfinite(c.val_loss)]
    if not finite:
        lrs = ", ".join(f"{c.lr:.2g}" for c in candidates)
        return ShortRunResult(math.nan, candidates, widened, spacing, num_epochs, [error(
            "tune", "short_runs_all_diverged",
            f"Every short run diverged (peak lrs {lrs}): the loss or the gradients became "
            "non-finite.", "Lower tune.start_lr and rerun the range test; if the loss "
            "explodes at any lr, go back to stage 'check' (loss at init, gradient flow).",
            lrs=[c.lr for c in candidates])])
    best = min(finite, key=best_key)
    chosen, how, fitted = refine_how(lr_loss_pairs(candidates))
    result = ShortRunResult(chosen, candidates, widened, spacing, num_epochs, best_lr=best.lr,
                            tail_evals=tail_evals)
    length = length or f"{num_epochs} epoch(s)"
    scored = f" (the median of {tail_evals} over the last epoch)" if tail_evals > 1 else ""
    table = "; ".join(f"{c.lr:.2g}: {c.val_loss:.4g}" for c in sorted(candidates,
                                                                       key=lambda c: c.lr))
    result.findings.append(info(
        "tune", "short_runs",
        f"Short runs ({len(candidates)} candidates, {length} each, the real "
        f"schedule compressed; {spacing}-spaced{', widened' if widened else ''}): peak lr -> "
        f"validation loss{scored} {table}. Best {best.lr:.3g}; chosen peak lr {chosen:.3g} "
        f"({_how(how, fitted, candidates)}).",
        chosen_lr=chosen, best_lr=best.lr, candidates=[c.to_dict() for c in candidates]))
    beyond = beyond_edge(lr_loss_pairs(candidates))
    if beyond is not None:
        result.findings.append(_edge(best.lr, beyond, max_widenings, max_lr))
    return result


def best_key(candidate: Candidate) -> tuple[float, float]:
    """The best candidate: the lowest loss, the lowest lr on an exact tie, as refine_how's
    argmin over the lrs in order (the run order named 5.6e-08 best and refine chose 4.5e-09
    on bit-equal losses, review s13 VT5)."""
    return candidate.val_loss, candidate.lr


def _how(how: str, fitted: list[float], candidates: list[Candidate]) -> str:
    """How refine_how chose, in words; the blown-up candidates in its fit named (only a
    vertex is pulled by them: an edge or a concave fit keeps the best itself)."""
    words = {"vertex": "the minimum of a parabola through the best and its neighbours, in "
                       "log lr",
             "edge": "the best itself: it is the lowest or highest lr fitted",
             "concave": "the best itself: the parabola through it and its neighbours curves "
                        "down, with no minimum"}[how]
    pulling = [lr for lr in blown_up(lr_loss_pairs(candidates)) if lr in fitted] \
        if how == "vertex" else []
    if pulling:
        names = ", ".join(f"{lr:.2g}" for lr in pulling)
        are, pull = ("are", "they pull") if len(pulling) > 1 else ("is", "it pulls")
        words += (f"; {names} blew up (loss over {BLOWN_UP:g}x the best's and the lowest "
                  f"lr's) and {are} in the fit, which {pull} towards lower lrs; compare the "
                  "candidates before trusting the vertex")
    return words


def _edge(best_lr: float, beyond: float, max_widenings: int, max_lr: float) -> Finding:
    """The best is at an edge: below max_lr more widenings may help; past it the range
    test's loss diverged (or the test ended), so nothing there is tried (divergence_lr)."""
    if beyond <= max_lr * (1 + 1e-9):
        return warning(
            "tune", "short_runs_edge",
            f"After {max_widenings} widening(s) the best short run ({best_lr:.3g}) is still at "
            "the edge of the lrs tried, so a better lr may lie beyond it.",
            "Raise tune.max_widenings, or check the range test's curve (lr_range.json) for a "
            "range that is off; training goes on with the best lr tried.", chosen_lr=best_lr)
    return Finding(  # an info with a fix: what to do when the test never saw the rise
        "tune", Severity.INFO, "short_runs_at_range_top",
        f"The best short run ({best_lr:.3g}) is the highest lr tried: the next widening step "
        f"({beyond:.3g}) would pass {max_lr:.3g}, where the range test's loss climbed back "
        "above its starting level (or the test ended), so it was not trained.",
        {"chosen_lr": best_lr, "max_lr": max_lr, "next_lr": beyond},
        "Nothing to do when the range test's loss rose (lr_range); if it never rose "
        "(lr_range_no_rise), raise tune.end_lr and rerun.")


def drop_edge_findings(result: ShortRunResult) -> None:
    """Remove the findings that say the best sits at an edge (short_runs_edge,
    short_runs_at_range_top): once the pick is settled otherwise (a tie's middle, the range
    test's point after no learning) the edge no longer decides it."""
    result.findings = [f for f in result.findings
                       if f.code not in ("short_runs_edge", "short_runs_at_range_top")]


def lr_loss_pairs(candidates: list[Candidate]) -> list[tuple[float, float]]:
    return [(c.lr, c.val_loss) for c in candidates]


def finite_or_none(value: float) -> float | None:
    """A score for JSON: nan and inf (no score, diverged) are written as null."""
    return float(value) if math.isfinite(value) else None
