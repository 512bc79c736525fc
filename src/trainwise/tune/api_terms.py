"""The tuning findings' fixes in the words of the Python call that made them.

The texts are written for `trainwise run` / `trainwise tune`: config keys (train.batch_size,
tune.num_steps) a notebook's find_lr or tune_lr call does not have; its levers are the
DataLoader's batch_size, `max_epochs=`, `seeds=`, `num_steps=` and `TuneConfig(...)` (audit
s16 N9). As train/loop_terms.py does for the Monitor, the public calls rewrite their findings
here, so each rule keeps one text; the recipe asks for the config words
(fix_terms="config"). Longer phrases come first: they hold the shorter ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from trainwise.findings import Finding, Findings

# both calls: the training data's and the run's levers
_COMMON = {
    "a smaller train.batch_size or a larger train.max_epochs":
        "a smaller batch_size in your DataLoader or a larger max_epochs=",
    "lower train.batch_size or raise train.max_epochs":
        "lower your DataLoader's batch_size or raise max_epochs=",
    "or train.batch_size steadies": "or a larger batch_size in your DataLoader steadies",
    "split.val_fraction": "a larger validation split",
    "compare the candidates in the report": "compare the candidates (result.short."
                                            "candidates; result.plot() draws them)",
    "run `trainwise tune` (tune.short_runs = true)":
        "call trainwise.tune_lr (its short runs are on by default)",
    'Set tune.short_runs = true (the default) so short real runs choose the lr, or use '
    'train.schedule = "onecycle".':
        "Leave the short runs on (TuneConfig(short_runs=True), the default) so short real "
        "runs choose the lr, or train with a one-cycle schedule (make_scheduler="
        "trainwise.tune.short_runs.onecycle, the default).",
}
# find_lr's range-test settings are its own keyword arguments
_FIND_LR = {"tune.num_seeds >= 3": "seeds=(0, 1, 2)", "tune.num_steps": "num_steps=",
            "tune.start_lr": "start_lr=", "tune.end_lr": "end_lr="}
# tune_lr's are TuneConfig's fields; its range test's start_lr / end_lr are TuneConfig's too
_TUNE_LR = {"tune.num_seeds >= 3": "TuneConfig(num_seeds=3)",
            "Raise end_lr": "Raise TuneConfig(end_lr=...)",
            "raise end_lr": "raise TuneConfig(end_lr=...)",
            "Lower start_lr": "Lower TuneConfig(start_lr=...)"}
_TUNE_KEY = re.compile(r"\btune\.(\w+)")  # any other tune.X: TuneConfig(X=...)


def in_api_terms(text: str, verb: str) -> str:
    """`text` said for a Python call of `verb` ("find_lr" or "tune_lr")."""
    for key, words in (_COMMON | (_FIND_LR if verb == "find_lr" else _TUNE_LR)).items():
        text = text.replace(key, words)
    return _TUNE_KEY.sub(lambda match: f"TuneConfig({match.group(1)}=...)", text)


def for_api(findings: Iterable[Finding], verb: str) -> list[Finding]:
    """The findings with their message and fix in API terms (unchanged ones kept as they are)."""
    said = []
    for finding in findings:
        message, fix = in_api_terms(finding.message, verb), in_api_terms(finding.fix, verb)
        same = message == finding.message and fix == finding.fix
        said.append(finding if same else replace(finding, message=message, fix=fix))
    return said


def in_terms(findings: Iterable[Finding], verb: str, fix_terms: str) -> Findings:
    """The findings said for `fix_terms`: "api" in `verb`'s words (for_api), "config" as the
    rules wrote them (`trainwise run`'s keys); a Findings, a notebook's table."""
    return Findings(for_api(findings, verb) if fix_terms == "api" else findings)
