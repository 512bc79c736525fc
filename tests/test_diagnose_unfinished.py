"""still_improving (user audit s11 M12): a 5-epoch run whose validation loss was still
falling (1.110 -> 0.9905, best = last) was called healthy."""

from __future__ import annotations

from test_diagnose_gap import DEFAULT_TRAIN, DEFAULT_VAL, DIGITS_TRAIN, DIGITS_VAL, epochs
from trainwise.findings import Severity
from trainwise.train.diagnose import RULES, diagnose

SHORT_VAL = [1.1101, 1.0776, 1.0598, 1.0147, 0.9905]  # the audit's run, epochs 1-5
SHORT_TRAIN = [1.10, 1.08, 1.05, 1.02, 0.99]


def test_a_run_ended_while_its_validation_loss_still_fell_is_not_healthy():
    found = diagnose(epochs(SHORT_TRAIN, SHORT_VAL))
    assert "healthy" not in [f.code for f in found]
    (finding,) = [f for f in found if f.code == "still_improving"]
    assert finding.severity is Severity.WARNING and finding.evidence["best_epoch"] == 5
    # by hand: 1.0776 - 0.9905 = 0.0871 of the whole 1.1101 - 0.9905 = 0.1196: 73%
    assert finding.evidence["late_share"] == round(0.0871 / 0.1196, 4)
    assert "train.max_epochs" in finding.fix


def test_a_converged_or_early_stopped_run_is_not_still_improving():
    assert RULES["still_improving"](epochs(DEFAULT_TRAIN, DEFAULT_VAL)) == []  # best: 15 of 23
    assert RULES["still_improving"](epochs(DIGITS_TRAIN, DIGITS_VAL)) == []  # best: 10 of 15
    converged = [2.0, 0.5, 0.2, 0.1, 0.095, 0.094, 0.0935]  # best last, the curve flattened:
    # the last 3 epochs gave 0.0065, 3% of the fall and 6.5% of the loss
    assert RULES["still_improving"](epochs([1.0] * 7, converged)) == []
    flat_end = SHORT_VAL[:3] + [1.0590, 1.0585]  # best last, but by 0.1%: noise, not a fall
    assert RULES["still_improving"](epochs(SHORT_TRAIN, flat_end)) == []
