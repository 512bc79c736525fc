"""Check (c): gradient flow after one backward pass on a copy of the model."""

from __future__ import annotations

import statistics

import torch
from torch import nn

from trainwise.checks._common import STAGE, LossFn, MakeOptimizer, names_list
from trainwise.findings import Finding, error, info, warning

RECHECK_STEPS = 2
# Healthy baselines at init span ~30-100x between their smallest and largest weight gradient
# (cnn2d 0.012 .. 0.37); a deep sigmoid stack spans 1e9x. AUTOTRAINER uses 1e-3 first/last.
GRAD_VANISH_RATIO = 1e-4  # x the largest weight-gradient norm
GRAD_VANISH_ABSOLUTE = 1e-8  # about zero for any loss of order 1, whatever the other layers do
# Exploding needs both: 1e3x the median weight-gradient norm, and over 10 outright (healthy
# baselines at init stay under ~5 with a loss of order 1).
GRAD_EXPLODE_RATIO = 1e3
GRAD_EXPLODE_ABSOLUTE = 10.0
MIN_LAYERS_FOR_MEDIAN = 3  # below this the median is one of the two layers, or the only one


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


def _weight_grad_norms(model: nn.Module) -> dict[str, float]:
    """Gradient norm per trainable weight matrix (ndim >= 2) that got a non-zero gradient."""
    norms = {n: float(p.grad.norm()) for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None and p.ndim >= 2}
    return {n: v for n, v in norms.items() if v > 0}


def _vanishing(norms: dict[str, float]) -> list[str]:
    """Tiny next to the largest layer's gradient, or about zero outright. Measured against the
    largest, not the median: in a deep sigmoid stack the norms decay ~7x per layer from the
    output back (0.22 ... 8e-11), so the median itself has vanished and hides the layers
    around it."""
    largest = max(norms.values())
    return [n for n, v in norms.items()
            if v < GRAD_VANISH_RATIO * largest or v < GRAD_VANISH_ABSOLUTE]


def _exploding(norms: dict[str, float]) -> list[str]:
    """Large in absolute terms and, where there are layers enough for a median, next to the
    typical layer too: an output layer's healthy 0.2 is 1e5x the median of a vanishing stack,
    and that is the stack's fault, not the output layer's."""
    median = statistics.median(norms.values())
    relative = len(norms) >= MIN_LAYERS_FOR_MEDIAN
    return [n for n, v in norms.items() if v > GRAD_EXPLODE_ABSOLUTE
            and (not relative or v > GRAD_EXPLODE_RATIO * median)]


def _gradient_sizes(model: nn.Module) -> list[Finding]:
    """Check (c), sizes: which weight gradients vanish or explode (see the two rules)."""
    norms = _weight_grad_norms(model)
    if not norms:
        return []  # nothing got a gradient: _missing_finding says so
    evidence = {"largest": max(norms.values()), "median": statistics.median(norms.values())}
    fix = ("use He init (trainwise.model.init.init_weights), ReLU-family activations instead "
           "of sigmoid/tanh between hidden layers, normalisation layers or residual "
           "connections, and normalised inputs; revisit the model stage.")
    findings = []
    vanishing, exploding = _vanishing(norms), _exploding(norms)
    if vanishing:
        largest = max(norms, key=norms.get)
        findings.append(warning(STAGE, "gradient_vanishing",
                                f"gradients of {names_list(vanishing)} are under "
                                f"{GRAD_VANISH_RATIO:g}x the largest layer's ({largest}: "
                                f"{norms[largest]:.2g}) or under {GRAD_VANISH_ABSOLUTE:g}: "
                                "they will barely train.", fix, **evidence,
                                grad_norms={n: norms[n] for n in vanishing}))
    if exploding:
        findings.append(warning(STAGE, "gradient_exploding",
                                f"gradients of {names_list(exploding)} exceed "
                                f"{GRAD_EXPLODE_ABSOLUTE:g}"
                                + (f" and {GRAD_EXPLODE_RATIO:g}x the median layer's"
                                   if len(norms) >= MIN_LAYERS_FOR_MEDIAN else "")
                                + ": one step will wreck them.", fix, **evidence,
                                grad_norms={n: norms[n] for n in exploding}))
    return findings or [_flow_ok(norms, evidence)]


def _flow_ok(norms: dict[str, float], evidence: dict[str, float]) -> Finding:
    few = len(norms) < MIN_LAYERS_FOR_MEDIAN
    note = (f"; with {len(norms)} weight matrices there is no typical layer to compare with, "
            f"so 'exploding' means over {GRAD_EXPLODE_ABSOLUTE:g} in absolute terms" if few
            else f" and under {GRAD_EXPLODE_RATIO:g}x the median (or under "
            f"{GRAD_EXPLODE_ABSOLUTE:g})")
    return info(STAGE, "gradient_flow_ok",
                f"all {len(norms)} weight gradients are finite and non-zero, none under "
                f"{GRAD_VANISH_RATIO:g}x the largest{note}.",
                **evidence, grad_norms=norms, relative_to_median=not few)


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
    findings = _gradient_sizes(model)
    if zero:
        zero = _still_zero(model, loss_fn, x, y, make_optimizer, zero)
    if missing or zero:
        # the "all gradients fine" summary would contradict the finding that some have none
        findings = [f for f in findings if f.code != "gradient_flow_ok"]
        findings.insert(0, _missing_finding(missing, zero, total,
                                            _constant_weights(model, missing + zero)))
    return findings
