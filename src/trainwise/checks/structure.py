"""Does the loss fit the model's output and the task, and does each output see only its sample?

These are the silent bugs Karpathy lists: softmax fed to cross-entropy, MSE on class indices,
a (B, 1) vs (B,) broadcast, and a view that mixes samples of a batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from trainwise.checks._common import STAGE, LossFn
from trainwise.checks.squashing import finishing_modules, squashed_range
from trainwise.findings import Finding, error
from trainwise.model.baselines import RegressionLoss
from trainwise.model.input_tree import map_tensors, num_rows, take, tensors
from trainwise.model.summary import quiet_forward
from trainwise.model.user_frame import at_user_line

_REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, RegressionLoss)
_CLASSIFICATION_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
_SQUASHING = (nn.Softmax, nn.Softmin, nn.Softmax2d, nn.Sigmoid, nn.Hardsigmoid)
# Final activations that bound a regression output, and to what.
_UNIT_RANGE = (nn.Sigmoid, nn.Hardsigmoid, nn.Softmax, nn.Softmin)
_SIGNED_RANGE = (nn.Tanh, nn.Softsign)
# A bounded output is a bug when this share of targets lies out of its reach (standardised
# targets below a sigmoid: ~50%); targets in [0, 1] by nature (a rate) are left alone.
OUT_OF_REACH_SHARE = 0.1
# Trained evidence for a bound inside forward() (torch.sigmoid(...)): the outputs for targets
# beyond it hug it, within this share of its width (300 steps on diabetes: <= 0.013 and
# >= 0.978 for targets below 0 and above 1).
SATURATION_MARGIN = 0.05
# ... for most such targets, and at least half on each side: a unit or two saturates the wrong
# way (target 1.17, output 3e-4), and a side may hold only 4 of 32 targets.
SATURATION_SHARE = 0.8
SATURATION_SIDE_SHARE = 0.5


def _task_mismatch(loss_fn: LossFn, task: str) -> list[Finding]:
    if task == "classification" and isinstance(loss_fn, _REGRESSION_LOSSES):
        return [error(STAGE, "loss_task_mismatch",
                      f"{type(loss_fn).__name__} is a regression loss, but the task is "
                      "classification: it treats class indices as numbers (class 9 'closer' "
                      "to 8 than to 0).",
                      "use nn.CrossEntropyLoss on logits (B, C) and int64 labels (B,); "
                      "revisit the model stage.", loss=type(loss_fn).__name__)]
    if task == "regression" and isinstance(loss_fn, _CLASSIFICATION_LOSSES):
        return [error(STAGE, "loss_task_mismatch",
                      f"{type(loss_fn).__name__} is a classification loss, but the task is "
                      "regression.",
                      "use nn.MSELoss (or trainwise's RegressionLoss) with float targets, or "
                      "set task = \"classification\"; revisit the model stage.",
                      loss=type(loss_fn).__name__)]
    return []


def _last_leaf(finished: list[nn.Module]) -> nn.Module | None:
    """The last module without children to finish the forward (`finished`, from
    finishing_modules): the final activation, if there is one as a module."""
    return next((m for m in reversed(finished) if not list(m.children())), None)


def _probabilities_fed(loss_fn: LossFn, out: torch.Tensor,
                       last: nn.Module | None) -> list[Finding]:
    """CrossEntropyLoss applies log_softmax itself: fed probabilities, its logits live in [0, 1]
    and the loss can never get near 0 (floor ln(1 + (C-1)/e) per sample).

    Evidence: a Softmax/Sigmoid module runs last, or every row sums to 1 (a functional softmax).
    Values in [0, 1] alone are not: logits of a default-initialised net are small and can all
    land there (cnn2d, seed 2: 32 x 4 logits in [0.0, 0.6]), as do a zero-initialised head's."""
    if not isinstance(loss_fn, _CLASSIFICATION_LOSSES) or out.ndim < 2 or out.shape[1] < 2:
        return []
    sums_to_one = bool(((out.sum(1) - 1).abs() < 1e-3).all())
    in_unit = bool(((out >= 0) & (out <= 1)).all())
    squashing = isinstance(last, _SQUASHING)
    fix = ("return raw logits from forward() (drop the final Softmax/Sigmoid); "
           "CrossEntropyLoss applies log_softmax itself; revisit the model stage.")
    if isinstance(loss_fn, nn.CrossEntropyLoss) and (squashing or (in_unit and sums_to_one)):
        kind = (f"ends with {type(last).__name__}: it outputs values in [0, 1]" if squashing
                else "outputs softmax probabilities (every row sums to 1)")
        return [error(STAGE, "softmax_before_loss",
                      f"the model {kind}, and CrossEntropyLoss applies softmax again.",
                      fix, output_min=float(out.min()), output_max=float(out.max()))]
    lse = out.logsumexp(1)
    if isinstance(loss_fn, nn.NLLLoss) and not bool((lse.abs() < 1e-3).all()):
        return [error(STAGE, "softmax_before_loss",
                      "NLLLoss expects log-probabilities, but the outputs are not "
                      "log_softmax (their logsumexp is not 0).",
                      "end forward() with log_softmax, or use CrossEntropyLoss on raw "
                      "logits; revisit the model stage.", logsumexp=float(lse.mean()))]
    return []


