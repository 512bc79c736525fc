"""Per-layer shape trace (model_summary.json) and the output-shape checks of the model stage.

A mis-shaped tensor can fail silently through broadcasting (METHOD.md §2); these checks
name the shape that is wrong and the layer to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError, error, info, warning
from trainwise.model.forward_errors import device_of, forward_failed
from trainwise.model.input_tree import num_rows, shapes, take
from trainwise.model.kept_state import cuda_rng_kept, kept_modes
from trainwise.model.trace_failure import CallRecorder, models_own_failure, trace_failed
from trainwise.train.batch_checks import explain_dtype, forward_or_explain


@contextmanager
def quiet_forward(model: nn.Module) -> Iterator[None]:
    """Eval mode, no grad, global RNG untouched; every submodule's train/eval mode restored
    (model.train(flag) alone would clobber e.g. a BatchNorm the user froze in eval mode)."""
    with kept_modes(model), cuda_rng_kept(device_of(model)), torch.no_grad():
        model.eval()
        yield


def _shape(value: Any) -> list | None:
    """[B, C, T] for a tensor, a list of shapes for a tuple/list/dict of them, else None."""
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        shapes = [s for s in (_shape(v) for v in value) if s is not None]
        return shapes[0] if len(shapes) == 1 else (shapes or None)
    return None


def _own_params(module: nn.Module, seen: set[int]) -> tuple[int, bool]:
    """(count, all trainable) of params owned directly by `module` and not counted before."""
    fresh = [p for p in module.parameters(recurse=False) if id(p) not in seen]
    seen.update(id(p) for p in fresh)
    return sum(p.numel() for p in fresh), all(p.requires_grad for p in fresh)


def _rows_from_calls(model: nn.Module, calls: list[tuple[nn.Module, Any, Any]]) -> list[dict]:
    """One row per call of a leaf (or param-owning) module, then one per module never called
    that owns params, so the rows' num_params always sum to the model's total."""
    names = {id(m): n for n, m in model.named_modules()}
    keep = {id(m) for m in model.modules()
            if not list(m.children()) or next(m.parameters(recurse=False), None) is not None}
    seen: set[int] = set()
    rows = []
    for module, args, output in calls:
        if id(module) not in keep:
            continue
        count, trainable = _own_params(module, seen)
        rows.append({"name": names.get(id(module), "?") or "(model)",
                     "type": type(module).__name__, "input_shape": args, "output_shape": output,
                     "num_params": count, "trainable": trainable})
    for name, module in model.named_modules():
        count, trainable = _own_params(module, seen)
        if count:
            rows.append({"name": name or "(model)", "type": type(module).__name__,
                         "input_shape": None, "output_shape": None, "num_params": count,
                         "trainable": trainable})
    return rows


def _calls_torchinfo(model: nn.Module, example_input: Any) -> list[tuple[nn.Module, Any, Any]]:
    import torchinfo

    # in a list: torchinfo unpacks a tuple (or dict) into forward's arguments; fit passes a
    # batch's inputs as one argument, and so does this trace (audit s11 D12)
    stats = torchinfo.summary(model, input_data=[example_input], verbose=0, depth=100,
                              device=device_of(model), mode="eval")
    return [(layer.module, _listify(layer.input_size), _listify(layer.output_size))
            for layer in stats.summary_list if layer.executed or layer.output_size]


def _listify(size: Any) -> list | None:
    if isinstance(size, (list, tuple)):
        return [_listify(s) if isinstance(s, (list, tuple)) else int(s) for s in size] or None
    return None


def _calls_hooks(model: nn.Module, example_input: Any) -> list[tuple[nn.Module, Any, Any]]:
    """Forward hooks on every module: the fallback when torchinfo cannot trace the model."""
    calls: list[tuple[nn.Module, Any, Any]] = []
    handles = [m.register_forward_hook(lambda m, a, o: calls.append((m, _shape(a), _shape(o))))
               for m in model.modules()]
    try:
        _forward(model, example_input)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _explained(model: nn.Module, example_input: Any, failure: Exception) -> Exception | None:
    """The error for a failure that a dtype or a tuple/dict input explains, with its fix."""
    return explain_dtype(model, example_input, failure) or _tuple_error(example_input, failure)


def _tuple_error(example_input: Any, failure: Exception) -> Exception | None:
    """A TypeError from a tuple/dict input given to a forward(self, x1, x2)."""
    if isinstance(failure, TypeError) and isinstance(example_input, (tuple, list, dict)):
        return TrainwiseError(
            f"shape_trace calls model(example_input) with the {type(example_input).__name__}"
            " as one argument, as fit, find_lr and check call the model with a batch's "
            f"inputs; the forward raised: {failure}. Give the model a forward(self, inputs) "
            "that unpacks them (x1, x2 = inputs), which fit needs too.")
    return None


def _forward(model: nn.Module, example_input: Any) -> Any:
    """model(example_input), as fit calls it with a batch's inputs; a failure that a dtype
    (forward_or_explain) or a tuple or dict input explains is said with its fix."""
    try:
        return forward_or_explain(model, example_input)
    except TypeError as failure:
        explained = _tuple_error(example_input, failure)
        if explained is None:
            raise
        raise explained from failure


def _calls(model: nn.Module, example_input: Any) -> list[tuple[nn.Module, Any, Any]]:
    """torchinfo's rows; when torchinfo itself fails, our forward hooks'. When the model's own
    forward raised, one error from the user's exception with the layers that ran (G16): a
    rerun would only raise it again, chained to torchinfo's wrapper."""
    recorder = CallRecorder(model, _shape)
    try:
        return _calls_torchinfo(model, example_input)
    except Exception as failure:  # noqa: BLE001 - torchinfo's own failure: our hooks still work
        cause = models_own_failure(failure, model)
        if isinstance(cause, Exception):
            raise (_explained(model, example_input, cause)
                   or trace_failed(model, cause, recorder)) from cause
    finally:
        recorder.remove()
    return _calls_hooks(model, example_input)


