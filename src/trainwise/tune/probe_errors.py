"""The errors every tuning probe (range test, short runs, batch-size trials) can meet, each an
error finding that says what happened and which stage to revisit."""

from __future__ import annotations

from typing import Any

from torch import nn

from trainwise.findings import Finding, error


class ProbeStop(Exception):
    """A problem that ends a probe; carries the error finding that explains it."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def check_trainable(model: nn.Module, code: str) -> None:
    """Raise ProbeStop when no parameter has requires_grad (no lr can change anything)."""
    params = list(model.parameters())
    if any(p.requires_grad for p in params):
        return
    frozen = f"all {len(params)} parameter tensors have requires_grad=False" if params \
        else "it has no parameters at all"
    raise ProbeStop(error(
        "tune", code,
        f"The model has no trainable parameters ({frozen}), so no learning rate can "
        "change anything.",
        ("Unfreeze at least the layers you mean to train (requires_grad=True), e.g. the "
         "head of a pretrained backbone, then rerun the 'model' and 'check' stages.") if params
        else ("Give the model layers with weights (nn.Linear, nn.Conv1d, ...): its forward "
              "uses none, so it only computes a fixed function. Then rerun the 'model' and "
              "'check' stages."),
        num_parameters=len(params)))


def nan_at_start(code: str, value: float, lr: float) -> ProbeStop:
    """The loss was not finite at the very first step, before any update."""
    return ProbeStop(error(
        "tune", code,
        f"The loss was {value} at the very first step (lr={lr:.1e}), before any update: "
        "the learning rate is not the cause, the model or the data is.",
        "Go back to stage 'data' (look for NaN/inf in inputs and targets) and stage "
        "'check' (`trainwise check`, with run.checks = true: the loss at initialisation; "
        "e.g. log of 0, a division by a zero std).",
        loss=value, lr=lr))


def no_batch(code: str, loader: Any) -> ProbeStop:
    """The loader yielded nothing: an empty split or a batch larger than the data with
    drop_last."""
    dataset = getattr(loader, "dataset", None)
    size = len(dataset) if hasattr(dataset, "__len__") else None
    batch_size = getattr(loader, "batch_size", None)
    why = f" (the dataset has {size} samples, batch_size={batch_size}, drop_last=" \
          f"{getattr(loader, 'drop_last', None)})" if size is not None else ""
    return ProbeStop(error(
        "tune", code, f"The loader yielded no batch{why}: there is nothing to train on.",
        "Use a batch_size no larger than the training split or drop_last=False, and "
        "check the split (stage 'split'): the training part may be empty.",
        dataset_size=size, batch_size=batch_size))