def _range_of(last: nn.Module | None) -> tuple[float, float] | None:
    if isinstance(last, _UNIT_RANGE):
        return 0.0, 1.0
    if isinstance(last, _SIGNED_RANGE):
        return -1.0, 1.0
    if isinstance(last, nn.Hardtanh):  # also ReLU6
        return float(last.min_val), float(last.max_val)
    return None


def _beyond(y: torch.Tensor, low: float, high: float, margin: float = 0.0) -> torch.Tensor:
    """-1 for targets below low - margin, +1 above high + margin, 0 between."""
    y = y.flatten().float()
    return (y > high + margin).long() - (y < low - margin).long()


def _out_of_reach(how: str, low: float, high: float, y: torch.Tensor,
                  fix_layer: str) -> list[Finding]:
    share = float((_beyond(y, low, high) != 0).float().mean())
    if share < OUT_OF_REACH_SHARE:
        return []
    return [error(STAGE, "output_bounded",
                  f"the model {how}, so its outputs lie in [{low:g}, {high:g}], but {share:.0%} "
                  f"of the targets lie outside (they span [{float(y.min()):.3g}, "
                  f"{float(y.max()):.3g}]): it can never predict them.",
                  f"for regression return the raw output of the last linear layer ({fix_layer}"
                  "); if the targets are bounded by nature, scale them into that range "
                  "instead; revisit the model stage.",
                  output_range=[low, high], share_out_of_range=share,
                  target_range=[float(y.min()), float(y.max())])]


# Three detectors report output_bounded, for three ways a regression output gets bounded:
# - _bounded_head (check stage, before training): a final Sigmoid/Tanh/... module, by its type;
# - _squashed_inside (check stage, before training): a torch.sigmoid/tanh/clamp in forward()
#   after the last layer with weights, by pushing that layer's output (checks/squashing.py);
# - saturated_output (after the overfit-one-batch run, checks/learning.py): the fallback for
#   what the probe cannot push, by the trained outputs hugging [0, 1] or [-1, 1], e.g. a head
#   written in forward() with the model's own parameters (x @ self.w: no weighted module
#   after the squash's input) or a forward that rejects the pushed values. It runs only on a
#   regression model that failed to overfit one batch.
def _bounded_head(out: torch.Tensor, last: nn.Module | None, y: torch.Tensor) -> list[Finding]:
    """Regression through a final Sigmoid/Tanh module, seen before any training. The outputs
    must be inside the range too: a forward that rescales after the module is fine."""
    bounds = _range_of(last)
    if bounds is None or not (bool((out >= bounds[0]).all()) and bool((out <= bounds[1]).all())):
        return []
    name = type(last).__name__
    return _out_of_reach(f"ends with {name}", *bounds, y, f"drop the final {name}")


def _squashed_inside(model: nn.Module, x: torch.Tensor, out: torch.Tensor,
                     finished: list[nn.Module], y: torch.Tensor) -> list[Finding]:
    """Regression through torch.sigmoid/tanh/clamp inside forward(): no module shows it, so
    checks/squashing probes what forward() does to a pushed pre-activation."""
    squashed = squashed_range(model, x, out, finished)
    if squashed is None:
        return []
    layer, kind, low, high = squashed
    return _out_of_reach(f"squashes the output of its last layer with weights, {layer} "
                         f"({kind}), inside forward() (a torch.sigmoid, tanh or clamp)",
                         low, high, y,
                         f"drop the sigmoid/tanh/clamp that forward() applies after {layer}")


