"""Prove two splits share nothing: no exact duplicate rows, no group key on both sides."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xxhash

from trainwise.data.errors import DataError
from trainwise.data.naming import name_files, named_pairs
from trainwise.findings import Finding, error, info, warning

NUM_EXAMPLES = 5  # example index pairs / groups carried in a finding's evidence
SMALL_POOL = 1 << 16  # 64k uint64 = 512 KB: fits in L2, random lookups stay cheap
HASH_ROWS = 4096  # rows normalised at once: 4096 x 154 float32 is 2.5 MB, about an L2 cache


def normalise_rows(x: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """(N, ...) -> (N, D) contiguous rows whose bytes are equal exactly when the values are.

    Floats need care: -0.0 and 0.0 compare equal but differ in bytes, and NaN has many bit
    patterns; both are mapped to one canonical form so equal-looking rows hash equal.
    """
    rows = np.asarray(x).reshape(len(x), -1)
    if dtype is not None:
        rows = rows.astype(dtype, copy=False)
    if rows.dtype.kind == "f":
        rows = rows + rows.dtype.type(0.0)  # a copy, and -0.0 + 0.0 == +0.0 in IEEE 754
        rows[np.isnan(rows)] = np.nan
    return np.ascontiguousarray(rows)


def row_hashes(x: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """xxh3-64 of each row's normalised bytes: (N,) uint64.

    Each row is viewed as one opaque np.void item so xxhash reads it in place (no per-row
    slicing or copies): ~0.3 s for 1M rows of 40 float32 on one core. At 64 bits a chance
    collision among 1M rows has probability ~3e-8, far below any count we report. Normalised
    HASH_ROWS rows at a time: the whole (1M, 154) float32 table normalised at once made a
    0.6 GB copy and a 0.15 GB mask, 1.2 s of memory traffic; a block stays in cache.
    """
    rows = np.asarray(x).reshape(len(x), -1)
    hashes = np.zeros(len(rows), dtype=np.uint64)
    for start in range(0, len(rows) if rows.shape[1] else 0, HASH_ROWS):
        block = normalise_rows(rows[start:start + HASH_ROWS], dtype)
        items = block.view(np.dtype((np.void, block.shape[1] * block.itemsize))).ravel()
        hashes[start:start + len(block)] = np.fromiter(
            map(xxhash.xxh3_64_intdigest, items), dtype=np.uint64, count=len(block))
    return hashes


def member(values: np.ndarray, pool: np.ndarray, *, pool_sorted: bool = False) -> np.ndarray:
    """values[i] in pool, by binary search of SORTED values in the sorted pool. On 200k
    uint64 hashes against 800k here: np.isin (hash-based unique since numpy 2.3) ~0.5 s,
    np.isin(kind="sort") 2.1 s, unsorted searchsorted 0.28 s (cache misses), this 0.08 s."""
    pool = pool if pool_sorted else np.sort(pool)
    found = np.zeros(len(values), dtype=bool)
    if len(pool) == 0 or len(values) == 0:
        return found
    if len(pool) <= SMALL_POOL:  # a pool that fits in cache needs no sorted needles
        position = np.minimum(np.searchsorted(pool, values), len(pool) - 1)
        return pool[position] == values
    order = np.argsort(values)
    ordered = values[order]
    position = np.minimum(np.searchsorted(pool, ordered), len(pool) - 1)
    found[order] = pool[position] == ordered
    return found


def _duplicate_pairs(hash_a: np.ndarray, hash_b: np.ndarray, rows_a: np.ndarray | None = None,
                     rows_b: np.ndarray | None = None, in_a: np.ndarray | None = None) -> dict:
    """Counts of rows on each side with a twin on the other, matched pairs, and examples.
    rows_a / rows_b map positions back to row numbers when the hashes are a subset; `in_a`:
    member(hash_b, hash_a) when the caller has it (it sorts the whole of a)."""
    in_a = member(hash_b, hash_a) if in_a is None else in_a  # (len b,) b rows with a twin in a
    shared = np.unique(hash_b[in_a])  # small: only the copies
    in_b = member(hash_a, shared, pool_sorted=True)
    _, count_a = np.unique(hash_a[in_b], return_counts=True)
    _, count_b = np.unique(hash_b[in_a], return_counts=True)  # same sorted keys as `shared`
    examples_b = np.flatnonzero(in_a)[:NUM_EXAMPLES]
    examples_a = [int(np.argmax(hash_a == hash_b[j])) for j in examples_b]  # first twin
    rows_a = np.arange(len(hash_a)) if rows_a is None else rows_a
    rows_b = np.arange(len(hash_b)) if rows_b is None else rows_b
    return {
        "num_rows_a": int(in_b.sum()),
        "num_rows_b": int(in_a.sum()),
        "num_pairs": int(np.sum(count_a.astype(np.int64) * count_b)),
        "num_distinct": int(len(shared)),
        "examples": [[int(rows_a[i]), int(rows_b[j])] for i, j in zip(examples_a, examples_b,
                                                                       strict=True)],
    }


MAX_COPY_SHARE = 0.05  # of the later part: deepchecks' TrainTestSamplesMix passes up to 5%


def _copies_fix(files: Sequence[str], timed: bool, many: bool) -> str:
    """A time split cannot keep copies together, and repeated readings are normal in time
    data: below MAX_COPY_SHARE it keeps its time order; only many copies call for groups."""
    if timed and not many:
        return ("Keep the time split: a few repeated readings are usual in time-ordered data, "
                "and they lift the later part's score by at most their share. If they are the "
                "same record logged twice, deduplicate the data (keep the first copy) and rerun "
                "the split stage.")
    return ("If they are copies, deduplicate the data before splitting (keep one copy of each "
            "row" + (": delete the copied files" if files else "") + "); if coarse features "
            "(few values each) make distinct rows look alike, add the features that tell them "
            "apart; or give such rows a shared group key and re-split by group. Then rerun the "
            "split stage.")


def check_duplicates(hash_a: np.ndarray, hash_b: np.ndarray, names: Sequence[str],
                     rows: tuple[np.ndarray, np.ndarray] | None = None,
                     files: Sequence[str] = (), *, num_b: int | None = None,
                     timed: bool = False, in_a: np.ndarray | None = None,
                     same: str = "inputs") -> list[Finding]:
    """A warning when rows of b copy rows of a, an error when more than MAX_COPY_SHARE of b's
    num_b rows (len(hash_b) unless the hashes are a subset) do; `files` (one per data row,
    image folders) names the example pairs' files; `timed`: a time split's fix; `in_a`: which
    b rows have a twin in a, when already known (member(hash_b, hash_a)); `same`: what the
    hashes cover, for the message ("inputs and time" for copies.stamp_hashes)."""
    stats = _duplicate_pairs(hash_a, hash_b, *(rows or (None, None)), in_a=in_a)
    if stats["num_pairs"] == 0:
        return []
    a, b = names
    num_b = len(hash_b) if num_b is None else num_b
    share = stats["num_rows_b"] / max(num_b, 1)
    evidence = {f"num_rows_{a}": stats["num_rows_a"], f"num_rows_{b}": stats["num_rows_b"],
                "num_pairs": stats["num_pairs"], "num_distinct": stats["num_distinct"],
                f"share_{b}": round(share, 4), f"examples_{a}_{b}": stats["examples"]}
    if files:
        evidence["example_files"] = name_files(files, stats["examples"])
    many = share > MAX_COPY_SHARE
    return [(error if many else warning)(
        "split", "cross_split_duplicates",
        f"{stats['num_rows_b']} {b} rows have the same {same} as {a} rows "
        f"({stats['num_rows_b']} of {num_b}, {share:.1%}: {'over' if many else 'up to'} "
        f"{MAX_COPY_SHARE:.0%} is {'an error' if many else 'a warning'}; "
        f"{stats['num_distinct']} distinct inputs, {stats['num_pairs']} matched pairs"
        f"{named_pairs(files, stats['examples'])}): where they are copies, "
        f"the {b} score would partly measure memorisation.",
        _copies_fix(files, timed, many), **evidence)]


def _as_keys(groups: np.ndarray) -> pd.Series:
    keys = np.asarray(groups).reshape(-1)
    # numbers stay numbers (1M int ids as Python objects cost ~0.3 s); anything else is
    # compared as objects so 'a' in one split and 'a' in the other match whatever the dtype
    return pd.Series(keys) if keys.dtype.kind in "iub" else pd.Series(keys, dtype=object)


def _shared_codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """Shared keys and rows on each side by presence tables, when the keys are small
    non-negative integers (group codes): O(N), no hashing of 10M keys."""
    if a.dtype.kind not in "iu" or b.dtype.kind not in "iu" or not len(a) or not len(b):
        return None
    low, high = min(int(a.min()), int(b.min())), max(int(a.max()), int(b.max()))
    if low < 0 or high >= 4 * (len(a) + len(b)) + 1024:
        return None
    present_a = np.bincount(a, minlength=high + 1) > 0
    present_b = np.bincount(b, minlength=high + 1) > 0
    both = present_a & present_b
    return np.flatnonzero(both), int(both[a].sum()), int(both[b].sum())


def shared_groups(groups_a: np.ndarray, groups_b: np.ndarray) -> tuple[Sequence, int, int]:
    """(keys on both sides, rows of a with one, rows of b with one)."""
    fast = _shared_codes(np.asarray(groups_a).reshape(-1), np.asarray(groups_b).reshape(-1))
    if fast is not None:
        return fast
    keys_a, keys_b = _as_keys(groups_a), _as_keys(groups_b)
    shared = pd.Index(keys_a.unique()).intersection(pd.Index(keys_b.unique()))
    return shared, int(keys_a.isin(shared).sum()), int(keys_b.isin(shared).sum())


def _check_groups(groups_a: np.ndarray, groups_b: np.ndarray,
                  names: Sequence[str]) -> list[Finding]:
    shared, rows_a, rows_b = shared_groups(groups_a, groups_b)
    if len(shared) == 0:
        return []
    a, b = names
    examples = [str(g) for g in shared[:NUM_EXAMPLES]]
    return [error(
        "split", "shared_groups",
        f"{len(shared)} groups appear in both {a} and {b} ({rows_a} {a} rows, {rows_b} {b} "
        f"rows), e.g. {', '.join(examples)}: the model can be scored on the groups it "
        f"trained on.",
        "Re-split by group (split.strategy = \"group\" or \"stratified_group\") so every "
        "group lands on one side only; then rerun the split stage.",
        num_shared_groups=len(shared), **{f"num_rows_{a}": rows_a, f"num_rows_{b}": rows_b},
        examples=examples)]


def check_leakage(x_a: np.ndarray, x_b: np.ndarray, *, groups_a: np.ndarray | None = None,
                  groups_b: np.ndarray | None = None,
                  names: tuple[str, str] = ("train", "val")) -> list[Finding]:
    """Errors for rows copied across two splits and for groups on both sides; info if clean.

    Groups are compared only when both sides carry them.
    """
    x_a, x_b = np.asarray(x_a), np.asarray(x_b)
    if x_a.shape[1:] != x_b.shape[1:]:
        raise DataError(f"{names[0]} rows have shape {x_a.shape[1:]} but {names[1]} rows "
                        f"{x_b.shape[1:]}; both splits must come from the same features.")
    common = np.result_type(x_a.dtype, x_b.dtype)  # 1.0 as float32 equals 1.0 as float64
    return check_hashed(row_hashes(x_a, common), row_hashes(x_b, common), groups_a=groups_a,
                        groups_b=groups_b, names=names)


def check_hashed(hash_a: np.ndarray, hash_b: np.ndarray, *, groups_a: np.ndarray | None = None,
                 groups_b: np.ndarray | None = None,
                 names: tuple[str, str] = ("train", "val"),
                 rows: tuple[np.ndarray, np.ndarray] | None = None,
                 files: Sequence[str] = (),
                 vectors: tuple[np.ndarray, np.ndarray] | None = None,
                 timed: bool = False,
                 stamps: tuple[np.ndarray, np.ndarray] | None = None,
                 series: bool = False) -> list[Finding]:
    """check_leakage on row hashes computed once (row_hashes, or tablehash for tables), so
    k folds or a streamed file are proved without hashing the rows again. `rows` maps each
    side's positions to the data rows the examples should name (else: positions); `files`
    names those rows' files. `vectors` (tables, flat vectors: the arrays `rows` index) adds
    the near-duplicate search of neardup_table.py; `timed`: the parts are cut in time;
    `stamps`: each side's copies.stamp_hashes (time split): only rows equal in inputs AND
    time (and series, when `series`) are copies; equal inputs at other times get an info
    (audit s13 F1)."""
    exact_b = member(hash_b, hash_a)  # once: the near search skips these (review s12 VD9)
    if stamps is None:
        findings = check_duplicates(hash_a, hash_b, names, rows=rows, files=files,
                                    timed=timed, in_a=exact_b)
    else:
        findings = _timed_copies(hash_b, exact_b, stamps, names, rows, files,
                                 grouped=series)
    near = ""
    if vectors is not None:
        from trainwise.data.neardup_table import check_near_rows, near_note

        found_near, searched = check_near_rows(*vectors, exact_b, names, rows)
        findings, near = findings + found_near, near_note(searched)
    notes = [f for f in findings if f.code == "inputs_repeat_over_time"]  # no leak: an aside
    findings = [f for f in findings if f.code != "inputs_repeat_over_time"]
    copies = "no exact duplicates" if stamps is None else "no rows equal in inputs and time"
    return conclude(findings, (len(hash_a), len(hash_b)), groups_a, groups_b, names, near,
                    copies) + notes


def _timed_copies(hash_b: np.ndarray, exact_b: np.ndarray,
                  stamps: tuple[np.ndarray, np.ndarray], names: tuple[str, str],
                  rows: tuple[np.ndarray, np.ndarray] | None, files: Sequence[str],
                  grouped: bool) -> list[Finding]:
    """Copies (same inputs and time) as check_duplicates judges them, and an info for the rest
    of b's rows whose inputs occur in a at other times."""
    from trainwise.data.copies import inputs_at_other_times

    same_b = member(stamps[1], stamps[0])  # (len b,) a stamped twin implies an input twin
    other = exact_b & ~same_b
    return (check_duplicates(*stamps, names, rows=rows, files=files, timed=True, in_a=same_b,
                             same="inputs and time" + (" (and series)" if grouped else ""))
            + inputs_at_other_times(int(other.sum()), len(hash_b),
                                    len(np.unique(hash_b[other])), names, grouped))


