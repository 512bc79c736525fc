"""Check (a): the tensors that reach the model: finite, scaled, typed, labels in range.

Every finding here sends the user back to the data stage: the model is not at fault yet.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from trainwise.checks._common import STAGE, names_list
from trainwise.findings import Finding, error, info, warning
from trainwise.model.input_tree import tensors

# Standardised features have |mean| ~ 0 and std ~ 1; raw pixels (0..255) or money amounts
# reach 100s. A per-feature RMS above this is "not normalised", not a heavy tail.
MAX_FEATURE_RMS = 20.0
MIN_INPUT_RMS = 1e-3  # all features this small: a unit mix-up (e.g. divided by 255 twice)
MAX_DISCRETE_VALUES = 10


def _feature_view(x: torch.Tensor) -> torch.Tensor:
    """(N, F) view for statistics: tables as they are, sequences (N, C, T) and images
    (N, C, H, W) per channel (positions of one channel share a scale)."""
    if x.ndim <= 2:
        return x.reshape(len(x), -1)
    return x.transpose(0, 1).reshape(x.shape[1], -1).T  # (N*T, C)


def check_inputs(model: nn.Module, x: Any) -> list[Finding]:
    """Each input tensor on its own; several inputs' findings name which one ("input 2 of 2:").
    A constant input beside others that vary is not an error (a mask, a fixed flag)."""
    leaves = tensors(x)
    if len(leaves) == 1:
        return _check_tensor(model, leaves[0])
    found = [replace(f, message=f"input {i + 1} of {len(leaves)}: {f.message}",
                     evidence={**f.evidence, "input": i})
             for i, leaf in enumerate(leaves) for f in _check_tensor(model, leaf)]
    constant = [f for f in found if f.code == "inputs_constant"]
    if 0 < len(constant) < len(leaves):  # the others vary: a mask or flag, not a broken loader
        found = [f for f in found if f.code != "inputs_constant"]
    return found


def _check_tensor(model: nn.Module, x: torch.Tensor) -> list[Finding]:
    if not x.is_floating_point():
        return []  # token ids and the like: the forward check catches a wrong dtype
    fix = "remove or impute them before training; revisit the data stage."
    bad = ~torch.isfinite(x)
    if bad.any():
        rows = bad.reshape(len(x), -1).any(1)
        return [error(STAGE, "inputs_not_finite",
                      f"{int(bad.sum())} NaN/Inf values in the inputs, in {int(rows.sum())} of "
                      f"{len(x)} samples.", fix, count=int(bad.sum()),
                      samples=rows.nonzero().flatten()[:10].tolist())]
    findings = input_dtype_findings(model, x)
    if len(x) > 1 and float((x - x[:1]).abs().max()) == 0.0:
        return findings + [error(STAGE, "inputs_constant",
                                 f"all {len(x)} input samples are identical (e.g. all zeros): "
                                 "the model has nothing to learn from.",
                                 "check the loading and normalisation code (a std of 0, a "
                                 "wrong column); revisit the data stage.",
                                 value=float(x.flatten()[0]))]
    return findings + _scale(x)


def input_dtype_findings(model: nn.Module, x: torch.Tensor) -> list[Finding]:
    """check's inputs_wrong_dtype error when x's dtype is not the model's first floating
    weight's; fit, the probes and shape_trace give the same words when a forward fails."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is None or param.dtype == x.dtype:
        return []
    return [error(STAGE, "inputs_wrong_dtype",
                  f"inputs are {x.dtype} but the model's weights are {param.dtype}.",
                  "make them agree: a model in float64 (a .double() call, or tensors built "
                  "from numpy's float64 inside it) wants model.float(), the usual float32 "
                  "(revisit the model stage); inputs in float64 from numpy want "
                  f"x.to({param.dtype if param.dtype != torch.float64 else 'torch.float32'}) "
                  "(revisit the data stage).",
                  input_dtype=str(x.dtype), model_dtype=str(param.dtype))]


