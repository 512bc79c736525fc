"""Tuning by evidence: the learning-rate range test and its suggestion rules."""

from trainwise.tune.lr_range import LrCurve, LrRangeResult, exponential_ramp, lr_range_test
from trainwise.tune.lr_rule import LrSuggestion, suggest_range
from trainwise.tune.no_trace import Snapshot, no_trace
from trainwise.tune.suggest import RULES, get_rule, list_rules, suggest_lr

__all__ = [
    "RULES", "LrCurve", "LrRangeResult", "LrSuggestion", "Snapshot", "exponential_ramp",
    "get_rule", "list_rules", "lr_range_test", "no_trace", "suggest_lr", "suggest_range",
]