def conclude(findings: list[Finding], sizes: tuple[int, int], groups_a: np.ndarray | None,
             groups_b: np.ndarray | None, names: tuple[str, str], near: str = "",
             copies: str = "no exact duplicates") -> list[Finding]:
    """Add the group check to the duplicate findings; one info finding when all is clean,
    saying what was searched (`near`: the near-duplicate search, when one ran; `copies`:
    what the copy search found none of)."""
    check_groups = groups_a is not None and groups_b is not None
    if check_groups:
        findings = findings + _check_groups(groups_a, groups_b, names)
    if findings:
        return findings
    a, b = names
    checked = "rows and groups" if check_groups else "rows"
    searched = ", ".join([copies, *([near] if near else []),
                          *(["no shared groups"] if check_groups else [])])
    return [info("split", "no_leakage",
                 f"No leak between {a} and {b}: {sizes[0]} x {sizes[1]} {checked} "
                 f"checked, {searched}.",
                 **{f"num_rows_{a}": sizes[0], f"num_rows_{b}": sizes[1]},
                 groups_checked=check_groups, near_duplicates_checked=bool(near))]


def _edges(axis: np.ndarray, series: np.ndarray, how: str) -> pd.Series:
    return pd.Series(axis).groupby(series).agg(how)


def check_time_order(times_a: np.ndarray, times_b: np.ndarray, *,
                     series_a: np.ndarray | None = None, series_b: np.ndarray | None = None,
                     gap: str | float = "",
                     names: tuple[str, str] = ("train", "val")) -> list[Finding]:
    """Error when, within a series, a row of `a` is not earlier than every row of `b` by more
    than `gap`: the windows interleave and the model trains on its own future."""
    from trainwise.data.timesplit import format_time, parse_span, time_axis

    axis_a, axis_b = time_axis(times_a), time_axis(times_b)
    span = parse_span(gap, np.asarray(times_a))
    key_a = _as_keys(series_a) if series_a is not None else pd.Series(np.zeros(len(axis_a)))
    key_b = _as_keys(series_b) if series_b is not None else pd.Series(np.zeros(len(axis_b)))
    last_a = _edges(axis_a, key_a.to_numpy(), "max")
    first_b = _edges(axis_b, key_b.to_numpy(), "min").reindex(last_a.index)
    bad = (first_b - last_a <= span) & first_b.notna()
    a, b = names
    if not bad.any():
        where = (f" ({a} ends {format_time(last_a.max(), times_a)}, {b} starts "
                 f"{format_time(first_b.min(), times_a)})") if series_a is None else (
            f" within each of the {int(first_b.notna().sum())} series that have rows in both")
        return [info("split", "time_order", f"{a} ends before {b} starts{where}.",
                     num_series=int(bad.size))]
    late = key_b.map(last_a[bad]).to_numpy(np.float64) + span >= axis_b  # NaN: not bad: False
    examples = [f"{k}: {a} ends {format_time(last_a[k], times_a)}, {b} starts "
                f"{format_time(first_b[k], times_a)}" for k in list(bad[bad].index)[:NUM_EXAMPLES]]
    return [error(
        "split", "time_overlap",
        f"in {int(bad.sum())} series the {a} window reaches into the {b} window (gap "
        f"{gap or 0}); {int(late.sum())} {b} rows are not after the {a} period, e.g. "
        f"{'; '.join(examples)}.",
        "Split by time (split.strategy = \"time\" with split.time_column), per series via "
        "split.group_column, and keep split.gap at least the forecast horizon.",
        num_series=int(bad.sum()), num_rows=int(late.sum()), examples=examples)]


