"""Exact duplicates and conflicting labels within the data, from one sort of the row hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trainwise.data.copies import tie_limit
from trainwise.data.leakage import NUM_EXAMPLES, member
from trainwise.data.naming import name_files, named_pairs
from trainwise.findings import Finding, warning


def _duplicates(row_hash: np.ndarray, ordered: np.ndarray, repeat: np.ndarray,
                order: np.ndarray) -> dict[str, Any]:
    starts = np.flatnonzero(np.r_[True, ~repeat])  # sorted position where each content starts
    sizes = np.diff(np.r_[starts, len(order)])
    limit = tie_limit(len(order))  # the split keeps contents up to this size in one part
    copied = np.repeat(sizes > 1, sizes)  # (N,) sorted positions of contents seen 2+ times
    later = np.zeros(len(order), dtype=bool)
    later[order[copied]] = True
    later[np.minimum.reduceat(order, starts)[sizes > 1]] = False  # each content's first row
    later = np.flatnonzero(later)  # rows whose content occurred at a smaller index
    examples = [[int(np.argmax(row_hash == row_hash[j])), int(j)] for j in later[:NUM_EXAMPLES]]
    return {"count": int(len(later)), "num_groups": int((sizes > 1).sum()), "examples": examples,
            "num_too_common": int((sizes > limit).sum()),
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


def duplicate_findings(row_hash: np.ndarray, y: np.ndarray, task: str,
                       runs: tuple | None = None, files: Sequence[str] = (),
                       source_rows: np.ndarray | None = None) -> tuple[list[Finding], dict]:
    """Duplicates and conflicting labels from (N,) row hashes (row_hashes or tablehash);
    `files` (one per row: image folders) names the example rows' files; without files,
    `source_rows` (TaskData.source_rows) turns the example rows into rows of the source file.

    By sorting the hashes once (10M rows: ~1.5 s); pandas duplicated + groupby.nunique
    took ~10 s and ~1 GB there. `runs` (sorted_runs) can be passed in to share that sort."""
    if len(row_hash) < 2:
        return [], {"duplicates": {"count": 0, "num_groups": 0, "examples": []},
                    "conflicts": {"count": 0, "num_rows": 0, "examples": []}}
    order, ordered, repeat = runs if runs is not None else sorted_runs(row_hash)
    dup = _duplicates(row_hash, ordered, repeat, order)
    no_conflicts: dict[str, Any] = {"count": 0, "num_rows": 0, "examples": []}
    conflicts = no_conflicts
    if task == "classification" and dup["count"]:
        conflicts = _conflicts(row_hash, ordered, repeat, np.asarray(y)[order])
    if source_rows is not None and not len(files):  # files name the rows themselves
        dup, conflicts = _in_source(dup, source_rows), _in_source(conflicts, source_rows)
    findings: list[Finding] = []
    if dup["count"]:
        findings.append(_duplicate_warning(dup, files))
    if conflicts["count"]:
        findings.append(_conflict_warning(conflicts, files))
    return findings, {"duplicates": dup, "conflicts": conflicts}


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
        f"{dup['count']} rows repeat an earlier row exactly ({dup['num_groups']} distinct "
        f"contents{named_pairs(files, dup['examples'])}): copies weigh more in training, and "
        "a copy on both sides of a split inflates the score.",
        f"{_split_promise(dup)} Deduplicate (keep one row per content"
        + ("; delete the copied files" if files else "") + ") if copies should not weigh "
        "more" + (", or to let the split go on." if dup["num_too_common"] else "."),
        **dup, **named)


def _split_promise(dup: dict[str, Any]) -> str:
    """What the split does with the copies: keeps each content in one part, except contents
    too common to keep whole (copies.tie_limit), which it splits as rows and then stops on."""
    kept = ("`trainwise split` keeps each content's copies in one part (time splits excepted: "
            "see the split stage)")
    many = dup["num_too_common"]
    if not many:
        return kept + "."
    which = f"the {many} contents" if many > 1 else "the one content"
    common = (f"{which} held by more than {dup['tie_limit']} rows{' each' if many > 1 else ''} "
              f"({dup['rows_too_common']} rows)")
    start = (f"`trainwise split` cannot keep these copies in one part: {common} are too common"
             if many == dup["num_groups"] else f"{kept}, except {common}")
    return (f"{start}: kept whole, one would skew a part's class shares, so they are split as "
            "rows, land on both sides, and the split stage stops on them. Such common contents "
            "are coarse inputs rather than copies: add the features that tell those rows "
            "apart, or declare a group key that keeps related rows together "
            "(split.group_column), then rerun from the data stage.")


def _conflict_warning(conflicts: dict[str, Any], files: Sequence[str]) -> Finding:
    groups = conflicts.get("example_groups", [])
    named = {"example_files": name_files(files, groups)} if files else {}
    fix = ("Open the example files (evidence: example_files): move each to the folder of its "
           "class, or delete the copy with the wrong label." if files else
           "Inspect the example rows; fix the labels, or drop the ambiguous rows.")
    return warning(
        "data", "conflicting_labels",
        f"{conflicts['count']} inputs occur with different labels ({conflicts['num_rows']} "
        f"rows{named_pairs(files, groups)}): no model can get all of them right.", fix,
        **conflicts, **named)
