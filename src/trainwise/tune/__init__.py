"""Tuning by evidence: the learning-rate range test and its suggestion rules, short real runs
among candidate peak lrs, and the batch-size search.

The verbs (also at the top level, `trainwise.tune_lr` etc.):
    tune_lr(model, loss_fn, train_loader, val_loader, make_optimizer, config=TuneConfig())
        the whole lr search: the range test, then short real runs over its range
    lr_range_test (`trainwise.find_lr`)  the range test alone
    find_batch_size                       the largest batch that fits and still speeds up
help(tune_lr) says what each argument must be; `trainwise.TuneConfig` holds the settings.
This subpackage is not itself a verb: the CLI's `trainwise tune` is `trainwise.tune_lr`.
"""

from trainwise.tune.batch_probe import find_batch_size
from trainwise.tune.batch_size import BatchSizeResult, search_batch_size
from trainwise.tune.candidates import candidate_lrs, refine
from trainwise.tune.large_batch import accumulation_plan
from trainwise.tune.lr_range import LrCurve, LrRangeResult, exponential_ramp, lr_range_test
from trainwise.tune.lr_rule import LrSuggestion, suggest_range
from trainwise.tune.no_trace import Snapshot, no_trace
from trainwise.tune.search import TuneResult, tune_lr
from trainwise.tune.short_run_result import ShortRunResult
from trainwise.tune.short_runs import short_runs
from trainwise.tune.suggest import RULES, get_rule, list_rules, suggest_lr

__all__ = [
    "RULES", "BatchSizeResult", "LrCurve", "LrRangeResult", "LrSuggestion", "ShortRunResult",
    "Snapshot", "TuneResult", "accumulation_plan", "candidate_lrs", "exponential_ramp",
    "find_batch_size", "get_rule", "list_rules", "lr_range_test", "no_trace", "refine",
    "search_batch_size", "short_runs", "suggest_lr", "suggest_range", "tune_lr",
]

