"""Check (c): gradient flow after one backward pass on a copy of the model."""

from __future__ import annotations

import statistics

import torch
from torch import nn

from trainwise.checks._common import STAGE, LossFn, MakeOptimizer, names_list
from trainwise.findings import Finding, error, info, warning

RECHECK_STEPS = 2
GRAD_VANISH_RATIO = 1e-4  # x the median weight-gradient norm (AUTOTRAINER uses 1e-3 first/last)
GRAD_EXPLODE_RATIO = 1e3


def _backward(loss: torch.Tensor) -> bool:
    """False when the loss has no graph at all (every path detached or under no_grad)."""
    if not loss.requires_grad:
        return False
    loss.backward()
    return True


def _without_gradient(model: nn.Module) -> tuple[list[str], list[str]]:
    """(names whose .grad is None, names whose .grad is all zeros), trainable params only."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    zero = [n for n, p in trainable if p.grad is not None and not bool(p.grad.any())]
    return missing, zero


def _still_zero(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
                make_optimizer: MakeOptimizer, zero: list[str]) -> list[str]:
    """A zero-initialised output layer blocks gradients to earlier layers for exactly one step;
    a dead path blocks them forever. Take a few steps and keep the names still at zero."""
    optimizer = make_optimizer(model)
    for _ in range(RECHECK_STEPS):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
    grads = dict(model.named_parameters())
    return [n for n in zero if grads[n].grad is None or not bool(grads[n].grad.any())]


def _constant_weights(model: nn.Module, names: list[str]) -> list[str]:
    """Weight matrices among `names` holding one value (e.g. all zeros): every unit of such a
    layer computes the same thing, so symmetry, not the graph, starves their gradients."""
    params = dict(model.named_parameters())
    return [n for n in names if params[n].ndim >= 2 and params[n].numel() > 1
            and bool((params[n] == params[n].flatten()[0]).all())]


def _missing_finding(missing: list[str], zero: list[str], total: int,
                     constant: list[str] | None = None) -> Finding:
    names = missing + zero
    every = len(names) == total
    make = error if every else warning
    symmetric = (f"; {names_list(constant)} hold one constant value (e.g. zero init), so "
                 "every unit computes the same thing" if constant else "")
    fix = ("re-initialise those weights randomly (trainwise.model.init.init_weights); then "
           if constant else "")
    return make(STAGE, "gradient_missing",
                f"{len(names)} of {total} trainable parameters get no gradient"
                f"{' (none at all: the loss is cut off from the weights)' if every else ''}: "
                f"{names_list(names)}{symmetric}.",
                fix + "look for .detach(), .data, .item() or torch.no_grad() on the path "
                "from these layers to the loss, a layer never called in forward(), or dead "
                "ReLUs; revisit the model stage.",
                no_grad=missing, zero_grad=zero, constant=constant or [])


def _relative_norms(model: nn.Module) -> list[Finding]:
    """Weight-matrix gradient norms against their median: 1e-4x vanishes, 1e3x explodes."""
    norms = {n: float(p.grad.norm()) for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None and p.ndim >= 2}
    norms = {n: v for n, v in norms.items() if v > 0}
    if len(norms) < 3:
        return []
    median = statistics.median(norms.values())
    findings = []
    vanishing = [n for n, v in norms.items() if v < GRAD_VANISH_RATIO * median]
    exploding = [n for n, v in norms.items() if v > GRAD_EXPLODE_RATIO * median]
    fix = ("use He init (trainwise.model.init.init_weights), add normalisation layers or "
           "residual connections, and normalise the inputs; revisit the model stage.")
    if vanishing:
        findings.append(warning(STAGE, "gradient_vanishing",
                                f"gradients of {names_list(vanishing)} are under "
                                f"{GRAD_VANISH_RATIO:g}x the median layer's: they will "
                                "barely train.", fix, median=median,
                                grad_norms={n: norms[n] for n in vanishing}))
    if exploding:
        findings.append(warning(STAGE, "gradient_exploding",
                                f"gradients of {names_list(exploding)} exceed "
                                f"{GRAD_EXPLODE_RATIO:g}x the median layer's: one step will "
                                "wreck them.", fix, median=median,
                                grad_norms={n: norms[n] for n in exploding}))
    return findings or [info(STAGE, "gradient_flow_ok",
                             f"all {len(norms)} weight gradients are finite and within "
                             f"[{GRAD_VANISH_RATIO:g}, {GRAD_EXPLODE_RATIO:g}]x their median.",
                             median=median, grad_norms=norms)]


def check_gradients(model: nn.Module, loss_fn: LossFn, loss: torch.Tensor, x: torch.Tensor,
                    y: torch.Tensor, make_optimizer: MakeOptimizer) -> list[Finding]:
    """Backward once on `model` (a copy: it is stepped); every trainable parameter must get a
    finite, non-zero gradient."""
    total = sum(1 for p in model.parameters() if p.requires_grad)
    if not _backward(loss):
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        return [_missing_finding(names, [], total)]
    bad = [n for n, p in model.named_parameters()
           if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if bad:
        return [error(STAGE, "gradient_not_finite",
                      f"NaN/Inf gradients in {names_list(bad)} on the first backward pass.",
                      "look for sqrt/log/division at 0 in forward(), or inputs far out of "
                      "range; revisit the model stage.", params=bad)]
    missing, zero = _without_gradient(model)
    findings = _relative_norms(model)
    if zero:
        zero = _still_zero(model, loss_fn, x, y, make_optimizer, zero)
    if missing or zero:
        findings.insert(0, _missing_finding(missing, zero, total,
                                            _constant_weights(model, missing + zero)))
    return findings
