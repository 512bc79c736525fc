"""What fit (at its start) and the Monitor (at the first monitor.step or evaluation) check
once about the objects they are handed, not about the training: an optimizer built on another
model's parameters, Adam's coupled L2 in place of AdamW's decay, a loss summed over the batch.
Each is free to check (the objects are in hand) and, missed, costs a whole run whose diagnosis
then blames the learning rate or memorisation (audit s15 B6, B14, M1)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, Severity, TrainwiseError, error, explained, warning
from trainwise.train.grad_norms import unwrap

SHOWN = 4  # parameter names a message lists before "... (N in all)"
COUPLED_DECAY = ("Adam", "NAdam", "RAdam")  # weight_decay added to the gradient, which the
# adaptive step then divides by sqrt(v): decay is weakest where gradients are largest


def shown_names(names: list[str]) -> str:
    """'a, b, c, d, ... (N in all)': parameter names in a message (decay_on_norms too)."""
    more = f", ... ({len(names)} in all)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def unheld_parameters(model: nn.Module, optimizer: Any, stage: str) -> Finding | None:
    """An error when the optimizer holds none of the model's trainable parameters (built on
    another model: optimizer.step() never changes this one, the loss stays where it began and
    the diagnosis blames the lr; audit s15 B6), a warning when it misses some. Only for a
    torch.optim.Optimizer, and not when it holds only flat 1-D tensors against a model with
    matrices: the flattened copies of DeepSpeed ZeRO, FSDP's flat parameters or fp32 master
    weights hold none of the model's tensors by identity, yet train it."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        return None
    tensors = [p for group in optimizer.param_groups for p in group["params"]]
    held = {id(p) for p in tensors}
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    missing = [name for name, p in trainable if id(p) not in held]
    flat = all(p.dim() <= 1 for p in tensors) and any(p.dim() > 1 for _, p in trainable)
    if not missing or (flat and len(missing) == len(trainable)):
        return None
    kind = type(optimizer).__name__
    build = ("build the optimizer from this model's parameters once the model is final (after "
             "any layer is added or replaced, and on the model itself, not a copy): "
             "torch.optim.AdamW(trainwise.param_groups(model, weight_decay=0.01), lr=...) or "
             "trainwise.make_adamw(model, lr=..., weight_decay=...)")
    if len(missing) == len(trainable):
        return error(
            stage, "optimizer_not_on_model",
            f"The optimizer ({kind}) holds none of the model's {len(trainable)} trainable "
            f"parameters ({shown_names(missing)}): optimizer.step() never changes this model, so "
            "its loss and accuracy stay where they started. It was built on another model's "
            "parameters (or on a copy of this one).", f"B{build[1:]}.",
            num_params=len(missing), params=missing[:20])
    return warning(
        stage, "optimizer_misses_parameters",
        f"The optimizer ({kind}) holds {len(trainable) - len(missing)} of the model's "
        f"{len(trainable)} trainable parameters; these {len(missing)} never change: "
        f"{shown_names(missing)}. Layers added or replaced after the optimizer was built are left "
        "out so.", f"To train them, {build}. To keep them fixed on purpose, freeze them "
        "(param.requires_grad_(False)) so that no gradient is computed for them.",
        num_params=len(missing), params=missing[:20])


def coupled_decay(optimizer: Any) -> bool:
    """Adam / NAdam / RAdam with weight_decay > 0 in a group and no decoupled_weight_decay:
    an L2 term in the gradient, not AdamW's decay (AdamW, and torch >= 2.x's AdamW as an
    Adam subclass, marks its groups decoupled)."""
    if type(optimizer).__name__ not in COUPLED_DECAY or \
            type(optimizer).__module__.split(".")[:2] != ["torch", "optim"]:
        return False
    return any(float(group.get("weight_decay", 0.0)) > 0
               and not group.get("decoupled_weight_decay", False)
               for group in optimizer.param_groups)


