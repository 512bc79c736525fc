"""The split stage of the recipe as one pure function: which keys to honour, the test and
validation cuts (or k folds), and the proof that nothing leaks between the parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainwise.data.folds import kfold_indices
from trainwise.data.leakage import check_hashed, check_time_order, row_hashes
from trainwise.data.neardup import check_near_duplicates, perceptual_hashes
from trainwise.data.split import TIMED, SplitIndices, split_indices
from trainwise.data.task import Key, TaskData
from trainwise.findings import Finding, info, warning

ROW_LEVEL = ("random", "stratified")
SETTING = {"group": "split.group_column", "time": "split.time_column"}
PROMISE = {"group": "keep each of its values on one side",
           "time": "put validation after training in time (per series, with split.gap)"}


@dataclass
class SplitSettings:
    """The split section of the config, as plain values (so the API needs no Config)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    strategy: str = "auto"
    cut: object = ""
    gap: str | float = ""
    num_folds: int = 1
    seed: int = 0


@dataclass
class SplitResult:
    train: np.ndarray  # row indices into data.x (the pool)
    val: np.ndarray
    test: np.ndarray | None  # row indices into data.x, or None when the source has a test part
    strategy: str
    folds: list[SplitIndices] = field(default_factory=list)  # k > 1: all folds, train on [0]
    num_dropped: int = 0
    findings: list[Finding] = field(default_factory=list)


def _honours(key: Key, strategy: str) -> bool:
    if strategy == "auto":
        return True
    return strategy in TIMED if key.role == "time" else strategy not in ROW_LEVEL


def key_findings(data: TaskData, strategy: str = "auto") -> list[Finding]:
    """A warning per inferred key that names the column, why, and the setting to use it."""
    findings = []
    for key in data.keys:
        setting = f"--set {SETTING[key.role]}={key.column}"
        if key.declared:
            findings.append(info("data", f"{key.role}_key", f"{key.role} key: column "
                                 f"'{key.column}' (declared).", column=key.column))
        elif _honours(key, strategy):
            findings.append(warning(
                "data", f"inferred_{key.role}_key",
                f"column '{key.column}' looks like a {key.role} key ({key.reason}): the split "
                f"will {PROMISE[key.role]}.",
                f"Confirm it with `{setting}`; if rows are independent of it, use "
                f"`--set {SETTING[key.role]}=none`.", column=key.column, reason=key.reason))
        else:
            findings.append(warning(
                "data", f"ignored_{key.role}_key",
                f"column '{key.column}' looks like a {key.role} key ({key.reason}), but "
                f"split.strategy = '{strategy}' ignores it: the validation score may be "
                "inflated by rows of the same subject or the future.",
                f"Use it: `{setting}` (and split.strategy = \"auto\").",
                column=key.column, reason=key.reason))
    return findings


def _keys(data: TaskData, strategy: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Groups and times to pass on: declared ones always (a strategy that ignores them is an
    error in split_indices), inferred ones only when the strategy can honour them."""
    use = {k.role: k.declared or _honours(k, strategy) for k in data.keys}
    groups = data.groups if use.get("group", True) else None  # no Key record: declared
    times = data.times if use.get("time", True) else None
    return groups, times


def _prove(hashes: np.ndarray, groups: np.ndarray | None, times: np.ndarray | None,
           a: np.ndarray, b: np.ndarray, names: tuple[str, str], gap: Any) -> list[Finding]:
    timed = times is not None
    key = None if groups is None else np.asarray(groups)
    findings = check_hashed(hashes[a], hashes[b], names=names,
                            groups_a=None if timed or key is None else key[a],
                            groups_b=None if timed or key is None else key[b])
    if timed:
        findings += check_time_order(times[a], times[b], gap=gap, names=names,
                                     series_a=None if key is None else key[a],
                                     series_b=None if key is None else key[b])
    return findings


def _near_duplicates(data: TaskData, result: SplitResult, pairs: list,
                     seen: np.ndarray) -> list[Finding]:
    """pHash every image once; each pair of parts is searched within MAX_DISTANCE bits."""
    hashes = perceptual_hashes(data.x)
    findings = [f for a, b, names in pairs
                for f in check_near_duplicates(hashes[a], hashes[b], names=names, rows=(a, b))]
    if result.test is not None:
        test = hashes[result.test]
    elif data.x_test is not None:
        test = perceptual_hashes(data.x_test)
    else:
        return findings
    rows = (seen, result.test if result.test is not None else np.arange(len(test)))
    return findings + check_near_duplicates(hashes[seen], test, names=("train+val", "test"),
                                            rows=rows)


def _sub(values: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if values is None else np.asarray(values)[rows]


def plan_split(data: TaskData, settings: SplitSettings) -> SplitResult:
    """Carve test (when the source has none), then val or k folds, from the pool; prove each
    pair of parts shares no rows, no groups (or, for time splits, no time window)."""
    groups, times = _keys(data, settings.strategy)
    common: dict[str, Any] = {"strategy": settings.strategy, "task": data.task,
                              "gap": settings.gap}
    pool, test, dropped = np.arange(len(data.y)), None, 0
    if data.x_test is None:
        part = split_indices(data.y, val_fraction=settings.test_fraction, groups=groups,
                             times=times, seed=settings.seed + 1_000_003, **common)
        pool, test, dropped = part.train, part.val, part.num_dropped
    kwargs = dict(common, groups=_sub(groups, pool), times=_sub(times, pool))
    if settings.num_folds > 1:
        folds = kfold_indices(data.y[pool], num_folds=settings.num_folds, seed=settings.seed,
                              **kwargs)
        first = folds[0]
    else:
        folds = []
        first = split_indices(data.y[pool], val_fraction=settings.val_fraction,
                              seed=settings.seed, cut=settings.cut, **kwargs)
    result = SplitResult(pool[first.train], pool[first.val], test, first.strategy,
                         folds=folds, num_dropped=dropped + first.num_dropped)
    result.findings = _proofs(data, result, pool, groups, times, settings.gap)
    return result


def _proofs(data: TaskData, result: SplitResult, pool: np.ndarray, groups: np.ndarray | None,
            times: np.ndarray | None, gap: Any) -> list[Finding]:
    hashes = data.row_hashes()  # once (shared with the audit): every fold and part reuse it
    timed = result.strategy in TIMED
    times = times if timed else None
    pairs = [(pool[f.train], pool[f.val], (f"train{j}", f"val{j}"))
             for j, f in enumerate(result.folds)] or [(result.train, result.val, ("train", "val"))]
    findings = [f for a, b, names in pairs for f in _prove(hashes, groups, times, a, b, names, gap)]
    seen = np.concatenate([result.train, result.val])
    if result.test is not None:
        findings += _prove(hashes, groups, times, seen, result.test, ("train+val", "test"), gap)
    elif data.x_test is not None:
        common = np.result_type(data.x.dtype, data.x_test.dtype)
        findings += check_hashed(row_hashes(data.x[seen], common),
                                 row_hashes(data.x_test, common), names=("train+val", "test"))
    if data.kind == "image":
        findings += _near_duplicates(data, result, pairs, seen)
    if result.num_dropped:
        findings.append(info("split", "gap_rows", f"{result.num_dropped} rows fell inside the "
                             f"time gap ({gap}) and are in no part.", num_rows=result.num_dropped))
    return findings
