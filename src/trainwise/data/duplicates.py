"""Exact copies, conflicting labels and shared inputs within the data, from one sort of the
input hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trainwise.data.copies import tie_limit
from trainwise.data.leakage import NUM_EXAMPLES, member, normalise_rows, row_hashes
from trainwise.data.naming import name_files, named_pairs
from trainwise.findings import Finding, info, warning


def _repeats(key: np.ndarray, runs: tuple[np.ndarray, np.ndarray, np.ndarray],
             rows: np.ndarray | None = None) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Rows whose `key` occurred at an earlier row: counts, example [first, later] pairs (as
    `rows`[i] when `key` holds a subset of the rows), the later rows and each content's size."""
    order, _, repeat = runs
    starts = np.flatnonzero(np.r_[True, ~repeat])  # sorted position where each content starts
    sizes = np.diff(np.r_[starts, len(order)])
    copied = np.repeat(sizes > 1, sizes)  # (N,) sorted positions of contents seen 2+ times
    later = np.zeros(len(order), dtype=bool)
    later[order[copied]] = True
    later[np.minimum.reduceat(order, starts)[sizes > 1]] = False  # each content's first row
    later = np.flatnonzero(later)  # positions whose content occurred at a smaller position
    rows = np.arange(len(key)) if rows is None else rows
    examples = [[int(rows[np.argmax(key == key[j])]), int(rows[j])]
                for j in later[:NUM_EXAMPLES]]
    return ({"count": int(len(later)), "num_groups": int((sizes > 1).sum()),
             "examples": examples}, rows[later], sizes)


def _with_target(row_hash: np.ndarray, y: np.ndarray, rows: np.ndarray,
                 key_hash: np.ndarray | None = None) -> np.ndarray:
    """(M,) hashes of the inputs AND target of `rows` (AND their time and series, `key_hash`,
    when known): equal only for exact copies. Only rows whose inputs repeat are hashed again
    (a row with unique inputs copies nothing)."""
    target = normalise_rows(np.asarray(y).reshape(len(row_hash), -1)[rows], np.dtype(np.float64))
    keys = [] if key_hash is None else [np.asarray(key_hash, dtype=np.uint64)[rows]]
    return row_hashes(np.column_stack([row_hash[rows], *keys, target.view(np.uint64)]))


def _shared_inputs(row_hash: np.ndarray, input_later: np.ndarray,
                   exact_later: np.ndarray) -> dict[str, Any]:
    """Rows whose inputs occurred at an earlier row, but not with their target."""
    later = np.setdiff1d(input_later, exact_later)  # sorted row numbers
    examples = [[int(np.argmax(row_hash == row_hash[j])), int(j)] for j in later[:NUM_EXAMPLES]]
    return {"count": int(len(later)), "num_groups": int(len(np.unique(row_hash[later]))),
            "examples": examples}


def _too_common(sizes: np.ndarray, num_rows: int) -> dict[str, Any]:
    """Input contents the split will not keep in one part (copies.find_copies counts the same
    on the same input hashes): more rows than copies.tie_limit."""
    limit = tie_limit(num_rows)
    return {"num_too_common": int((sizes > limit).sum()),
            "rows_too_common": int(sizes[sizes > limit].sum()), "tie_limit": limit}


def _conflicts(row_hash: np.ndarray, ordered: np.ndarray, repeat: np.ndarray,
               labels: np.ndarray) -> dict[str, Any]:
    bad = np.unique(ordered[1:][repeat & (labels[1:] != labels[:-1])])
    rows = np.flatnonzero(member(row_hash, bad, pool_sorted=True))
    # `examples` lists rows of several contents in row order; each content's rows together
    shown = list(dict.fromkeys(row_hash[rows[:2 * NUM_EXAMPLES]].tolist()))[:NUM_EXAMPLES]
    return {"count": int(len(bad)), "num_rows": int(len(rows)),
            "examples": [int(i) for i in rows[:2 * NUM_EXAMPLES]],
            "example_groups": [np.flatnonzero(row_hash == h).tolist() for h in shown]}


