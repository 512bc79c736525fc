"""Findings about how a user's loop calls `trainwise.Monitor` (not about the training): each
says which call is missing or misplaced, and replaces the "healthy" verdict, which would claim
more than the monitor could see."""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, Severity, error, warning
from trainwise.train.entry_checks import coupled_decay, shown_names

STAGE = "train"
SCALED_LOSS_RATIO = 2.0  # epoch 1's training loss this many times below its validation loss:
# in the first epoch no sample has been seen twice, so the two estimate the same loss (the
# mean over the epoch is, if anything, above the end-of-epoch validation loss); a loss divided
# by K for gradient accumulation reads K times too low


CLIPPED_MIN_STEPS = 20  # logged gradient norms needed before calling them pinned...
CLIPPED_SHARE = 0.95  # ...95% of them within CLIPPED_TOLERANCE (relative) of their maximum
CLIPPED_TOLERANCE = 1e-4  # clip_grad_norm_ leaves max_norm x norm / (norm + 1e-6): 2e-5 off
# at a max_norm of 0.05, while unclipped norms of 16-row batches differ by 10-50%


def no_gradients(step: int) -> Finding:
    return warning(
        STAGE, "monitor_no_gradients",
        f"monitor.step found no gradient on the model at step {step}, so no gradient norm is "
        "logged: it was called before loss.backward() or after optimizer.zero_grad().",
        "Call monitor.step(loss, model, optimizer) after loss.backward() and before "
        "optimizer.step() / zero_grad().", step=step)


def zero_gradients(step: int) -> Finding:
    """Every gradient exactly zero from the first step: zero_grad(set_to_none=False) ran
    before monitor.step (it fills the gradients with zeros instead of removing them)."""
    return warning(
        STAGE, "monitor_no_gradients",
        f"monitor.step found every gradient on the model exactly zero from the first step to "
        f"step {step}, so no gradient norm is logged: it was called after "
        "optimizer.zero_grad(set_to_none=False) (which fills the gradients with zeros), or "
        "the loss does not depend on the model's parameters. Vanishing gradients look "
        "different: small, not exactly zero.",
        "Call monitor.step(loss, model, optimizer) after loss.backward() and before "
        "optimizer.step() / zero_grad().", step=step)


def no_parameters(model: nn.Module, step: int) -> Finding:
    return warning(
        STAGE, "monitor_no_parameters",
        f"The model passed to monitor.step ({type(model).__name__}) has no trainable "
        "parameters (none, or all requires_grad=False), so there is no gradient to measure.",
        "Pass the module being trained, the one whose parameters the optimizer updates: "
        "monitor.step(loss, model, optimizer).", step=step)


def missing_signals(history: list[dict[str, Any]], said: list[Finding]) -> list[Finding]:
    """What the loop never gave the monitor: a validation after an epoch, or the model (for
    the gradient norms). Without them the diagnosis cannot see overfitting, calibration or
    vanishing / exploding gradients, and "no problem found" would mean "not looked"."""
    steps = [r for r in history if r.get("kind") == "step"]
    found = []
    if steps and not any(_finite(r.get("val_loss")) for r in history if r.get("kind") == "epoch"):
        found.append(warning(
            STAGE, "monitor_no_validation",
            "No validation loss was recorded (monitor.evaluate or monitor.end_epoch(val_loss=...) "
            "never ran), so overfitting, calibration and the training-vs-validation curves "
            "cannot be judged.",
            "After each epoch call monitor.evaluate(model, val_loader, loss_fn), or "
            "monitor.end_epoch(val_loss=...) with the loss of your own evaluation."))
    gradients_said = any(f.code in ("monitor_no_gradients", "monitor_no_parameters")
                         for f in said)
    if steps and not gradients_said and all(r.get("grad_norm") is None for r in steps):
        found.append(warning(
            STAGE, "monitor_no_grad_norm",
            "No gradient norm was logged: monitor.step was not given the model, so vanishing "
            "or exploding gradients and gradient spikes cannot be seen.",
            "Pass the model: monitor.step(loss, model, optimizer), after loss.backward()."))
    clipped = clipped_norms(steps)
    return found if clipped is None else [*found, clipped]


