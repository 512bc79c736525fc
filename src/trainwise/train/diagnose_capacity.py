"""Underfitting: the training and validation losses level off together, far above zero, with
no gap between them (capacity); or the training loss stays above the validation loss
(heavy_regularisation: dropout or noise that only training mode applies holds the model back).
METHOD.md §2 starts simple "and only then grows the model"; capacity is
the evidence that says when: the model is not overfitting and has stopped learning, so its
size (or the data) is the limit, not the learning rate or the epochs.

Capacity is only an info: on data whose labels are noisy (a churn table at 70% accuracy) no
model does much better, and only a bigger model's validation loss can tell the two apart.
"""

from __future__ import annotations

import math

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    epoch_losses,
    final_run_start,
    loss_curve,
    make,
    num,
    plan_of,
    rows_of,
)
from trainwise.train.diagnose_rising import USUAL_DECAY, USUAL_DECAY_TEXT, decay_in_rows

MIN_EPOCHS = 6  # fewer epochs say too little about where the curves level off
LATE_SHARE = 0.25  # "level": judged over the last quarter of the epochs
MAX_LATE_DROP = 0.03  # the training loss fell less than 3% over that quarter
MAX_GAP = 0.10  # validation within 10% of training: no generalisation gap to speak of
MAX_ABOVE_BEST_VAL = 0.02  # the validation loss ends within 2% of its best: not rising
MIN_LEFT = 0.25  # the training loss still holds >= 25% of where it started (a model with
# room to spare drives it toward zero: digits and MNIST-1D baselines end at 1-5%)


def rule_capacity(history: list[Row]) -> list[Finding]:
    """Info when both losses are level, close together and far above zero at the end."""
    _, train, val = epoch_losses(history)
    curve = loss_curve(history)
    if len(train) < MIN_EPOCHS or not len(curve.values) or curve.start <= 0 or train[-1] <= 0:
        return []
    late = max(2, math.ceil(LATE_SHARE * len(train)))
    late_drop = (train[-late] - train[-1]) / train[-late]
    gap = (val[-1] - train[-1]) / train[-1]
    left = train[-1] / curve.start
    if (late_drop >= MAX_LATE_DROP or abs(gap) >= MAX_GAP or left < MIN_LEFT
            or val[-1] > (1 + MAX_ABOVE_BEST_VAL) * val.min()):
        return []
    return [make(
        Severity.INFO, "capacity",
        f"Training and validation losses level off together: over the last {late} epochs the "
        f"training loss fell {late_drop:.1%} (to {train[-1]:.4g}, {left:.0%} of where it "
        f"started), and validation ends at {val[-1]:.4g}, {gap:+.1%} from it. The model is "
        "not overfitting and has stopped learning, so its size may be the limit.",
        f"{GROW_MODEL} and keep it only if the validation loss falls; if it does not, the data set "
        "the limit (noisy labels, features with little signal: data stage).",
        None, late_epochs=late, late_drop=num(late_drop), gap=num(gap),
        left_of_start=num(left), final_train_loss=num(train[-1]),
        final_val_loss=num(val[-1]))]


# heavy_regularisation. An epoch's training loss is the mean over its steps, so while the model
# improves fast it sits above the end-of-epoch validation loss for a few early epochs; once the
# curves level, a model that learns keeps training below validation. Dropout 0.9 (audit s15
# B5, 4 balanced classes): train above val in 20 of 20 epochs, 29% above at epoch 20 and 38%
# at epoch 60, accuracy 0.70-0.75 against 0.92 without it.
ABOVE_SHARE = 0.75  # the training loss above validation in at least 3 of 4 epochs...
ABOVE_GAP = 0.10  # ...and at least 10% above it at the end...
MIN_VAL_LEFT = 0.40  # ...with validation still at >= 40% of the starting loss: dropout 0.9 ends
# at 61% (20 epochs) and 50% (60); noise of std 0.7 on standardised training inputs, 3 points
# of accuracy behind a clean run and a fair choice, at 24% (the audit's false-alarm case)
# capacity's lever, also missed_classes' for a class that is not rare (loop_terms.py rewrites it)
GROW_MODEL = ("Grow the model one step (model stage: double model.width for the built-in "
              "baselines, whose default 0 sizes it from the data; more units or layers in your "
              "own)")
