"""Per-layer gradient norms: layers whose gradient vanished while others still learn.

The global norm is dominated by the layers with the largest gradients, so a stack of
saturated sigmoids, or ReLUs that died at initialisation, can starve the first layers while the
global norm looks normal. Step rows carry `layer_grad_norms` every K steps (train/monitor.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    final_run_start,
    loss_between,
    make,
    num,
    rows_of,
)

LAYER_RATIO = 1e-3  # below 1/1000 of the largest layer's norm at the same step: AUTOTRAINER's
# first/last-layer ratio beta1 = 1e-3. Healthy MLPs, CNNs and GRUs here stay within ~30x.
LAYER_SHARE = 0.5  # ...in at least half of the per-layer rows, the last one included
MIN_LAYER_ROWS = 3
CONVERGED_SHARE = 0.1  # loss under 10% of its start: small gradients are just convergence
LAYERS_LISTED = 8


def layer_table(history: list[Row]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(steps (R,), layer names (L,), norms (R, L)); NaN where a row lacks a layer."""
    rows = [row for row in rows_of(history, "step")
            if isinstance(row.get("layer_grad_norms"), dict) and row["layer_grad_norms"]]
    names = list(dict.fromkeys(name for row in rows for name in row["layer_grad_norms"]))
    norms = np.full((len(rows), len(names)), np.nan)
    column = {name: j for j, name in enumerate(names)}
    for i, row in enumerate(rows):
        for name, value in row["layer_grad_norms"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                norms[i, column[name]] = value
    steps = np.array([row.get("step", i) for i, row in enumerate(rows)], dtype=np.int64)
    return steps, names, norms


def vanished_layers(norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vanished (R, L) mask, ratio to the row's largest layer norm (R, L))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.nanmax(np.where(np.isfinite(norms), norms, -np.inf), axis=1, keepdims=True)
        ratio = np.where(top > 0, norms / top, np.nan)
    return np.nan_to_num(ratio, nan=1.0) < LAYER_RATIO, ratio


def rule_vanishing_layers(history: list[Row]) -> list[Finding]:
    steps, names, norms = layer_table(history)
    trained = int(np.isfinite(norms).any(axis=0).sum()) if len(steps) else 0  # frozen: NaN
    if len(steps) < MIN_LAYER_ROWS or trained < 2:
        return []
    vanished, ratio = vanished_layers(norms)
    flagged = [j for j in range(len(names))
               if vanished[-1, j] and vanished[:, j].mean() >= LAYER_SHARE]
    if not flagged or len(flagged) == trained:
        return []  # none, or all: the global-norm rule owns a gradient gone everywhere
    onset_row = min(final_run_start(vanished[:, j]) for j in flagged)
    first, last = int(steps[onset_row]), int(steps[-1])
    losses = loss_between(history, first, last)
    if losses and losses[0] > 0 and losses[1] < CONVERGED_SHARE * losses[0]:
        return []
    return [_finding(steps, names, norms, ratio, flagged, onset_row, losses, trained)]


def _finding(steps: np.ndarray, names: list[str], norms: np.ndarray, ratio: np.ndarray,
             flagged: list[int], onset_row: int, losses: tuple[float, float] | None,
             trained: int) -> Finding:
    listed = [names[j] for j in flagged[:LAYERS_LISTED]]
    last_ratio = {names[j]: num(float(ratio[-1, j])) for j in flagged[:LAYERS_LISTED]}
    dead = all(norms[-1, j] == 0 for j in flagged)
    kind = "is exactly zero" if dead else f"is below {LAYER_RATIO:g} of the largest layer's"
    message = (f"Vanishing gradients in {len(flagged)} of {trained} trained layers "
               f"({', '.join(listed)}): their gradient norm {kind} from step "
               f"{int(steps[onset_row])} on, while the loss had not converged.")
    fix = ("These layers are not learning. Dead ReLUs (zero gradient): check the init and "
           "biases (He init, zero biases; model stage) and lower the learning rate (tune "
           "stage); saturating sigmoid/tanh stacks: use ReLU with He init, add normalisation "
           "or residual connections (model stage).")
    evidence: dict[str, Any] = {
        "layers": listed, "num_layers": trained, "ratio_to_largest_layer": last_ratio,
        "largest_layer": names[int(np.nanargmax(norms[-1]))], "dead": dead,
        "loss_during_stretch": num(losses[1]) if losses else None,
        "threshold_ratio": LAYER_RATIO, "per_layer": True}
    return make(Severity.WARNING, "vanishing_gradients", message, fix, int(steps[onset_row]),
                **evidence)
