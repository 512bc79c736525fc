"""What a forward pass that raised tells the user: the layer, the inputs it was given, and
the likely cause (dtype, device, the (N, C, T) sequence layout, a fixed batch size)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, error
from trainwise.model.input_tree import describe, first_tensor, shapes
from trainwise.model.user_frame import at_user_line


def device_of(model: nn.Module) -> torch.device:
    """Where the model's first parameter lives (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def layer_that_raised(exc: BaseException, model: nn.Module | None) -> str | None:
    """The innermost of `model`'s modules whose forward is on `exc`'s traceback ("(model)"
    for the model itself), or None when the exception did not pass through its forward."""
    if model is None:
        return None
    names = {id(m): n for n, m in model.named_modules()}
    layer, tb = None, exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if tb.tb_frame.f_code.co_name == "forward" and id(owner) in names:
            layer = names[id(owner)] or "(model)"
        tb = tb.tb_next
    return layer


def _weight_dtype(model: nn.Module) -> torch.dtype | None:
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    return param.dtype if param is not None else None


def _forward_fix(model: nn.Module, exc: Exception, inputs: Any, kind: str) -> str:
    """The likely cause of a forward pass that raised, from the exception and the shapes;
    dtype and device are read on the first input when there are several."""
    text, x = str(exc).lower(), first_tensor(inputs)
    weights = _weight_dtype(model)
    embedding = next((n for n, m in model.named_modules() if isinstance(m, nn.Embedding)), None)
    if embedding is not None and x.is_floating_point():
        return _float_ids_fix(embedding, x, kind)
    if x.is_floating_point() and weights is not None and weights != x.dtype:
        return (f"your model's weights are {weights} but the inputs are {x.dtype} (trainwise "
                "feeds float32): call model.float(), or drop .double() / dtype=... from its "
                "__init__; revisit the model stage.")
    if "cuda" in text or "nvidia" in text or "device" in text:
        where = f"the model's weights are on {device_of(model)} and the inputs on {x.device}: " \
            if device_of(model) != x.device else ""
        return (f"{where}do not move tensors to a fixed device inside forward (x.cuda(), "
                ".to('cuda')); make new tensors on x.device. trainwise moves the model and "
                "each batch to the run's device (run.accelerator); revisit the model stage.")
    layout = ""
    if kind == "sequence" and x.ndim == 3:
        layout = (f" Sequences reach the model as (N, C, T) = {tuple(x.shape)}, channels first "
                  "as nn.Conv1d expects; a model written for (N, T, C) (nn.Linear or a "
                  "batch_first RNN over the last axis) must start with x = x.transpose(1, 2). "
                  "A 3-D array is read as (N, T, C) and transposed: a file already stored "
                  "(N, C, T) must be saved as X.transpose(0, 2, 1).")
    return (f"make the forward accept inputs shaped {describe(inputs)}, with any "
            f"batch size, and fix the layer's expected input shape/dtype.{layout} Then "
            "revisit the model stage.")


def _float_ids_fix(embedding: str, x: torch.Tensor, kind: str) -> str:
    """An nn.Embedding given floats: the data was read as features, so the ids were
    standardised too; .long() inside forward would only index garbage (or out of range)."""
    return (f"your model embeds token ids (nn.Embedding '{embedding}'), but its inputs are "
            f"{x.dtype} because trainwise read this data as {kind or 'numeric'} data: "
            "standardised features, not ids (x.long() in forward would index with those "
            "z-scores). Save X as 2-D integer ids (0 = padding) and set data.kind = "
            "\"tokens\" in [data] (trainwise.run(..., overrides=['data.kind=\"tokens\"']) "
            "in Python), so the ids reach the model as int64, never normalised; revisit the "
            "data stage.")


def forward_failed(layer: str | None, exc: Exception, x: Any, stage: str,
                   model: nn.Module | None, kind: str = "", fix: str = "") -> Finding:
    """The forward_failed finding, from the model stage's own batch `x` or, when the batch is
    not at hand (`x` None: a later stage's batch), with the caller's `fix`; one evidence shape
    (layer, exception, input_shape, input_dtype) either way."""
    where = f" in layer '{layer}'" if layer else ""
    inputs = f" on inputs shaped {describe(x)}" if x is not None else ""
    during = f" during the {stage} stage" if x is None else ""
    if not fix:
        assert x is not None and model is not None, "without the batch, pass the fix"
        fix = _forward_fix(model, exc, x, kind)
    line, frame = at_user_line(exc)
    return error(stage, "forward_failed",
                 f"the forward pass{inputs} raised{where}{line}{during}: "
                 f"{type(exc).__name__}: {exc}",
                 fix, layer=layer, exception=f"{type(exc).__name__}: {exc}", **frame,
                 input_shape=shapes(x) if x is not None else None,
                 input_dtype=str(first_tensor(x).dtype) if x is not None else None)