def saturated_output(out: torch.Tensor, y: torch.Tensor) -> list[Finding]:
    """After training on (x, y): outputs that stay inside [0, 1] (or [-1, 1]) and pile up at the
    bound wherever the target lies beyond it come from a squashing function inside forward().
    Each side with targets beyond it must show it: a model that merely failed (ignores x,
    predicts the mean ~0) hugs the lower bound only, never the upper one too."""
    out, y = out.detach().flatten().float(), y.flatten().float()
    if out.shape != y.shape:
        return []
    for low, high in ((0.0, 1.0), (-1.0, 1.0)):
        if bool((out >= low).all()) and bool((out <= high).all()):
            margin = SATURATION_MARGIN * (high - low)
            side = _beyond(y, low, high, margin)
            hug = torch.where(side > 0, out >= high - margin, out <= low + margin)
            sides = [float(hug[side == s].float().mean()) for s in (-1, 1)
                     if bool((side == s).any())]
            if sides and min(sides) >= SATURATION_SIDE_SHARE \
                    and float(hug[side != 0].float().mean()) >= SATURATION_SHARE:
                return _out_of_reach("squashes its output (a sigmoid/tanh in forward()?)",
                                     low, high, y, "drop the final sigmoid/tanh")
            return []
    return []


def _loss_call(loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor) -> list[Finding]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loss = loss_fn(out, y)
        except Exception as exc:  # noqa: BLE001 - reported, with what was passed in
            line, frame = at_user_line(exc)
            return [error(STAGE, "loss_failed",
                          f"the loss function raised{line}: {type(exc).__name__}: {exc}",
                          f"make the loss accept outputs {tuple(out.shape)} ({out.dtype}) and "
                          f"targets {tuple(y.shape)} ({y.dtype}); revisit the model stage.",
                          output_shape=list(out.shape), target_shape=list(y.shape), **frame)]
    if any("broadcast" in str(w.message) for w in caught):
        return [error(STAGE, "loss_broadcast",
                      f"the loss broadcasts outputs {tuple(out.shape)} against targets "
                      f"{tuple(y.shape)}: it averages a (B, B) grid, not B pairs.",
                      "make the shapes equal (output.squeeze(1), or trainwise's "
                      "RegressionLoss); revisit the model stage.",
                      output_shape=list(out.shape), target_shape=list(y.shape))]
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        return [error(STAGE, "loss_not_scalar",
                      "the loss function does not return a scalar tensor.",
                      "use reduction='mean' (the default); revisit the model stage.")]
    return []


def check_loss_fit(model: nn.Module, loss_fn: LossFn, x: Any, y: torch.Tensor,
                   task: str) -> list[Finding]:
    """The loss suits the task, gets logits (not probabilities), pairs shapes exactly, and a
    regression output can reach its targets."""
    findings = _task_mismatch(loss_fn, task)
    if findings:
        return findings
    x = take(x, slice(32))
    with quiet_forward(model):
        out, finished = finishing_modules(model, x)
        last = _last_leaf(finished)
        if task == "classification":
            findings = _probabilities_fed(loss_fn, out, last)
        elif isinstance(out, torch.Tensor):
            findings = (_bounded_head(out, last, y)
                        or _squashed_inside(model, x, out, finished, y))
        return findings + _loss_call(loss_fn, out, y[:32])


def _mixes_in_eval(model: nn.Module) -> bool:
    """BatchNorm without running stats uses batch statistics even in eval: mixing is by design."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats
               for m in model.modules())


def _watched(x: Any) -> Any:
    """The first 4 samples of every input, the floating ones as leaves that record gradients."""
    return map_tensors(lambda t: t[:4].detach().clone().requires_grad_(t.is_floating_point()),
                       x)


def check_batch_mixing(model: nn.Module, x: Any) -> list[Finding]:
    """Karpathy's dependency test: d output[0] / d x[i] must be 0 for every other sample i.
    A view(C, B, T) where a permute was meant keeps every shape right and fails only here.
    Several inputs: the gradients reaching every floating one are summed."""
    if num_rows(x) < 2 or _mixes_in_eval(model):
        return []
    xb = _watched(x)
    watched = [t for t in tensors(xb) if t.requires_grad]
    if not watched:
        return []  # token ids and the like: no gradient to follow
    with quiet_forward(model), torch.enable_grad():
        out = model(xb)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return []  # nothing reaches the output: the gradient checks say so
        grads = [g for g in torch.autograd.grad(out[0].sum(), watched, allow_unused=True)
                 if g is not None]
    if not grads:
        return []
    leak = sum(g[1:].abs().reshape(len(g) - 1, -1).sum(1) for g in grads)
    if not bool((leak > 0).any()):
        return []
    return [error(STAGE, "batch_mixing",
                  "the output for sample 0 depends on other samples of the batch: a "
                  "view/reshape mixes the batch dimension with the others.",
                  "use permute/transpose (not view) to reorder dimensions, and flatten with "
                  "x.flatten(1); revisit the model stage.",
                  samples=(leak > 0).nonzero().flatten().add(1).tolist())]

