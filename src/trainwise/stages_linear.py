"""The evaluate stage's linear reference: a logistic / ridge model fitted on the training split
(train/linear_reference.py), scored on the test rows beside the network, saved to keep if it
wins, and the warning when the network does not clearly beat it. Kept apart from
stages_evaluate.py, which scores the network itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainwise.findings import Finding
from trainwise.stages import RunContext
from trainwise.train.class_metrics import balanced_accuracy, confusion_matrix
from trainwise.train.data_first import LINEAR_AT_CHANCE, linear_at_chance
from trainwise.train.linear_reference import (
    LINEAR_FILE,
    LINEAR_KINDS,
    LinearFit,
    class_finding,
    linear_fit,
    regression_finding,
    save_linear,
)
from trainwise.train.regression_intervals import balanced_accuracy_difference, linear_difference
from trainwise.train.regression_metrics import score_baseline
from trainwise.train.regression_predictions import in_target_units


def linear_scores(ctx: RunContext, row: dict[str, Any],
                   outputs: torch.Tensor) -> list[Finding]:
    """Adds to the test row the linear reference's scores; the linear model's warning."""
    assert ctx.data is not None
    # the network's test answers: its classes, or its values in the target's units (for the
    # paired bootstrap of its RMSE minus the linear model's)
    predicted = outputs.argmax(dim=1).numpy() if ctx.data.task == "classification" else \
        in_target_units(outputs.numpy(), ctx.target_units())
    linear, findings = linear_reference(ctx, row, predicted)
    row.update(linear)
    return findings


def linear_reference(ctx: RunContext, row: dict[str, Any], predicted: np.ndarray | None = None
                      ) -> tuple[dict[str, Any], list[Finding]]:
    """The linear model fitted on the training split (linear_reference.py), scored on the
    test rows beside the network (`predicted`: its class per test row, for a classification;
    its values in the target's units for a regression, for the paired difference); nothing
    for images, sequences and token ids."""
    assert ctx.data is not None
    train, test = ctx.splits["train"], ctx.splits["test"]
    classification = ctx.data.task == "classification"
    weighted = classification and ctx.config.train.class_weights == "balanced"
    fit = None if ctx.data.kind not in LINEAR_KINDS else linear_fit(
        train.x, train.y, test.x, classification, seed=ctx.config.run.seed,
        class_weighted=weighted)
    if fit is None:
        return {}, []
    _save_linear(ctx, fit)
    if classification:
        return _linear_classes(row, np.asarray(test.y).reshape(-1), predicted, fit, weighted,
                               ctx.config.run.seed)
    units = ctx.target_units()  # scored in the target's units, as the network's RMSE
    actual = in_target_units(test.y, units)
    linear = in_target_units(fit.predictions, units)
    scored = score_baseline("linear", linear, actual)
    found = regression_finding(row["test_rmse"], scored.rmse, float(actual.std()), fit)
    paired = {} if predicted is None else linear_difference(actual, predicted, linear,
                                                             seed=ctx.config.run.seed)
    variance = float(actual.var())  # the line's R^2: a perfect one is a leak (too_good)
    r2 = {"test_linear_r2": 1 - scored.rmse ** 2 / variance} if variance > 0 else {}
    return ({"test_linear_rmse": scored.rmse, "test_linear_mae": scored.mae, **r2, **paired},
            [found] if found else [])


def _save_linear(ctx: RunContext, fit: LinearFit) -> None:
    """linear_reference.npz: the line scored beside the network, to keep if it wins."""
    assert ctx.data is not None
    if not ctx.fabric.is_global_zero:
        return
    units = ctx.target_units()
    save_linear(ctx.run.path / LINEAR_FILE, fit, list(ctx.data.feature_names), ctx.data.task,
                units.mean, units.scale, units.log or "none")


def _linear_classes(row: dict[str, Any], targets: np.ndarray, predicted: np.ndarray | None,
                    fit: LinearFit, weighted: bool,
                    seed: int = 0) -> tuple[dict[str, Any], list[Finding]]:
    """The linear model's accuracy and balanced accuracy (counted as the network's, from a
    confusion matrix) and the warning when the network does not clearly beat it."""
    network = np.asarray(row["test_confusion"], dtype=np.int64)
    matrix = confusion_matrix(torch.as_tensor(fit.predictions), torch.as_tensor(targets),
                              len(network))
    right, rows = int(matrix.trace()), int(matrix.sum())
    extra = {"test_linear_accuracy": right / max(rows, 1),
             "test_linear_balanced_accuracy": balanced_accuracy(matrix),
             LINEAR_AT_CHANCE: linear_at_chance(matrix.numpy())}
    if not rows:
        return extra, []
    balanced = (row["test_balanced_accuracy"], extra["test_linear_balanced_accuracy"]) \
        if weighted else None
    assert predicted is not None, "the network's test classes decide the linear warning"
    network_right = np.asarray(predicted).reshape(-1) == targets
    linear_right = np.asarray(fit.predictions).reshape(-1) == targets
    discordant = (int((linear_right & ~network_right).sum()),
                  int((network_right & ~linear_right).sum()))
    # weighted: the balanced accuracies' own paired bootstrap, not McNemar's (review s14 VE12)
    interval = balanced_accuracy_difference(targets, predicted, fit.predictions, seed) \
        if weighted else None
    found = class_finding(int(np.trace(network)), right, rows, fit, discordant, balanced,
                          interval)
    return extra, [found] if found else []
