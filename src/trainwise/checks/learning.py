"""Checks (d), (e), (f): the model can learn. Overfit one small batch; beat an input-independent
twin trained the same way on zeroed inputs; see the loss fall in a short train/validate cycle.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from trainwise.checks._common import (
    STAGE,
    LossFn,
    MakeOptimizer,
    fitting_mode,
    loss_of,
    train_steps,
)
from trainwise.checks.structure import saturated_output
from trainwise.findings import Finding, Severity, error, info, warning
from trainwise.model.input_tree import map_tensors, num_rows, take

OVERFIT_BATCH = 32
# Healthy convnets/MLPs memorise 32 samples in 10-60 steps, a small GRU or transformer in
# 60-200; the search stops at the target, so only failing models pay for all 300.
OVERFIT_STEPS = 300
# Memorised means: cross-entropy under 5% of ln C (at least 0.05), or MSE under 5% of the
# batch's target variance (what the best constant predictor scores). Measured against these
# rather than the loss at init, which a mis-scaled model inflates (x1000 inputs: 190).
OVERFIT_FRACTION = 0.05
OVERFIT_CE_ABSOLUTE = 0.05
# Nearly memorised: within 3x the target after falling by 90% or more. Healthy models land
# there on unlucky seeds (1.07 -> 0.054 vs a target of 0.049); the bugs this test exists for
# plateau far above it (softmax before cross-entropy: 50% of ln C; a sigmoid regression
# head: 60% of the variance; ignored inputs: 100%).
NEARLY_FACTOR = 3.0
NEARLY_DROP = 0.9
# Slow, not stuck: down 85% or more and still descending at the end (the last 30 steps' best
# 5% under the best before). A correct 2-layer MLP at AdamW lr 1e-3 ends 1.13 -> 0.15 in 300
# steps, 18-20% down over its last 30 (audit s11 D9); at 3e-3 it memorises in ~150. The bugs
# above plateau: their last 30 steps gain < 1%.
SLOW_DROP = 0.85
SLOW_RATIO = 0.95
# The real model's final loss over the zero-input twin's: a model that uses its inputs
# memorises the batch (ratio ~0); one that ignores them ends where the twin does (ratio 1).
INPUTS_RATIO = 0.9
# Earlier warnings that explain a model not learning from its inputs, and the stage to revisit.
INPUT_FAULTS = {"inputs_not_normalised": "data", "dead_relu": "model",
                "gradient_missing": "model", "gradient_vanishing": "model",
                "gradient_exploding": "model"}
TWIN_STEPS = 100
# Over half the model's values frozen: a head on a pretrained backbone (a linear probe), which
# need not memorise a batch: 78% frozen, the head alone went 1.15 -> 0.287 in 300 steps
# (audit s14 G11), a failure that says nothing of a bug.
FROZEN_SHARE = 0.5
SMOKE_BATCH = 32
SMOKE_EPOCHS = 2
SMOKE_MIN_STEPS = 30  # at least this many updates, even when the subset is small
# The training loss (whole train part, no dropout: noise-free) must end below this fraction
# of its start. Slow but healthy models (GRU, transformer) drop 8-10% in 30 steps; a model
# that ignores its inputs drops 0% on balanced classes.
SMOKE_DROP = 0.97


def _diverged(where: str, losses: list[float]) -> Finding:
    # A warning, not an error: the learning rate is not tuned yet and may be the cause.
    return warning(STAGE, "loss_diverged",
                 f"the loss became {losses[-1]} at step {len(losses) - 1} of the {where}.",
                 "look for numerically unsafe ops (log/sqrt/exp) in forward() or the loss, "
                 "and lower the learning rate; revisit the model stage.",
                 losses=losses[-10:])


def _still_falling(losses: list[float], window: int = 30, ratio: float = 0.8) -> bool:
    """The best loss of the last `window` steps is under `ratio` x the best before them."""
    if len(losses) < 2 * window:
        return True
    return min(losses[-window:]) < ratio * min(losses[:-window])


def _failed_fix(slow: bool) -> str:
    if slow:
        return ("the model learns, slowly at this learning rate (none is tuned yet): rerun the "
                "check at a 3x higher one (train.lr for `trainwise run`, make_optimizer= for "
                "trainwise.check); if the loss then stalls far above the target, check the "
                "loss gets raw logits and no layer is frozen or squashed; revisit the model "
                "stage.")
    return ("check the loss gets raw logits (no softmax/sigmoid at the end), labels line up "
            "with inputs, no layer is frozen or squashed; then try another learning rate or a "
            "wider model; revisit the model stage.")


def _overfit_verdict(losses: list[float], final: float, target: float,
                     batch_size: int, floor: float = 0.0) -> list[Finding]:
    """Falls, ratios and the nearly-memorised margin are measured above the loss's floor."""
    best = min([*losses, final])
    above = [loss - floor for loss in [*losses, final]]
    falling = _still_falling(above)
    evidence = {"initial": losses[0], "final": final, "best": best, "target": target,
                "floor": floor, "steps": len(losses), "batch_size": batch_size,
                "still_falling": falling}
    if best <= target:
        of_floor = f" (label smoothing's floor: {floor:.3g})" if floor else ""
        return [info(STAGE, "overfit_batch_ok",
                     f"memorised a small batch: loss {losses[0]:.3g} -> {best:.3g} in "
                     f"{len(losses)} steps{of_floor}.", **evidence)]
    drop = 1.0 - min(above) / above[0] if above[0] > 0 else 0.0
    if min(above) <= NEARLY_FACTOR * (target - floor) and drop >= NEARLY_DROP:
        return [info(STAGE, "overfit_batch_ok",
                     f"nearly memorised a small batch: loss {losses[0]:.3g} -> {best:.3g} in "
                     f"{len(losses)} steps ({drop:.0%} down, within {NEARLY_FACTOR:g}x of the "
                     f"{target:.3g} target): the model learns.", nearly=True, **evidence)]
    slow = falling or (drop >= SLOW_DROP and _still_falling(above, ratio=SLOW_RATIO))
    evidence["still_falling"] = slow
    trend = ("still falling: slow rather than stuck" if slow else
             "stuck on a plateau. A model that cannot memorise a few samples has a bug, not "
             "too little data")
    return [warning(STAGE, "overfit_batch_failed",
                    f"could not overfit one small batch in {len(losses)} steps: loss "
                    f"{losses[0]:.3g} -> {best:.3g} ({drop:.0%} down; needed <= {target:.3g}), "
                    f"{trend}.", _failed_fix(slow), **evidence)]