def shape_trace(model: nn.Module, example_input: Any) -> dict[str, Any]:
    """The model_summary.json dict: per-layer rows, total and trainable parameter counts,
    and batch_size, the number of samples traced (each row's shapes include them).

    Rows come from torchinfo's summary_list; if torchinfo fails on this model, from forward
    hooks. Parameters are counted once each (tied weights once), so the rows sum to the total.
    """
    with quiet_forward(model):
        calls = _calls(model, example_input)
    rows = _rows_from_calls(model, calls)
    unique = {id(p): p for p in model.parameters()}.values()
    return {"rows": rows, "total_params": sum(p.numel() for p in unique),
            "trainable_params": sum(p.numel() for p in unique if p.requires_grad),
            "batch_size": leading_size(_shape(example_input))}


def leading_size(shape: list | None) -> int | None:
    """The first number of a shape ([64, 8, 8] -> 64), or of the first of several shapes."""
    while isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]
    return shape[0] if shape and isinstance(shape[0], int) else None


def failing_layer(model: nn.Module, x: Any) -> tuple[str | None, Exception | None, Any]:
    """Run model(x); on an exception, name the innermost module that had entered forward."""
    names = {id(m): n for n, m in model.named_modules()}
    stack: list[str] = []

    def enter(module: nn.Module, _args: Any) -> None:
        stack.append(names.get(id(module), "?"))

    def leave(_module: nn.Module, _args: Any, _out: Any) -> None:
        stack.pop()

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        return None, None, _forward(model, x)
    except Exception as exc:  # noqa: BLE001 - reported as a finding, with the layer
        return (stack[-1] or "(model)") if stack else None, exc, None
    finally:
        for handle in handles:
            handle.remove()



def _check_classification(out: torch.Tensor, y: torch.Tensor, num_classes: int,
                          stage: str) -> list[Finding]:
    width = out.shape[1] if out.ndim >= 2 else None
    # CrossEntropyLoss takes (B, C) with (B,), or (B, C, d...) with (B, d...).
    if width == num_classes and out.ndim == y.ndim + 1:
        return []
    if width != num_classes:
        return [_width_mismatch(out, num_classes, stage)]
    return [error(stage, "output_target_shape_mismatch",
                  f"logits {tuple(out.shape)} do not fit labels {tuple(y.shape)}: "
                  "cross-entropy wants (B, C) with (B,).",
                  "reduce the extra output dimensions (pooling/flatten) before the final "
                  "layer; revisit the model stage.",
                  output_shape=list(out.shape), target_shape=list(y.shape))]


def _width_mismatch(out: torch.Tensor, num_classes: int, stage: str) -> Finding:
    """Why the width must be num_classes (cross-entropy: one logit per class), and, for the
    one-logit binary model a BCE user builds on purpose, that no loss setting takes it."""
    width = out.shape[1] if out.ndim >= 2 else None
    outputs = f"a {tuple(out.shape)} output" if width is None else \
        f"{width} value{'' if width == 1 else 's'} per sample"
    fix = (f"make the final layer output num_classes={num_classes} logits "
           "(e.g. nn.Linear(..., num_classes)); revisit the model stage.")
    if width == 1 and num_classes == 2:
        fix = ("use nn.Linear(d, 2) as the final layer (softmax over 2 logits is the same "
               "model as a sigmoid over 1) and revisit the model stage; or keep your own "
               "training loop with trainwise.Monitor, which handles a one-logit "
               "nn.BCEWithLogitsLoss model.")
    one_logit = ", so a one-logit nn.BCEWithLogitsLoss model is not an option here" \
        if width == 1 else ""
    return error(stage, "logits_width_mismatch",
                 f"the model outputs {outputs}, but there are {num_classes} classes: "
                 "trainwise trains classification with cross-entropy over one logit per class "
                 f"(nn.CrossEntropyLoss on (B, {num_classes})){one_logit}.",
                 fix, output_shape=list(out.shape), num_classes=num_classes)


