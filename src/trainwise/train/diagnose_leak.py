"""Validation as good as training all along: validation rows drawn from the training rows.

Once a model has learned much (its training loss a fraction of where it started), rows it
never saw score worse than the rows it learns from: the validation loss sits above the
training loss. A validation set cut from the training rows instead tracks the training loss,
at or below it, to the end. Dropout and augmentation raise the training-mode loss, so the
comparison is made only where a held-out set shows a gap, and over most of those epochs.
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import Row, epoch_losses, make, num

LEAK_MIN_FIT = 0.25  # judged only over the epochs after the training loss fell to a quarter of
# its first epoch's: before, a held-out set may show no gap yet (a GRU whose loss halved: 0.95-1.0)
LEAK_SHARE = 0.7  # validation <= training (at the epoch's end) in >= 70% of those epochs, and
LEAK_RATIO = 1.0  # their median ratio at most 1. Measured (ratio of validation to end-of-epoch
# training loss, share of epochs at or below 1): the audit's MNIST-1D MLP validated on 400 of
# its 2000 training rows, 60 epochs: median 0.97, 93%. The same run validated on held-out rows
# 5.0, 0%; the diagnosis zoo's healthy runs (seeds 0-2) 1.3-4.6, at most 22%; the built-in
# baselines (dropout, so a training-mode loss raised): MNIST-1D 1.7, 19%; digits (12 epochs,
# seeds 0-2) 1.02-1.31, at most 43%.
LEAK_RATIO_LOW = 0.8  # ... and at least this: validation rows that ARE training rows track the
# training loss closely (the audit's leak: 0.97). Far below it the validation set is easier
# than training, or dropout and augmentation raise the training-mode loss, which a leak does
# not explain: the breast_cancer baseline (46 validation rows, dropout 0.1) sat at 0.33.
LEAK_EPOCHS = 3  # at least this many epochs past the fit to judge
MIN_DROP_EPOCHS = 5


def rule_validation_leak(history: list[Row]) -> list[Finding]:
    rows, train, val = epoch_losses(history, positive=True)
    if len(rows) < MIN_DROP_EPOCHS:
        return []
    # An epoch's train_loss averages its steps: the model of mid-epoch. The validation loss is
    # the model at the epoch's end, which the geometric mean of this and the next epoch's
    # training loss estimates (on the fast early epochs the mean alone reads too high).
    train_end = np.sqrt(train[:-1] * train[1:])
    fitted = np.flatnonzero(train_end <= LEAK_MIN_FIT * train[0])
    if len(fitted) < LEAK_EPOCHS:
        return []
    ratios = val[fitted] / train_end[fitted]
    ratio, share = float(np.median(ratios)), float(np.mean(ratios <= 1))
    if not LEAK_RATIO_LOW <= ratio <= LEAK_RATIO or share < LEAK_SHARE:
        return []
    first = rows[int(fitted[0])]
    message = (f"The validation loss stayed at or below the training loss in {share:.0%} of "
               f"the {len(fitted)} epochs after the training loss fell under {LEAK_MIN_FIT:.0%} "
               f"of its first epoch's (median ratio {ratio:.2f}): by then rows the model never "
               "saw score worse than the rows it trains on. The validation rows may come from "
               "the training set.")
    fix = ("Check that no validation row, or a copy of one, is also a training row: draw "
           "validation from rows the training loader never sees (split stage). Dropout or "
           "augmentation raise the training-mode loss and explain a small gap; to be sure, "
           "compare with the training loss measured in eval mode on a few training batches.")
    return [make(Severity.WARNING, "validation_leak", message, fix, first.get("step"),
                 epochs_compared=len(fitted), median_val_train_ratio=num(ratio),
                 share_at_or_below=num(share), first_epoch_train_loss=num(float(train[0])),
                 threshold_fit=LEAK_MIN_FIT, threshold_share=LEAK_SHARE)]
