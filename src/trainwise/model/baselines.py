"""The simplest models that fit the data, built with nn.Sequential and sized from it."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from trainwise.data.task import TaskData
from trainwise.findings import TrainwiseError


class ModelError(TrainwiseError):
    """A model cannot be built or imported; the message says which and how to fix it."""


def mlp(num_inputs: int, num_outputs: int, width: int = 0, dropout: float = 0.1) -> nn.Sequential:
    """Two hidden layers: the baseline for tables and flat vectors."""
    width = width or min(256, max(32, 2 * num_inputs))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(num_inputs, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_outputs),
    )


def _conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(c_out), nn.ReLU()]


def cnn1d(num_channels: int, num_outputs: int, width: int = 0,
          dropout: float = 0.1) -> nn.Sequential:
    """A small 1-D CNN for sequences (N, C, T): four conv blocks, global pooling, one linear.

    Global max+mean pooling makes it indifferent to where a pattern sits in the sequence,
    which is what MNIST-1D's random translations need.
    """
    width = width or 32
    return nn.Sequential(
        *_conv_block(num_channels, width, 1),
        *_conv_block(width, width, 1),
        *_conv_block(width, 2 * width, 2),  # (B, 2w, T/2)
        *_conv_block(2 * width, 2 * width, 1),
        nn.AdaptiveMaxPool1d(1),  # (B, 2w, 1)
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * width, num_outputs),
    )


def import_model(spec: str) -> type[nn.Module]:
    """'package.module:Class' -> the class; the user's own model, imported (not exec'd)."""
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"could not import model '{spec}': {exc}. Use 'package.module:Class' "
                         "with the module on your PYTHONPATH.") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"'{spec}' is not an nn.Module subclass.")
    return cls


def build_model(data: TaskData, name: str = "auto", width: int = 0,
                dropout: float = 0.1) -> nn.Module:
    """The baseline for this data, or the user's class (called with no arguments)."""
    num_outputs = data.num_classes or 1
    if ":" in name:
        return import_model(name)()
    if name == "auto":
        name = "cnn1d" if data.kind == "sequence" else "mlp"
    if name == "cnn1d":
        if data.x.ndim != 3:
            raise ModelError(f"cnn1d needs sequences shaped (N, C, T); got {data.x.shape}. "
                             "Use model.name = \"mlp\" for tables.")
        return cnn1d(data.x.shape[1], num_outputs, width, dropout)
    if name == "mlp":
        return mlp(int(torch.tensor(data.input_shape).prod()), num_outputs, width, dropout)
    raise ModelError(f"unknown model '{name}'. Use \"auto\", \"mlp\", \"cnn1d\" or "
                     "'package.module:Class'.")


def loss_function(task: str) -> nn.Module:
    """Cross-entropy on logits (B, C) vs labels (B,); MSE on (B,) vs (B,) for regression."""
    return nn.CrossEntropyLoss() if task == "classification" else RegressionLoss()


class RegressionLoss(nn.Module):
    """MSE that refuses the silent (B, 1) vs (B,) broadcast, which averages a (B, B) matrix."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.ndim == 2 and output.shape[1] == 1:
            output = output.squeeze(1)
        if output.shape != target.shape:
            raise ModelError(f"regression output shape {tuple(output.shape)} does not match "
                             f"target shape {tuple(target.shape)}; make the model output (B,) "
                             "or (B, 1).")
        return nn.functional.mse_loss(output, target)