DROPOUT_KEY = "dropout_heavy"  # epoch rows of fit and the Monitor: {layer: p}, from the model
# (train/dropout_rows.py), so that this module stays pure: no torch (review s15 VT10)
# the dropout advice, here and in the check stage's dropout_heavy (checks/initial.py)
DROPOUT_RANGE = "0.1-0.3"
DROPOUT_RAISE = "raise it only once the model overfits"


def rule_heavy_regularisation(history: list[Row]) -> list[Finding]:
    """Warning when the training loss sits above the validation loss in most epochs, at the
    end by ABOVE_GAP, with validation at MIN_VAL_LEFT of the starting loss or more (both far
    above zero): training-mode regularisation is too strong."""
    rows, train, val = epoch_losses(history, positive=True)
    curve = loss_curve(history)
    if len(train) < MIN_EPOCHS or not len(curve.values) or curve.start <= 0:
        return []
    above = train > val
    gap, left = train[-1] / val[-1] - 1, val[-1] / curve.start
    if above.mean() < ABOVE_SHARE or gap < ABOVE_GAP or left < MIN_VAL_LEFT:
        return []
    onset = final_run_start(above)
    message = (f"The training loss sat above the validation loss in {int(above.sum())} of "
               f"{len(train)} epochs and ends {gap:.0%} above it ({train[-1]:.4g} against "
               f"{val[-1]:.4g}; validation still at {left:.0%} of the starting loss): the model "
               "does better with its training-mode regularisation switched off (validation "
               "runs in eval mode). "
               "Dropout, or noise applied only to training batches, is too strong and the "
               "model underfits; a loss held up by it also looks like too low a learning rate.")
    layers = _dropout_layers(history)
    return [make(Severity.WARNING, "heavy_regularisation", message,
                 _regularisation_fix(history, layers), rows[onset].get("step"),
                 epochs_above=int(above.sum()), num_epochs=len(train), gap=num(gap),
                 val_left_of_start=num(left), final_train_loss=num(train[-1]),
                 final_val_loss=num(val[-1]), dropout_layers=layers,
                 threshold_share=ABOVE_SHARE, threshold_gap=ABOVE_GAP)]


def _dropout_layers(history: list[Row]) -> dict[str, float]:
    """The heavy dropout layers the last epoch row names (fit and the Monitor see the model)."""
    epochs = [row for row in rows_of(history, "epoch") if isinstance(row.get(DROPOUT_KEY), dict)]
    return dict(epochs[-1][DROPOUT_KEY]) if epochs else {}


def _regularisation_fix(history: list[Row], layers: dict[str, float]) -> str:
    lower = f"to {DROPOUT_RANGE} (model stage; {DROPOUT_RAISE})"
    then = f"{_decay_too(history)}, then judge the learning rate: a loss held up by dropout " \
        "makes it look too low."
    if layers:
        named = ", ".join(f"'{name}' (p = {p:g})" for name, p in list(layers.items())[:4])
        return f"Lower the dropout of layer{'s' if len(layers) > 1 else ''} {named} {lower}{then}"
    dropout = plan_of(history).dropout
    if dropout is not None:  # a built-in baseline of trainwise run
        return f"Lower model.dropout (now {dropout:g}) {lower}{then}"
    return (f"Lower the dropout in the model {lower}, or weaken noise or augmentation applied "
            f"only to training batches (data stage){then}")


def _decay_too(history: list[Row]) -> str:
    """The weight decay too, when above AdamW's usual range: it pulls the weights back as the
    loss rises (loss_rising, folded under this rule; audit s15 B3 used 10)."""
    decay = decay_in_rows(history)
    if decay is None or decay <= USUAL_DECAY:
        return ""
    key = ("train.weight_decay" if plan_of(history).weight_decay is not None
           else "the optimizer's weight_decay")
    return f", and lower {key} (now {decay:g}; {USUAL_DECAY_TEXT} is usual for AdamW)"