def adam_not_adamw(optimizer: Any, stage: str) -> Finding | None:
    """METHOD §4 "AdamW, not Adam": Adam's weight_decay is added to the gradient and then
    divided by the adaptive sqrt(v), so weights with large gradients are barely decayed and
    the decay found for AdamW (0.01-0.1) means something else here (Loshchilov & Hutter 2019)."""
    if not coupled_decay(optimizer):
        return None
    kind = type(optimizer).__name__
    rate = max(float(group.get("weight_decay", 0.0)) for group in optimizer.param_groups)
    return warning(
        stage, "adam_not_adamw",
        f"The optimizer is torch.optim.{kind} with weight_decay={rate:g}: {kind}'s "
        "weight_decay is an L2 term added to the gradient and scaled by the adaptive step, not "
        "AdamW's decoupled weight decay, so the weights with the largest gradients are barely "
        "decayed and the rate means something else than in AdamW (METHOD §4: AdamW, not Adam).",
        "Use torch.optim.AdamW(trainwise.param_groups(model, weight_decay="
        f"{rate:g}), lr=...) or trainwise.make_adamw(model, lr=..., weight_decay={rate:g}); "
        f"keep {kind} only with weight_decay=0.", optimizer=kind, weight_decay=rate)


def summed_loss(loss_fn: Any, stage: str, where: str) -> Finding | None:
    """A loss_fn with reduction="sum": the training loss is a sum over a training batch and
    the validation loss a sum over a validation batch (or over all rows), so the two are not
    per row and cannot be compared (audit s15 B14: batch 64 against 512 read as
    memorisation at 93% validation accuracy). "none" needs no check: fit refuses a loss that
    is not one number, and the Monitor averages it."""
    if getattr(loss_fn, "reduction", "mean") != "sum":
        return None
    return warning(
        stage, "loss_not_per_row",
        f"{where} was given a loss_fn with reduction='sum' ({type(loss_fn).__name__}): its "
        "losses are sums over batches, not per row, so they grow with the batch size; training "
        "and validation batches differ in size, and the training-vs-validation comparison "
        "(overfitting, memorisation, a scaled loss) reads a gap that is only the batch size.",
        f"Use reduction='mean' (e.g. nn.{type(loss_fn).__name__}(reduction='mean'), the "
        "default); with Adam or AdamW the updates are the same, with SGD divide the lr by the "
        "batch size.", reduction="sum")


def check_fit_entry(model: nn.Module, optimizer: Any, loss_fn: Any) -> None:
    """fit's checks of what it was handed, once before the first step: raise an error's
    message and fix as a TrainwiseError, warn the rest (each says what to change)."""
    found = [unheld_parameters(model, optimizer, "train"), adam_not_adamw(optimizer, "train"),
             summed_loss(loss_fn, "train", "fit")]
    for finding in (f for f in found if f is not None):
        text = f"{finding.message} Fix: {finding.fix}"
        if finding.severity is Severity.ERROR:
            raise TrainwiseError(text)
        warnings.warn(f"[{finding.code}] {text}", UserWarning, stacklevel=3)


def monitor_entry_findings(model: nn.Module, optimizer: Any) -> list[Finding]:
    """The Monitor's checks of a model (as passed: DDP or FSDP may wrap it) and optimizer,
    the first time the optimizer is passed to monitor.step: the optimizer's parameters (named
    as the user's module names them, said only when the wrapped model's are missing too: a
    wrapper may register its own), then its kind of weight decay."""
    unheld = unheld_parameters(unwrap(model), optimizer, "train")
    if unheld is not None and unheld_parameters(model, optimizer, "train") is None:
        unheld = None
    return [f for f in (unheld, adam_not_adamw(optimizer, "train")) if f is not None]


def explained_by_optimizer(found: list[Finding], said: list[Finding]) -> list[Finding]:
    """The diagnosis's warnings and errors as infos once an optimizer that holds none of the
    model's parameters was found: the weights never changed, so a plateau or classes never
    learned follow from it, and their lr advice (raise it here, lower it there; audit s15 B6)
    would send the user the wrong way."""
    if not any(f.code == "optimizer_not_on_model" for f in said):
        return found
    return [f if f.severity is Severity.INFO else explained(
        f, "Explained by optimizer_not_on_model: the optimizer never changed the model's "
        "weights.", "Fix optimizer_not_on_model (build the optimizer from this model's "
        "parameters), then train again and judge the new run.") for f in found]
