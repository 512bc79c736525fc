"""A run that started on an already-trained model: its loss begins far below chance.

Re-running a notebook's training cell on the same module is the commonest notebook action
(audit s16 N11), and it continues the earlier training. The plateau and explosion rules read
the loss against its own start, so a converged model read as "barely moved -> raise the lr"
(from 0.0302, 4% of chance ln 2 = 0.693, to 0.0292) and a fresh AdamW's bump on it as "exploded
-> lower the lr" (0.0055 to 0.0456, 0.8% to 6.6% of chance, the validation loss steady). An
untrained classifier starts near chance, ln C (its outputs near uniform); one at a tenth of it
already gives the right class a probability of at least C^-0.1 on average (0.93 for 2 classes,
0.79 for 10): trained, not stalled. Classification only: a regression loss has no chance level
in the history. Only a curve logged from step 1 shows the loss at initialisation: a loop that
logs every 100 steps (or only epoch means) on an easy 10-class set is below 0.23 = 0.1 x ln 10
at its first row with a freshly built model (review s16 VN1), so there the rules judge as usual.
"""

from __future__ import annotations

import math

from trainwise.train.diagnose_common import Row, loss_curve, num_classes

ALREADY_TRAINED = 0.1  # a loss below this share of chance (ln C) is a trained model's


def _chance_of(history: list[Row]) -> float | None:
    """ln C (not_learned.chance_loss, which imports this module through diagnose_loss) when
    the history states C; else None."""
    classes = num_classes(history)
    return None if classes is None else math.log(classes)


def starts_at_init(history: list[Row]) -> bool:
    """The training loss was logged from step 1: its first value is the model's as this run
    found it (a first row at step 100, or epoch means only, are already trained upon)."""
    curve = loss_curve(history)
    return curve.per_step and len(curve.steps) > 0 and curve.steps[0] <= 1


def far_below_chance(history: list[Row], loss: float) -> bool:
    """True when `loss` is below ALREADY_TRAINED x chance and the curve starts at step 1
    (unknown chance, or a first row later than step 1: False)."""
    chance = _chance_of(history)
    return (chance is not None and math.isfinite(loss) and loss < ALREADY_TRAINED * chance
            and starts_at_init(history))


def already_trained_words(history: list[Row], start: float) -> str | None:
    """Why the model was trained before this run, or None: '0.0302 at the start, 4% of chance
    (ln 2 = 0.693): the model was already trained when this run started; this run continues
    it'."""
    chance = _chance_of(history)
    if chance is None or not far_below_chance(history, start):
        return None
    return (f"its loss at the start, {start:.4g}, is {start / chance:.1%} of chance "
            f"(ln {num_classes(history)} = {chance:.3g}): the model was already trained when "
            "this run started, and this run continues it")