def check_regression(out: torch.Tensor, y: torch.Tensor, stage: str) -> list[Finding]:
    if out.shape == y.shape:
        return []
    if out.ndim == 2 and out.shape[1] == 1 and y.ndim == 1:
        return [info(stage, "regression_output_squeezed",
                     f"the model outputs {tuple(out.shape)} for targets {tuple(y.shape)}; "
                     "trainwise's RegressionLoss squeezes it, but a plain nn.MSELoss would "
                     "broadcast to (B, B) and train on the wrong loss.",
                     output_shape=list(out.shape), target_shape=list(y.shape))]
    fix = ("make the final layer output one value per target (nn.Linear(..., 1) for one "
           "target); revisit the model stage.")
    return [error(stage, "regression_output_width",
                  f"the model outputs {tuple(out.shape)} but the targets are "
                  f"{tuple(y.shape)}: a loss would broadcast them instead of pairing them.",
                  fix, output_shape=list(out.shape), target_shape=list(y.shape))]


def forward_error(model: nn.Module, x: torch.Tensor, exc: Exception, kind: str = "", *,
                  stage: str = "model") -> Finding:
    """A forward_failed error for `exc`, raised by model(x): the forward is run once more with
    hooks to name the innermost layer that had entered forward when it raised."""
    with quiet_forward(model):
        layer, again, _ = failing_layer(model, x)
    return forward_failed(layer, again or exc, x, stage, model, kind)


def check_output_shape(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                       num_classes: int, *, stage: str = "model",
                       batch_size: int = 8) -> list[Finding]:
    """Run a forward pass on x[:batch_size] and check the output against the targets.

    Catches: a forward pass that raises (with the layer), a changed batch dimension (a
    view/flatten that mixes samples), logits width != num_classes, regression widths that
    would broadcast, and a non-tensor output.
    """
    x, y = take(x, slice(batch_size)), y[:batch_size]
    with quiet_forward(model):
        layer, exc, out = failing_layer(model, x)
    if exc is not None:
        return [forward_failed(layer, exc, x, stage, model)]
    if not isinstance(out, torch.Tensor):
        return [error(stage, "output_not_tensor",
                      f"the model returned {type(out).__name__}, not a tensor of outputs.",
                      "wrap the model so forward() returns the logits/predictions tensor; "
                      "revisit the model stage.", output_type=type(out).__name__)]
    rows = num_rows(x)
    if out.ndim == 0 or out.shape[0] != rows:
        return [error(stage, "batch_dim_changed",
                      f"{rows} sample{'s' if rows != 1 else ''} in gave "
                      f"{tuple(out.shape)} out: a view/reshape "
                      "mixes the batch dimension with the others.",
                      "flatten with x.flatten(1) or x.view(x.size(0), -1), never "
                      "view(-1, n); revisit the model stage.",
                      input_shape=shapes(x), output_shape=list(out.shape))]
    if task == "classification":
        return _check_classification(out, y, num_classes, stage)
    return check_regression(out, y, stage)


def check_batch_of_one(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                       num_classes: int, *, met_in_training: bool,
                       stage: str = "model") -> list[Finding]:
    """The output check on one sample, for a model that passes it on a full batch: a short
    last batch of one (or a single prediction) breaks .squeeze() and fixed batch sizes.
    An error when `met_in_training` (a batch of one will come), else a warning."""
    found = [f for f in check_output_shape(model, x, y, task, num_classes, stage=stage,
                                           batch_size=1) if f.severity.value == "error"]
    if not found:
        return []
    make = error if met_in_training else warning
    when = ("A batch of one sample will come in this run (a short last batch); "
            if met_in_training else "This run never forwards one, but a single prediction "
            "would fail; ")
    return [make(stage, "batch_of_one_failed",
                 f"the model works on a batch of several samples but not on one: "
                 f"{found[0].message}",
                 f"{when}make forward keep the batch dimension when B = 1: .squeeze() drops "
                 "it too (use .squeeze(-1)), flatten with x.flatten(1) or "
                 "x.view(x.size(0), -1), and read no fixed batch size; revisit the model "
                 "stage.", **found[0].evidence)]
