"""Audit s15 (live diagnosis) B2, B5, B10: the cause that leads when two rules fire together."""

from __future__ import annotations

import numpy as np

from test_diagnose import _epoch_t, lr_steady_but_slow, rows_from
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_common import History


# B2: lr 100x too low read as squashed outputs --------------------------------------------------
def test_a_loss_still_falling_steadily_leads_over_underconfidence_below_the_squash_cap():
    """lr far too low: accuracy climbs to 0.7 while the confidence stays at 0.15, under the
    0.23 a softmax before the loss allows for 10 classes. Both rules fire; the lr leads and
    "remove a softmax" (which the model does not have) is not the verdict."""
    curves = lr_steady_but_slow()
    curves.val_accuracy = 0.1 + 0.6 * _epoch_t()
    curves.val_confidence = np.full(len(curves.val_loss), 0.15)
    history = rows_from(curves, with_classes=True)
    for row in history:
        if row["kind"] == "epoch":  # 400 rows between 0.10 and 0.20: none above the cap
            row["val_confidence_hist"] = [0, 0, 250, 150] + [0] * 16
    rows = History(history)
    assert [f.code for f in RULES["lr_too_low"](rows)] == ["lr_too_low"]
    [under] = RULES["underconfidence"](rows)
    assert under.evidence["outputs_squashed"] is True
    found = diagnose(history)
    assert [f.code for f in found] == ["lr_too_low"]
    assert found[0].evidence["also_seen"] == ["underconfidence"]