def clipped_norms(steps: list[dict[str, Any]]) -> Finding | None:
    """Nearly every logged gradient norm equal to their maximum: clip_grad_norm_ ran before
    monitor.step, so the monitor measured the clip threshold, not the gradient (audit s14
    G12: 0.05 at every one of 128 steps), and spikes and vanishing gradients go unseen. A
    real gradient norm varies from batch to batch by far more than 1e-4 relative."""
    norms = [r["grad_norm"] for r in steps if _finite(r.get("grad_norm"))]
    if len(norms) < CLIPPED_MIN_STEPS or max(norms) <= 0:
        return None
    top = max(norms)
    pinned = sum(1 for g in norms if top - g <= CLIPPED_TOLERANCE * top)
    if pinned < CLIPPED_SHARE * len(norms):
        return None
    return warning(
        STAGE, "monitor_clipped_norms",
        f"The gradient norm was {top:.4g} (to 1e-4) at {pinned} of the {len(norms)} logged "
        "steps: the gradients were clipped before monitor.step, so it measured the clip "
        "threshold, not the gradient, and gradient spikes or vanishing gradients cannot be seen.",
        "Call monitor.step(loss, model, optimizer) right after loss.backward(), then "
        "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm), then optimizer.step().",
        clipped_at=top, pinned_steps=pinned, logged_steps=len(norms))


def scaled_loss(row: dict[str, Any], accumulation: int,
                losses: list[float] | None = None) -> Finding | None:
    """Epoch 1 (`row`) with a training loss far below its validation loss: the loss passed to
    monitor.step was divided (gradient accumulation), or validation differs from training.
    Not when the epoch's step `losses` rose within it by that factor: the epoch's mean then
    trails the loss at its end, where validation measures it (audit s14 G6)."""
    train, val = row.get("train_loss"), row.get("val_loss")
    if not (_finite(train) and _finite(val)) or train <= 0 or val < SCALED_LOSS_RATIO * train:
        return None
    if losses is not None and rose_within(losses):
        return None
    given = (f" (monitor.step multiplied it back by accumulation={accumulation})"
             if accumulation > 1 else "")
    return warning(
        STAGE, "monitor_loss_scaled",
        f"Epoch {row['epoch']}'s training loss ({train:.4g}){given} is {val / train:.1f}x below "
        f"its validation loss ({val:.4g}). In a first epoch no sample is seen twice, so the two "
        "should be close: the loss given to monitor.step is scaled (loss / K for gradient "
        "accumulation), or validation is not drawn or preprocessed like training.",
        "With gradient accumulation over K micro-batches, call monitor.step once per "
        "optimizer step with the loss you backpropagated and accumulation=K: "
        "monitor.step(loss, model, optimizer, accumulation=K). Otherwise check that the "
        "validation data get the same preprocessing as the training data.",
        ratio=round(val / train, 2), epoch=row["epoch"])


def rose_within(losses: list[float]) -> bool:
    """The median of the epoch's last quarter of step losses above SCALED_LOSS_RATIO x that of
    its first quarter (at least 4 steps): the loss climbed enough during the epoch to explain
    a gap that size. Audit s14 G6: SGD at lr 1.0, epoch 1's 32 losses went from a median of
    1.05 (first 8) to 24.5 (last 8; 300 at the last step), so its mean 15.9 read 5.1x below
    the end-of-epoch validation loss 81.9 and the Monitor blamed a scaled loss. Any rise did
    not do: a flat, noisy epoch (fine-tuning a converged model, loss / 4) rises by chance in
    half of the seeds, and lost its warning in 103 of 200 (review s14 VT4)."""
    finite = [v for v in losses if _finite(v)]
    quarter = len(finite) // 4
    if quarter < 1:
        return False
    first, last = statistics.median(finite[:quarter]), statistics.median(finite[-quarter:])
    return last > SCALED_LOSS_RATIO * first