def _trainable_values(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter values, a tied parameter once."""
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique if p.requires_grad), sum(p.numel() for p in unique)


def _frozen_verdict(finding: Finding, model: nn.Module) -> Finding:
    """overfit_batch_failed on a mostly frozen model, as an info: only the trainable values
    could learn, which says nothing of a bug (the params_frozen warning names the frozen)."""
    trainable, total = _trainable_values(model)
    share = 1.0 - trainable / total if total else 0.0
    if finding.code != "overfit_batch_failed" or share <= FROZEN_SHARE:
        return finding
    seen = finding.evidence
    return Finding(STAGE, Severity.INFO, finding.code,
                   f"did not overfit one small batch in {seen['steps']} steps (loss "
                   f"{seen['initial']:.3g} -> {seen['best']:.3g}; needed <= "
                   f"{seen['target']:.3g}), with {share:.0%} of the model's values frozen: "
                   f"only the {trainable:,} trainable values of {total:,} could learn, and a "
                   "head on a frozen backbone need not memorise a batch.",
                   {**seen, "trainable_values": trainable, "frozen_share": share},
                   "if the frozen part is pretrained and frozen on purpose, nothing to do "
                   "(the train/validate cycle below shows whether the head learns); to test "
                   "that the whole model can learn, run trainwise.check on "
                   "copy.deepcopy(model).requires_grad_(True); revisit the model stage.")


def loss_floor(loss_fn: LossFn, num_classes: int) -> float:
    """The lowest loss a perfect model can reach: 0, except for nn.CrossEntropyLoss with
    label_smoothing eps (no class weights), whose best prediction is the smoothed target
    itself, q = 1 - eps + eps/C on the label and eps/C elsewhere, scoring its entropy
    -q ln q - (C-1)(eps/C) ln(eps/C): 0.291 for eps 0.1 over 3 classes, which the plain target
    (0.05 ln 3 = 0.055) can never reach (audit s11 D4)."""
    eps = float(getattr(loss_fn, "label_smoothing", 0.0))
    if (not isinstance(loss_fn, nn.CrossEntropyLoss) or loss_fn.weight is not None
            or eps <= 0 or num_classes < 2):
        return 0.0
    other = eps / num_classes
    label = 1.0 - eps + other
    return -label * math.log(label) - (num_classes - 1) * other * math.log(other)


def _overfit_target(y: torch.Tensor, task: str, num_classes: int, floor: float = 0.0) -> float:
    """Memorised: within 5% of the way from a uniform guess (ln C) down to the loss's floor."""
    if task == "classification":
        span = math.log(num_classes) - floor
        return floor + max(OVERFIT_FRACTION * span, OVERFIT_CE_ABSOLUTE)
    return OVERFIT_FRACTION * float(y.double().var()) if y.numel() > 1 else 0.0


def _stage_of(finding: Finding) -> str | None:
    """The stage an earlier warning blames, if it can explain a model that does not learn from
    its inputs (None: it cannot). loss_at_init_off blames the data when targets sit far from
    0 or the label leaks, the model when the outputs start large."""
    if finding.severity is not Severity.WARNING:
        return None
    if finding.code == "loss_at_init_off":  # too low means leakage: no reason to ignore x
        high = finding.evidence.get("direction") == "high"
        return finding.evidence.get("revisit", "model") if high else None
    return INPUT_FAULTS.get(finding.code)


_STAGE_ORDER = ("data", "split", "model")  # a data fault is fixed first: it feeds the model


def _earlier_causes(earlier: Sequence[Finding]) -> list[Finding]:
    """The earlier warnings that explain it, data faults first, then in check order."""
    causes = [f for f in earlier if _stage_of(f)]
    order = {stage: i for i, stage in enumerate(_STAGE_ORDER)}
    return sorted(causes, key=lambda f: order.get(str(_stage_of(f)), len(order)))


def _because(causes: list[Finding]) -> str:
    """', as the data-stage faults found earlier (a, b) predict', each code with its own stage
    when they blame more than one."""
    if not causes:
        return ""
    stages = {f.code: _stage_of(f) for f in causes}
    if len(set(stages.values())) == 1:
        return f", as the {stages[causes[0].code]}-stage faults found earlier " \
            f"({', '.join(stages)}) predict"
    return ", as faults found earlier predict (" + "; ".join(
        f"{code}: {stage} stage" for code, stage in stages.items()) + ")"


def _cause_fix(causes: list[Finding]) -> str:
    """The first cause's own fix (it names the stage to revisit), then the others by code."""
    rest = list(dict.fromkeys(f.code for f in causes[1:] if f.code != causes[0].code))
    return (f"as {causes[0].code} says: {causes[0].fix}"
            + (f" Then see {', '.join(rest)}." if rest else ""))


def _inputs_verdict(real: float, zero: float, constant_targets: bool,
                    earlier: Sequence[Finding] = ()) -> list[Finding]:
    evidence = {"real_inputs_loss": real, "zero_inputs_loss": zero, "ratio_limit": INPUTS_RATIO}
    if constant_targets:
        return [info(STAGE, "inputs_check_skipped",
                     "every target in the batch is the same, so a model needs no inputs to fit "
                     "it: real and zeroed inputs cannot be told apart.", **evidence)]
    if real <= INPUTS_RATIO * zero:
        return [info(STAGE, "inputs_used",
                     f"real inputs beat zeroed ones: loss {real:.3g} vs {zero:.3g} after the "
                     "same steps.", **evidence)]
    causes = _earlier_causes(earlier)
    codes = list(dict.fromkeys(f.code for f in causes))
    trained = (f"trained the same way, the model reaches loss {real:.3g} on real inputs and "
               f"{zero:.3g} on all-zero inputs")
    because = _because(causes)
    first = _cause_fix(causes) if causes else ""
    if real > zero / INPUTS_RATIO:
        # Much worse with inputs than without: they do reach the output, and drive it
        # somewhere bad (std-10 init: 949 vs 252); "ignored" would send the user to the data.
        return [error(STAGE, "inputs_hurt",
                      f"{trained}: the inputs do reach the output, but make it worse, not "
                      f"better: the outputs they produce are mis-scaled{because}.",
                      first or "re-initialise so the outputs start small "
                      "(trainwise.model.init.init_weights), and check the inputs are "
                      "normalised; revisit the model stage.", causes=codes, **evidence)]
    if causes:
        return [error(STAGE, "inputs_ignored",
                      f"{trained}: the model does not use its inputs{because}.", first,
                      causes=codes, **evidence)]
    return [error(STAGE, "inputs_ignored",
                  f"{trained}: the inputs are not reaching the output.",
                  "look for inputs zeroed/overwritten in the data pipeline or forward(), "
                  "a detached or constant path, or dead ReLUs; revisit the data stage, "
                  "then the model stage.", causes=codes, **evidence)]


def check_overfit_and_inputs(model: nn.Module, loss_fn: LossFn, x: torch.Tensor,
                             y: torch.Tensor, *, task: str, num_classes: int,
                             make_optimizer: MakeOptimizer, generator: torch.Generator,
                             earlier: Sequence[Finding] = ()) -> list[Finding]:
    """Checks (d) and (e) on one batch of OVERFIT_BATCH samples, each on its own copy.
    `earlier`: the findings of the checks before; their warnings may explain a failure here."""
    index = torch.randperm(num_rows(x), generator=generator)[:OVERFIT_BATCH].to(y.device)
    xb, yb = take(x, index), y[index]
    real = fitting_mode(copy.deepcopy(model))
    floor = loss_floor(loss_fn, num_classes) if task == "classification" else 0.0
    target = _overfit_target(yb, task, num_classes, floor)
    losses, steps = train_steps(real, loss_fn, xb, yb, make_optimizer, OVERFIT_STEPS,
                                stop_below=target)
    final = loss_of(real, loss_fn, xb, yb)
    if not math.isfinite(final) or not all(map(math.isfinite, losses)):
        return [_diverged("overfit-one-batch test", [*losses, final])]
    findings = [_frozen_verdict(_overfit_verdict(losses, final, target, num_rows(xb), floor)[0],
                                model)]
    if task == "regression" and findings[0].code == "overfit_batch_failed":
        with torch.no_grad():
            findings += saturated_output(real(xb), yb)
    # The twin needs only enough steps to learn the label prior; compare both after as many.
    twin_steps = min(steps, TWIN_STEPS)
    real_loss = final if twin_steps == steps else losses[twin_steps]
    twin = fitting_mode(copy.deepcopy(model))
    x_zero = map_tensors(torch.zeros_like, xb)
    train_steps(twin, loss_fn, x_zero, yb, make_optimizer, twin_steps)
    constant = bool((yb == yb[:1]).all())
    return findings + _inputs_verdict(real_loss, loss_of(twin, loss_fn, x_zero, yb), constant,
                                      earlier)


def check_smoke_cycle(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                      make_optimizer: MakeOptimizer,
                      generator: torch.Generator) -> list[Finding]:
    """Check (f): a short train/validate cycle on the subset (4/5 train, 1/5 validation)."""
    rows = num_rows(x)
    if rows < 2 * SMOKE_BATCH:
        return [info(STAGE, "smoke_cycle_skipped",
                     f"{rows} samples are too few for a train/validate cycle.")]
    order = torch.randperm(rows, generator=generator).to(y.device)
    num_val = rows // 5
    (xv, yv), (xt, yt) = (take(x, order[:num_val]), y[order[:num_val]]), \
        (take(x, order[num_val:]), y[order[num_val:]])
    net = fitting_mode(copy.deepcopy(model))
    before = loss_of(net, loss_fn, xt, yt), loss_of(net, loss_fn, xv, yv)
    num_steps = max(SMOKE_EPOCHS * (num_rows(xt) // SMOKE_BATCH), SMOKE_MIN_STEPS)
    losses, _ = train_steps(net, loss_fn, xt, yt, make_optimizer, num_steps,
                            batch_size=SMOKE_BATCH, generator=generator)
    after = loss_of(net, loss_fn, xt, yt), loss_of(net, loss_fn, xv, yv)
    if not all(map(math.isfinite, [*losses, *after])):
        return [_diverged("train/validate cycle", [*losses, *after])]
    evidence = {"train_loss_before": before[0], "train_loss_after": after[0],
                "val_loss_before": before[1], "val_loss_after": after[1], "steps": num_steps}
    if after[0] > SMOKE_DROP * before[0]:
        return [warning(STAGE, "smoke_loss_flat",
                        f"in {num_steps} steps on {num_rows(xt)} samples the training loss went "
                        f"{before[0]:.3g} -> {after[0]:.3g}: not down.",
                        "if the one-batch test passed, the data may not carry the signal "
                        "(labels shuffled against inputs?): revisit the data stage; else the "
                        "learning rate: the tune stage finds one.", **evidence)]
    val_note = "" if after[1] < before[1] else " (validation loss not down yet)"
    return [info(STAGE, "smoke_cycle_ok",
                 f"training loss {before[0]:.3g} -> {after[0]:.3g} in {num_steps} steps; "
                 f"validation {before[1]:.3g} -> {after[1]:.3g}{val_note}.", **evidence)]
