"""The errors every tuning probe (range test, short runs, batch-size trials) can meet, each an
error finding that says what happened and which stage to revisit."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError, error
from trainwise.train.batch_checks import scalar_loss  # noqa: F401 - the probes' name for it
from trainwise.train.evaluate import inputs_and_targets
from trainwise.train.position import inner_loader


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


def check_fills_a_batch(loader: Any, code: str) -> None:
    """Raise ProbeStop when the loader's dataset holds fewer samples than one batch and
    drop_last is off, where both are known (with drop_last on, the loader yields nothing and
    no_batch says so). Every step would train on the same few samples: a range test ramps
    over one batch repeated, a short run of 2 epochs makes 2 steps."""
    size, batch_size = loader_sizes(loader)
    inner = inner_loader(loader)
    if size and batch_size and size < batch_size and not getattr(inner, "drop_last", False):
        raise smaller_than_batch(code, size, batch_size)


def non_finite_values(batch: Any) -> dict[str, int]:
    """NaN/inf counts in a batch's floating-point inputs and targets (tensors, or dicts,
    lists and tuples of them), by part; parts without any are left out."""
    inputs, targets = inputs_and_targets(batch)
    counts = {name: _count_non_finite(part) for name, part in (("inputs", inputs),
                                                               ("targets", targets))}
    return {name: n for name, n in counts.items() if n}


def _count_non_finite(part: Any) -> int:
    if torch.is_tensor(part):
        return int((~torch.isfinite(part)).sum()) if part.is_floating_point() else 0
    if isinstance(part, dict):
        part = list(part.values())
    if isinstance(part, (list, tuple)):
        return sum(_count_non_finite(item) for item in part)
    return 0


def nan_in_data(code: str, value: float, step: int, lr: float,
                counts: dict[str, int]) -> ProbeStop:
    """The loss turned non-finite on a batch that itself holds NaN/inf: whatever the lr."""
    where = ", ".join(f"{n} in its {part}" for part, n in counts.items())
    return ProbeStop(error(
        "tune", code,
        f"The loss was {value} at step {step} (lr={lr:.1e}) on a batch holding non-finite "
        f"values ({where}): the data is the cause, not the learning rate.",
        "Go back to stage 'data': drop or impute the rows with NaN/inf (trainwise.audit((x, y)) "
        "or `trainwise audit` counts them per feature), then rerun the range test.",
        loss=value, step=step, lr=lr, non_finite=counts))


def nan_before_rise(code: str, value: float, step: int, lr: float) -> ProbeStop:
    """The loss turned non-finite out of a flat or falling curve: a learning rate that is too
    high makes the loss climb first, so the model, the loss or the data is to blame."""
    return ProbeStop(error(
        "tune", code,
        f"The loss was {value} at step {step} (lr={lr:.1e}) without having risen first; a "
        "learning rate that is too high makes the loss climb before it overflows, so the "
        "model, the loss function or the data is the likely cause, not the learning rate.",
        "Go back to stage 'check' (`trainwise check`: e.g. a log of 0, a division by a zero "
        "std, log(softmax(x)) instead of log_softmax, sqrt at 0 in the backward; "
        "torch.autograd.set_detect_anomaly(True) names the operation) and stage 'data' "
        "(NaN/inf the batch check cannot see, e.g. made by a transform), then rerun.",
        loss=value, step=step, lr=lr))


def loader_sizes(loader: Any) -> tuple[int | None, int | None]:
    """(samples in the loader's dataset, its batch_size) where the loader says so (a
    DataLoader, also inside Fabric's wrapper); None where it does not."""
    inner = inner_loader(loader)
    dataset = getattr(inner, "dataset", None)
    try:
        size = len(dataset) if hasattr(dataset, "__len__") else None
    except TypeError:  # an IterableDataset's len() raises unless it defines one
        size = None
    return size, getattr(inner, "batch_size", None)


def no_batch(code: str, loader: Any) -> ProbeStop:
    """The loader yielded nothing: an empty split or a batch larger than the data with
    drop_last."""
    size, batch_size = loader_sizes(loader)
    why = f" (the dataset has {size} samples, batch_size={batch_size}, drop_last=" \
          f"{getattr(loader, 'drop_last', None)})" if size is not None else ""
    return ProbeStop(error(
        "tune", code, f"The loader yielded no batch{why}: there is nothing to train on.",
        "Use a batch_size no larger than the training split or drop_last=False, and "
        "check the split (stage 'split'): the training part may be empty.",
        dataset_size=size, batch_size=batch_size))


def smaller_than_batch(code: str, size: int, batch_size: int) -> ProbeStop:
    """Fewer samples than one batch without drop_last: every step sees the same rows."""
    return ProbeStop(error(
        "tune", code,
        f"The data set has {size} samples, fewer than one batch (batch_size={batch_size}): "
        f"every step would train on the same {size} rows, so the learning rate it measures "
        "says little about training on batches of the data.",
        # more data first: the batch that gives 10 steps on 10 rows is 1 (audit s13 T13)
        f"More data first: check stage 'split' (its sizes; it may have left the training "
        f"part too small) or load more rows. Else a batch_size below {size}: "
        f"{max(size // 10, 1)} gives >= 10 steps per pass, but below ~16-32 batch-norm "
        "statistics are noisy (use GroupNorm/LayerNorm then) and so is the loss the test "
        "reads.",
        dataset_size=size, batch_size=batch_size))


def exhausted(code: str, loader: Any) -> ProbeStop:
    """A one-shot iterator (a generator, iter(...)) that a later pass found used up."""
    return ProbeStop(error(
        "tune", code,
        f"The loader is a one-shot iterator ({type(loader).__name__}) and yielded nothing on "
        "this pass: such an iterator is exhausted after one pass, and the range test "
        "iterates the data once per seed (and again whenever a pass is shorter than "
        "num_steps).",
        "Pass a DataLoader or another re-iterable (e.g. a list of (x, y) batches), not a "
        "generator or an iterator.", loader_type=type(loader).__name__))


def fresh_optimizer(optimizer: Any, model: nn.Module) -> Any:
    """`optimizer` when make_optimizer built it fresh for `model`; raise otherwise. A probe
    ramps and steps the optimizer it is given: handed the user's own one (torch-lr-finder
    takes an optimizer object), it would leave that one at the ramp's last lr with moments
    it never earned, and a copy of the model would not train at all."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TrainwiseError(f"make_optimizer returned a {type(optimizer).__name__}, not a "
                             "torch optimizer. " + FRESH_OPTIMIZER)
    owned = {id(p) for p in model.parameters()}
    foreign = sum(id(p) not in owned for group in optimizer.param_groups
                  for p in group["params"])
    if foreign:
        raise TrainwiseError(f"make_optimizer's optimizer holds {foreign} parameter tensor(s) "
                             "that are not the model's it was given: it must build one for "
                             "that model, and a probe neither trains nor restores the others "
                             "(a learnable loss's parameters: make the loss a submodule of the "
                             "model). " + FRESH_OPTIMIZER)
    if optimizer.state:
        raise TrainwiseError("make_optimizer returned an optimizer that has already stepped "
                             "(it has state); a probe would change it. " + FRESH_OPTIMIZER)
    return optimizer


# One suggestion for every make_optimizer error: it serves find_lr (model) and tune_lr
# (model, lr) alike, and decays the matmul weights only (AdamW(model.parameters()) decays
# biases and norm gains too, what METHOD section 4 and the Monitor warn against).
MAKE_OPTIMIZER = ("make_optimizer=lambda model, lr=1e-3: trainwise.make_adamw(model, lr=lr, "
                  "weight_decay=0.01) (AdamW decaying weights, not biases or norms)")
FRESH_OPTIMIZER = f"Pass a function that builds a new one each call, e.g. {MAKE_OPTIMIZER}."


def wrong_dtype_stop(failure: Exception, finding: Finding) -> ProbeStop:
    """forward_or_explain's `explain` for the probes: check's inputs_wrong_dtype error as a
    ProbeStop, so find_lr and tune_lr return it as an error finding instead of torch's "mat1
    and mat2" error (a float64 model on float32 data)."""
    return ProbeStop(finding)
