"""Short runs that learned nothing: when no candidate's validation loss came below the loss at
the start (the untrained model's, or chance for a cross-entropy), the lr is not what is wrong,
and no lr is chosen from these runs.

On random labels (1500 rows, 3 classes) every candidate from 1e-6 to 0.017 scored 1.094-1.118
against chance ln 3 = 1.099, and tune "chose" 0.0175, the one with the highest loss, and said
"Nothing to do" (audit s13 T6).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from trainwise.findings import warning
from trainwise.model.class_weights import ClassWeightedCrossEntropy
from trainwise.train.diagnose_common import LEARNED_MARGIN
from trainwise.train.not_learned import chance_loss, learned_below
from trainwise.tune.short_run_result import drop_edge_findings


def start_loss(loss_fn: Any, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The loss to beat: the untrained model's over the validation rows, or for a
    cross-entropy over C classes ln C (a uniform guess) when lower: an init with large logits
    starts above chance, and reaching chance from there is no learning."""
    loss = float(loss_fn(outputs, targets))
    cross_entropy = isinstance(loss_fn, (nn.CrossEntropyLoss, ClassWeightedCrossEntropy))
    if cross_entropy and outputs.ndim >= 2 and outputs.shape[1] > 1 and \
            not torch.is_floating_point(targets):
        loss = min(loss, chance_loss(outputs.shape[1]))
    return loss


def learned(candidates: list[Any], start: float) -> bool:
    """Some candidate scored below `start` by more than LEARNED_MARGIN of it (the bar
    train.not_learned uses against chance); True when there is nothing to judge by (no finite
    score or start), so that nothing is stopped on no evidence."""
    finite = [c.val_loss for c in candidates if math.isfinite(c.val_loss)]
    return not finite or not math.isfinite(start) or learned_below(min(finite), start)


def check_learning(result: Any, start: float, range_lr: float | None) -> bool:
    """On a ShortRunResult: True when the candidates learned (`learned`); else a warning that
    points back to the data and check stages, and the pick becomes the range test's point
    `range_lr` (kept as the short runs' own without it)."""
    if learned(result.candidates, start):
        return True
    finite = [c for c in result.candidates if math.isfinite(c.val_loss)]
    best = min(finite, key=lambda c: c.val_loss)
    kept = f"the range test's point {range_lr:.3g}" if range_lr is not None else \
        f"refine's pick {result.chosen_lr:.3g} (no range test's point was given)"
    before = result.chosen_lr
    if range_lr is not None:
        result.chosen_lr, result.kept_range_point = range_lr, "no_learning"
    instead = f", not the short runs' pick {before:.3g}" if range_lr is not None else ""
    result.told_apart = False
    drop_edge_findings(result)  # no edge to widen past: nothing learnt
    lrs = sorted(c.lr for c in result.candidates)
    result.findings.append(warning(
        "tune", "short_runs_no_learning",
        f"No short run (peak lrs {lrs[0]:.3g} to {lrs[-1]:.3g}) lowered the validation loss "
        f"below the loss at the start, {start:.4g} (the untrained model's, or ln C for a "
        f"cross-entropy): the best, {best.lr:.3g}, scored {best.val_loss:.4g}, within "
        f"{LEARNED_MARGIN:.0%} of it or above. The lr is not the problem, so none is chosen from "
        f"these runs; training uses {kept}{instead}.",
        "If the short runs had few steps (short_runs_few_steps), lower train.batch_size or "
        "raise train.max_epochs and rerun; otherwise go back to stage 'data' (do the labels "
        "follow the inputs? a shuffled or misaligned target column) and stage 'check' "
        "(overfit one batch, gradient flow).",
        start_loss=start, best_lr=best.lr, best_loss=best.val_loss, chosen_lr=result.chosen_lr))
    return False
