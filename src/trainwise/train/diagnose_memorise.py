"""Memorising without a rise: the validation loss never beat its first epoch (or never left
chance, ln C) while the training loss fell by a large factor.

The overfitting rule looks for a validation loss that climbs; a model that memorises from the
first epoch on may never climb: a user audit's 100-row, 500-feature table (72 training rows,
195k parameters) took the training loss 0.70 -> 0.09 while the validation loss sat at
0.69-0.73 (ln 2 = 0.693) for 33 epochs, a 3-5% drift under every rise threshold, and the run
was called healthy. Pure numpy over the epoch curves; diagnose_val builds the finding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from trainwise.train.diagnose_common import diff_noise

MEMORISE_FALL = 3.0  # the training loss ends (median of the last 3 epochs) 3x below its
# first epoch. The audit's run fell 5.3x; shuffled labels on the zoo's tables fall 2-4x in 20
# epochs. A healthy run falls far more, but its validation loss falls too, which this rule
# asks against.
MEMORISE_GAP = 3.0  # ...and ends 3x below the best validation loss: what it learned does not
# carry over. The audit's run: 0.6946 / 0.1061 = 6.5x. A run that converged inside epoch 1
# (many steps per epoch) also "falls" 3.4x from epoch 1's mean (0.95, which averages in the
# untrained first steps) to 0.28, but sits level with its validation loss (0.29): 1.04x (review
# s11 VT3, a false warning before this test).
NOISE_SIGMAS = 2.0  # "never beat epoch 1": the best is not 2 epoch-to-epoch noise steps below
MIN_GAIN = 0.02  # ...nor 2% below it (NO_GAIN in diagnose_val: a smaller gain is noise)
PER_ROW = 4.0  # a best validation loss over 4 x ln C is not a per-row cross-entropy (a sum
# over each batch, reduction="sum"), so ln C says nothing about it: audit s15 B14's best was
# 113.2 against ln 4 = 1.39 (81x) at 93% accuracy. A per-row loss at its BEST epoch this far
# above chance would mean confidently wrong answers from the first epoch on; the audit's
# memorising and relabelled runs had their best at 1.0-1.5 x ln C.


class Memorising(NamedTuple):
    """What the rule saw: the first and best validation losses, the noise that hides a gain,
    the training loss at the first epoch and at the end, and chance (ln C) when known."""

    val_first: float
    val_best: float
    noise: float
    train_first: float
    train_tail: float
    chance_loss: float | None
    learned: bool = False  # validation accuracy far above chance: not at chance, whatever
    # the loss says (diagnose_accuracy.above_chance)

    @property
    def fall(self) -> float:
        return self.train_first / max(self.train_tail, 1e-12)

    @property
    def gap(self) -> float:
        return self.val_best / max(self.train_tail, 1e-12)

    @property
    def at_chance(self) -> bool:
        """The best validation loss never came below ln C by more than its noise, on a loss
        on the per-row scale (PER_ROW) from a model whose accuracy is not above chance."""
        return self.chance_loss is not None and not self.learned and \
            self.chance_loss - self.noise <= self.val_best <= PER_ROW * self.chance_loss


def memorising(val: np.ndarray, train: list[float], classes: int | None,
               learned: bool = False) -> Memorising | None:
    """The evidence when validation never improved beyond its noise (or never left ln C:
    Memorising.at_chance) while the training loss (per epoch, same rows as `val`) fell
    MEMORISE_FALL x and ended MEMORISE_GAP x below the best validation loss. `learned`: the
    validation accuracy is far above chance."""
    if len(train) < 4 or train[0] <= 0:
        return None
    noise = diff_noise(val)
    chance = math.log(classes) if classes and classes >= 2 else None
    seen = Memorising(float(val[0]), float(val.min()), noise, float(train[0]),
                      float(np.median(train[-3:])), chance, learned)
    gain_hidden = seen.val_first - seen.val_best <= max(NOISE_SIGMAS * noise,
                                                        MIN_GAIN * seen.val_first)
    if not (gain_hidden or seen.at_chance) or seen.fall < MEMORISE_FALL or \
            seen.gap < MEMORISE_GAP:
        return None
    return seen