def decayed_norms(model: nn.Module, optimizer: torch.optim.Optimizer) -> Finding | None:
    """The optimizer applies weight decay to biases and normalisation weights (METHOD §4.3:
    decay the matmul weights only), e.g. AdamW(model.parameters()) with its default 0.01."""
    from trainwise.model.optim import param_groups  # the rules the built-in loop uses

    decay_of = {id(p): float(group.get("weight_decay", 0.0))
                for group in optimizer.param_groups for p in group["params"]}
    spared = [(name, p) for group in param_groups(model, 1.0) if not group["weight_decay"]
              for name, p in zip(group["param_names"], group["params"], strict=True)]
    decayed = [name for name, p in spared if decay_of.get(id(p), 0.0) > 0]
    if not decayed:
        return None
    rate = max(decay_of[id(p)] for name, p in spared if name in decayed)
    norms = any(not name.endswith("bias") for name in decayed)  # say only what is there
    what = "biases and normalisation weights" if norms else "biases"
    shown = shown_names(decayed)
    kind = type(optimizer).__name__
    # never echo Adam back into the fix: adam_not_adamw says why (audit s15 M1)
    build = "AdamW" if coupled_decay(optimizer) else kind
    return warning(
        STAGE, "decay_on_norms",
        f"The optimizer ({kind}) applies weight decay ({rate:g}) to {what} ({shown}). "
        "Decay is meant for the matmul weights: on these it pulls the "
        "layers' offsets and scales toward zero and changes what the learning rate and decay "
        "found elsewhere mean.",
        "Build the optimizer from trainwise.param_groups(model, weight_decay=...) "
        f"(torch.optim.{build}(trainwise.param_groups(model, {rate:g}), lr=...)) or use "
        "trainwise.make_adamw(model, lr=..., weight_decay=...).",
        num_params=len(decayed), params=decayed[:20])


def loop_raised(exc: BaseException, step: int, epoch: int) -> Finding:
    """The user's loop raised inside `with Monitor(...)`: the run did not finish."""
    text = str(exc).strip().splitlines()[0][:200].rstrip(".") if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return error(
        STAGE, "loop_raised",
        f"The training loop raised {what} (at step {step}, epoch {epoch}); the findings cover "
        "the steps before it.",
        "Fix the error (its traceback follows this run's output) and run the loop again; to "
        "continue from a checkpoint of your own, open the folder with "
        "trainwise.Monitor(..., resume=True).",
        exception=type(exc).__name__, step=step, epoch=epoch)


MONITOR_RESUME = ("Nothing to fix. To go on from the last finished epoch, run the loop again "
                  "with trainwise.Monitor(..., resume=True) (and your own model and optimizer "
                  "state); overwrite=True starts afresh.")


def loop_interrupted(step: int, epoch: int, withheld: list[str],
                     fix: str = MONITOR_RESUME) -> Finding:
    """Ctrl-C in the user's loop or in fit (audit s16 N12, review s16 VX3): the user's
    decision, not an error to fix; the rules that judge where training ended (END_RULES) say
    nothing of a run cut short. `fix`: how to go on (the Monitor's by default)."""
    kept = (f"; withheld as they judge where training ended: {', '.join(withheld)}"
            if withheld else "")
    return Finding(
        STAGE, Severity.INFO, "loop_interrupted",
        f"Training was interrupted by the user (KeyboardInterrupt) at step {step} (epoch "
        f"{epoch}); the findings cover the steps before it{kept}.",
        {"exception": "KeyboardInterrupt", "step": step, "epoch": epoch, "withheld": withheld},
        fix)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