def _scale(x: torch.Tensor) -> list[Finding]:
    features = _feature_view(x).double()
    rms = features.pow(2).mean(0).sqrt()  # sqrt(mean^2 + var) per feature
    if float(rms.max()) < MIN_INPUT_RMS:
        return [warning(STAGE, "inputs_not_normalised",
                        f"every input feature has RMS under {MIN_INPUT_RMS:g} (largest "
                        f"{float(rms.max()):.3g}): the first layer's gradients vanish with them.",
                        "standardise each feature with the training split's mean and std; "
                        "revisit the data stage.", rms=float(rms.max()), min_rms=MIN_INPUT_RMS)]
    worst = int(rms.argmax())
    if float(rms[worst]) <= MAX_FEATURE_RMS:
        return []
    return [warning(STAGE, "inputs_not_normalised",
                    f"input feature {worst} has RMS {float(rms[worst]):.3g} (mean "
                    f"{float(features[:, worst].mean()):.3g}); "
                    f"{int((rms > MAX_FEATURE_RMS).sum())} of {len(rms)} features exceed "
                    f"{MAX_FEATURE_RMS:g}. Unscaled inputs make the loss at init and the "
                    "gradients depend on units, not on the signal.",
                    "standardise each feature with the training split's mean and std; "
                    "revisit the data stage.",
                    feature=worst, rms=float(rms[worst]), max_rms=MAX_FEATURE_RMS)]


def check_targets(y: torch.Tensor, task: str, num_classes: int) -> list[Finding]:
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        return [error(STAGE, "targets_not_finite",
                      f"{int((~torch.isfinite(y)).sum())} NaN/Inf targets.",
                      "drop or fix those rows; revisit the data stage.")]
    if task == "classification":
        return _check_labels(y, num_classes)
    if not y.is_floating_point():
        return [error(STAGE, "targets_wrong_dtype",
                      f"regression targets are {y.dtype}; MSE needs float targets.",
                      "convert them with y.float(); if they are class indices, set "
                      "task = \"classification\" instead; revisit the data stage.",
                      dtype=str(y.dtype))]
    return _discrete_targets(y)


def _discrete_targets(y: torch.Tensor) -> list[Finding]:
    """Float targets with a handful of integer values: class indices fed to a regression?
    Only info: ratings and counts are legitimately regressed."""
    values = torch.unique(y)
    if len(values) > MAX_DISCRETE_VALUES or not bool((values == values.round()).all()):
        return []
    return [info(STAGE, "targets_look_categorical",
                 f"the regression targets take only {len(values)} integer values "
                 f"({names_list([f'{v:g}' for v in values.tolist()])}); if they are class "
                 "indices, set task = \"classification\" (MSE would treat class 9 as closer to "
                 "8 than to 0).", values=values.tolist())]


def _check_labels(y: torch.Tensor, num_classes: int) -> list[Finding]:
    if y.is_floating_point():
        integral = bool((y == y.round()).all())
        return [error(STAGE, "labels_wrong_dtype" if integral else "labels_not_integer",
                      f"classification labels are {y.dtype}"
                      + ("" if integral else " with non-integer values")
                      + "; cross-entropy needs int64 class indices 0..C-1.",
                      ("convert with y.long()" if integral else
                       "encode the classes as 0..C-1 (or set task = \"regression\")")
                      + "; revisit the data stage.", dtype=str(y.dtype))]
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        shift = " (labels 1..C: subtract 1)" if low == 1 and high == num_classes else ""
        return [error(STAGE, "labels_out_of_range",
                      f"labels span {low}..{high} but num_classes={num_classes} needs "
                      f"0..{num_classes - 1}{shift}.",
                      "re-encode the labels as 0..C-1 or fix num_classes; revisit the data "
                      "stage.", min=low, max=high, num_classes=num_classes)]
    if len(torch.unique(y)) == 1 and len(y) > 1:
        return [warning(STAGE, "labels_single_class",
                        f"all {len(y)} labels in the check subset are class {low}.",
                        "shuffle before sampling, or check the label column; revisit the "
                        "data stage.", label=low)]
    return []


def check_data(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
               num_classes: int) -> list[Finding]:
    """Check (a): finite, non-constant, normalised inputs of the model's dtype; targets that
    fit the task (int64 labels in [0, C) or float regression targets)."""
    rows = [len(t) for t in tensors(x)]
    if any(n != len(y) for n in rows):
        return [error(STAGE, "inputs_targets_mismatch",
                      f"{'/'.join(map(str, rows))} input samples but {len(y)} targets.",
                      "pair every input with one target (every input tensor holds the same "
                      "samples along dim 0); revisit the data stage.",
                      num_inputs=rows[0] if len(rows) == 1 else rows, num_targets=len(y))]
    return check_inputs(model, x) + check_targets(y, task, num_classes)
