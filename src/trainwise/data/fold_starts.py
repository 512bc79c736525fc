"""One warning for the k folds of a whole-group time split whose groups span the same period.

Each fold's proof (leakage.check_group_starts) warns on its own that its validation groups
start last while most of its training rows are dated after validation begins; on 12 stores
that all start on one day that was five near-identical warnings (audit s13 F5), and none said
that such folds validate some groups never. They are merged here, with the fix that gives a
grouped k-fold instead.
"""

from __future__ import annotations

from trainwise.data.periods import (
    GROUPED_KFOLD_FIX,
    SAME_PERIOD_WHY,
    TIME_SPLIT_FIX,
    UNSEEN_GROUPS,
)
from trainwise.findings import Finding, warning


def merge_fold_starts(findings: list[Finding]) -> list[Finding]:
    """`findings` with every fold's group_start_order warning replaced by one, where the
    first of them stood; unchanged when fewer than two folds warned."""
    folds = [f for f in findings if f.code == "group_start_order"  # plan names folds' parts
             and f.severity.value == "warning" and _fold(f)]  # val0, val1, ...
    if len(folds) < 2:
        return findings
    at = findings.index(folds[0])
    rest = [f for f in findings if not any(f is fold for fold in folds)]
    return rest[:at] + [_merged(folds)] + rest[at:]


def _fold(finding: Finding) -> str:
    """The fold number of a fold's proof ("3" for part "val3"), "" for any other part: the
    single split's "val" and the test's, which are not merged (review s13 VD9: read from the
    evidence check_group_starts writes, not from its wording)."""
    part = str(finding.evidence.get("part", ""))
    return part[len("val"):] if part.startswith("val") and part[len("val"):].isdigit() else ""


def _merged(folds: list[Finding]) -> Finding:
    after = {f"fold {_fold(f)}": f.evidence.get("num_rows_after") for f in folds}
    listed = ", ".join(f"{name}: {rows}" for name, rows in after.items())
    return warning(
        "split", "group_start_order",
        f"{len(folds)} folds validate on the groups that start last, but most of each fold's "
        f"training rows are dated after its validation begins ({listed} such rows): "
        f"{SAME_PERIOD_WHY}; each fold {UNSEEN_GROUPS}. For example: {folds[0].message}",
        f"Instead, {GROUPED_KFOLD_FIX}; to {TIME_SPLIT_FIX}. Then rerun the split stage.",
        num_rows_after=after)