def sorted_runs(row_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, row_hash[order], repeat): repeat[i] says sorted position i + 1 repeats i."""
    order = np.argsort(row_hash)
    ordered = row_hash[order]
    return order, ordered, ordered[1:] == ordered[:-1]


def repeated_rows(runs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """(N,) bool: rows whose content occurs 2+ times. Only these can be copied across a split."""
    order, _, repeat = runs
    mask = np.zeros(len(order), dtype=bool)
    mask[order[1:][repeat]] = True
    mask[order[:-1][repeat]] = True
    return mask


NO_REPEATS: dict[str, Any] = {"count": 0, "num_groups": 0, "examples": []}


def duplicate_findings(row_hash: np.ndarray, y: np.ndarray, task: str,
                       runs: tuple | None = None, files: Sequence[str] = (),
                       source_rows: np.ndarray | None = None,
                       key_hash: np.ndarray | None = None) -> tuple[list[Finding], dict]:
    """Exact copies (inputs and target equal), conflicting labels (classification: equal
    inputs, other label) and shared inputs (regression: equal inputs, other target) from (N,)
    input hashes (row_hashes or tablehash); `files` (one per row: image folders) names the
    example rows' files; without files, `source_rows` (TaskData.source_rows) turns the example
    rows into rows of the source file.

    By sorting the hashes once (10M rows: ~1.5 s); pandas duplicated + groupby.nunique
    took ~10 s and ~1 GB there. `runs` (sorted_runs) can be passed in to share that sort.
    Equal inputs alone are no copy: a table of a few coarse columns (bedrooms, garage, year)
    repeats its inputs in most rows while every sale has its own price. `key_hash` (N,): each
    row's time and series (copies.stamp_hashes), when a time key is known: rows equal in inputs
    and target at another time are readings, not copies (audit s13 F1: 1482 of 7280 store-days
    of integer sales were called copies)."""
    if len(row_hash) < 2:
        return [], {"duplicates": dict(NO_REPEATS), "conflicts": {**NO_REPEATS, "num_rows": 0},
                    "shared_inputs": dict(NO_REPEATS)}
    runs = runs if runs is not None else sorted_runs(row_hash)
    inputs, input_later, sizes = _repeats(row_hash, runs)
    split = {**_too_common(sizes, len(row_hash)), "num_input_groups": inputs["num_groups"]}
    exact, exact_later = dict(NO_REPEATS), np.zeros(0, dtype=np.int64)
    if inputs["count"]:
        rows = np.flatnonzero(repeated_rows(runs))
        content = _with_target(row_hash, y, rows, key_hash)
        exact, exact_later, _ = _repeats(content, sorted_runs(content), rows)
    conflicts: dict[str, Any] = {**NO_REPEATS, "num_rows": 0}
    shared = dict(NO_REPEATS)
    if task == "classification" and inputs["count"]:
        order, ordered, repeat = runs
        conflicts = _conflicts(row_hash, ordered, repeat, np.asarray(y).reshape(-1)[order])
    elif inputs["count"]:
        shared = _shared_inputs(row_hash, input_later, exact_later)
    dup = {**exact, **split}
    if source_rows is not None and not len(files):  # files name the rows themselves
        dup, conflicts, shared = (_in_source(stats, source_rows)
                                  for stats in (dup, conflicts, shared))
    findings: list[Finding] = []
    if dup["count"]:
        findings.append(_duplicate_warning(dup, files))
    if conflicts["count"]:
        findings.append(_conflict_warning(conflicts, files, None if dup["count"] else split))
    if shared["count"]:
        findings.append(_shared_inputs_finding(shared, split, key_hash is not None))
    return findings, {"duplicates": dup, "conflicts": conflicts, "shared_inputs": shared}


def _in_source(stats: dict[str, Any], source_rows: np.ndarray) -> dict[str, Any]:
    """`stats` with its example rows (lists of positions, or of lists) as source rows."""
    def mapped(rows: Any) -> Any:
        return [mapped(r) for r in rows] if isinstance(rows, list) else int(source_rows[rows])

    return {**stats, **{k: mapped(stats[k]) for k in ("examples", "example_groups")
                        if k in stats}}


def _duplicate_warning(dup: dict[str, Any], files: Sequence[str]) -> Finding:
    named = {"example_files": name_files(files, dup["examples"])} if files else {}
    return warning(
        "data", "duplicate_samples",
        f"{dup['count']} rows repeat an earlier row exactly, inputs and target "
        f"({dup['num_groups']} distinct rows{named_pairs(files, dup['examples'])}): copies "
        "weigh more in training, and a copy on both sides of a split inflates the score.",
        f"{_split_promise(dup)} Deduplicate (keep one row per content"
        + ("; delete the copied files" if files else "") + ") if copies should not weigh "
        "more" + (", or to let the split go on." if dup["num_too_common"] else "."),
        **dup, **named)


def _shared_inputs_finding(shared: dict[str, Any], split: dict[str, Any],
                           timed: bool = False) -> Finding:
    """An info: coarse inputs are no fault. A warning only when some inputs are too common
    for the split to keep together, since the split stage then stops on them. `timed`: rows
    differ in time or series (or target), so they are readings, not copies."""
    differ = ("at another time or in another series (or with another target): readings, not "
              "copies, as" if timed else "but their targets differ:")
    message = (f"{shared['count']} rows share their inputs with an earlier row "
               f"({shared['num_groups']} distinct inputs), {differ} expected "
               "for coarse features (few columns with few values each). No model can tell "
               "these rows apart, so their spread bounds the error any model can reach.")
    evidence = {**shared, **split}
    if not split["num_too_common"]:
        return info("data", "shared_inputs", f"{message} {_split_promise(split)}", **evidence)
    return warning("data", "shared_inputs", message, _split_promise(split), **evidence)


def _split_promise(split: dict[str, Any]) -> str:
    """What the split does with rows of equal inputs: keeps each set in one part, except sets
    too common to keep whole (copies.tie_limit), which it splits as rows and then stops on."""
    kept = ("`trainwise split` keeps rows with the same inputs in one part (time splits "
            "excepted: see the split stage)")
    many = split["num_too_common"]
    if not many:
        return kept + "."
    which = f"the {many} inputs" if many > 1 else "the one input"
    common = (f"{which} held by more than {split['tie_limit']} rows{' each' if many > 1 else ''}"
              f" ({split['rows_too_common']} rows)")
    start = (f"`trainwise split` cannot keep these rows in one part: {common} are too common"
             if many == split["num_input_groups"] else f"{kept}, except {common}")
    return (f"{start}: kept whole, one would skew a part's class shares, so they are split as "
            "rows, land on both sides, and the split stage stops on them. Such common inputs "
            "are coarse features rather than copies: add the features that tell those rows "
            "apart, or declare a group key that keeps related rows together "
            "(split.group_column), then rerun from the data stage.")


def _conflict_warning(conflicts: dict[str, Any], files: Sequence[str],
                      split: dict[str, Any] | None = None) -> Finding:
    groups = conflicts.get("example_groups", [])
    named = {"example_files": name_files(files, groups)} if files else {}
    fix = ("Open the example files (evidence: example_files): move each to the folder of its "
           "class, or delete the copy with the wrong label." if files else
           "Inspect the example rows; fix the labels, or drop the ambiguous rows.")
    if split and split["num_too_common"]:  # no duplicate warning says it: the split stops
        fix += " " + _split_promise(split)
    return warning(
        "data", "conflicting_labels",
        f"{conflicts['count']} inputs occur with different labels ({conflicts['num_rows']} "
        f"rows{named_pairs(files, groups)}): no model can get all of them right.", fix,
        **conflicts, **named)


def key_clash_findings(key_hash: np.ndarray, row_hash: np.ndarray, y: np.ndarray,
                       key_names: str, source_rows: np.ndarray | None = None) -> list[Finding]:
    """A warning when one (series, time) key holds rows that differ in inputs or target: one
    series has one reading per time, so two are double logging, a clock too coarse for the
    data, or a merge gone wrong (audit s13 F13: 100 sensor readings appended with temp + 0.1
    at an existing (machine_id, timestamp), and no finding said so). Exact copies of a row
    are duplicate_samples' to report."""
    runs = sorted_runs(key_hash)  # one sort, no groupby-nunique (review s13 VD11)
    rows = np.flatnonzero(repeated_rows(runs))  # keys held by 2+ rows: only these hashed
    if not len(rows):
        return []
    content = np.zeros(len(key_hash), dtype=np.uint64)  # a single key's row clashes with none
    content[rows] = _with_target(row_hash, y, rows)
    # a clash is a key run holding two contents, as a label conflict is an input run holding
    # two labels (_conflicts)
    order, ordered, repeat = runs
    clash = _conflicts(key_hash, ordered, repeat, content[order])
    if not clash["count"]:
        return []
    groups = clash["example_groups"]
    stats = _in_source({"examples": groups}, source_rows) if source_rows is not None else \
        {"examples": groups}
    num_keys = clash["count"]
    shown = "; ".join(f"rows {', '.join(map(str, g))}" for g in stats["examples"][:3])
    return [warning(
        "data", "repeated_key_rows",
        f"{num_keys} {key_names} pairs hold two or more different rows "
        f"({clash['num_rows']} rows, "
        f"e.g. {shown}): one series has one reading per time, so these are the same reading "
        "logged twice with other values, a clock too coarse for the data, or a merge gone "
        "wrong: the model trains on, or is scored on, two values for one reading.",
        f"Inspect the example rows. If they are one reading logged twice, keep one row per "
        f"{key_names} (df.drop_duplicates(subset=[...])); if the clock is too coarse, add the "
        "finer time; if the group column does not name one series, set split.group_column to "
        "the one that does. Then rerun from the data stage.",
        num_keys=num_keys, num_rows=clash["num_rows"], example_groups=stats["examples"])]