def check_group_starts(times_a: np.ndarray, times_b: np.ndarray, groups_a: np.ndarray,
                       groups_b: np.ndarray, *, gap: str | float = "",
                       names: tuple[str, str] = ("train", "val")) -> list[Finding]:
    """A whole-group time split (group_time) orders groups by their first time: error when a
    `b` group starts before an `a` group does (plus `gap`); otherwise an info that says how many
    `a` rows still come after `b` starts, since a group is never cut to end before it."""
    from trainwise.data.periods import TIME_SPLIT_FIX, UNSEEN_GROUPS, rows_after, shares
    from trainwise.data.timesplit import format_time, parse_span, time_axis

    span = parse_span(gap, np.asarray(times_a))
    axis_a, axis_b = time_axis(times_a), time_axis(times_b)
    starts_a = _edges(axis_a, _as_keys(groups_a).to_numpy(), "min")
    starts_b = _edges(axis_b, _as_keys(groups_b).to_numpy(), "min")
    last_a, first_b = starts_a.max(), starts_b.min()
    a, b = names
    dates = (f"{a} groups start by {format_time(last_a, times_a)}, {b} groups from "
             f"{format_time(first_b, times_a)}")
    if first_b - last_a < span:
        early = int((starts_b < last_a + span).sum())
        return [error(
            "split", "group_start_overlap",
            f"{early} {b} groups start before the last {a} group does (gap {gap or 0}): "
            f"{dates}, so {b} does not measure later groups.",
            "Split with split.strategy = \"group_time\" (or \"auto\") and both "
            "split.group_column and split.time_column set; then rerun the split stage.",
            num_groups=early)]
    later = rows_after(times_a, times_b)
    # panel data (every group spans the whole period): whole groups by start time leave most
    # training rows after validation begins, so validation says nothing about the future
    if not shares(later, len(axis_a)):  # rows_after's count, not counted again
        return [info("split", "group_start_order",
                     f"No {b} group starts before the last {a} group does ({dates}); groups "
                     f"stay whole, so {later} of {len(axis_a)} {a} rows are dated after {b} "
                     f"begins ({b} scores unseen groups).", num_rows_after=later, part=b)]
    return [warning(
        "split", "group_start_order",
        f"{b} holds the groups that start last, but {later} of {len(axis_a)} {a} rows are "
        f"dated after {b} begins ({dates}): the groups span the same period, so {b} "
        f"{UNSEEN_GROUPS}.",
        f"To {TIME_SPLIT_FIX} (each group's later rows validate); to score unseen groups, keep "
        "this split. Then rerun the split stage.", num_rows_after=later, part=b)]
