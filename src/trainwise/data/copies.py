"""Exact copies kept on one side of a split: rows with one content hash split as one group.

Without this, trainwise's own row split scattered copies (a file saved twice in an image
folder, a row repeated by a join) over train, val and test, then stopped the run with a
cross_split_duplicates error whose fix an image-folder user could not follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainwise.findings import Finding, info

MAX_TIED_SHARE = 0.01  # a content held by more than 1% of the rows is >= 10% of a 10% val part:
# kept whole, it moves val's class shares by 10 points or more. Such contents are not copies of
# a file but coarse inputs (a table of a few categorical columns, a blank placeholder image);
# they are left to split as rows, and the split's duplicate check reports them
MIN_TIED = 5  # ... but a small set still ties a file and a few copies of it


@dataclass(frozen=True)
class Copies:
    """Which rows must stay together because they hold the same content."""

    codes: np.ndarray  # (N,) int64, 0..G-1: rows with one code go to one part
    num_rows: int  # rows whose content occurs 2..limit times (all of them, first copy too)
    num_contents: int  # distinct contents among those rows
    num_left: int  # contents held by more than `limit` rows: split as rows
    limit: int


def tie_limit(num_rows: int) -> int:
    """Most rows one content may hold and still be kept in one part by the split."""
    return max(MIN_TIED, int(MAX_TIED_SHARE * num_rows))


def find_copies(hashes: np.ndarray) -> Copies | None:
    """Copies among (N,) row hashes (TaskData.row_hashes), or None when no content repeats
    within the limit: then a split is the same as it was without this module."""
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    limit = tie_limit(len(hashes))
    tied = (counts > 1) & (counts <= limit)  # (C,) per distinct content
    if not tied.any():
        return None
    rank = np.cumsum(tied) - 1  # tied contents get codes 0..T-1 ...
    on_tied = tied[inverse]  # (N,)
    own = int(tied.sum()) + np.cumsum(~on_tied) - 1  # ... and every other row one of its own
    codes = np.where(on_tied, rank[inverse], own)
    return Copies(codes.astype(np.int64), int(on_tied.sum()), int(tied.sum()),
                  int((counts > limit).sum()), limit)


def _compact(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative codes below N -> 0..G-1 in value order, and G: a presence table, O(N)
    where np.unique sorts all N (1M rows: ~10 ms instead of ~100 ms)."""
    present = np.zeros(int(codes.max(initial=-1)) + 1, dtype=bool)
    present[codes] = True
    remap = np.cumsum(present) - 1
    return remap[codes].astype(np.int64), int(present.sum())


def tie_codes(ties: np.ndarray | None, num_parts: int = 2) -> np.ndarray | None:
    """Ties of some rows as codes 0..G-1, or None when no two of these rows share one (the
    split is then drawn exactly as without ties) or there are fewer groups than parts."""
    if ties is None:
        return None
    codes, num_codes = _compact(np.asarray(ties).reshape(-1))
    if num_codes == len(codes) or num_codes < num_parts:
        return None
    return codes


def join(groups: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Group codes (N,) joined through the ties (N,): the connected components of rows linked
    by a shared group or a shared content, as codes 0..G-1. A copy in two groups joins them,
    so keeping every group whole also keeps every content whole. Only rows whose tie code
    repeats are edges: 1M rows with 2,000 copies join in ~0.1 s, not ~1.5 s for all rows."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    groups, ties = np.asarray(groups).reshape(-1), np.asarray(ties).reshape(-1)
    num_groups = int(groups.max()) + 1
    copied = np.flatnonzero(np.bincount(ties)[ties] > 1)
    if len(copied) == 0:
        return groups
    content, num_contents = _compact(ties[copied])
    size = num_groups + num_contents  # a node per group and per copied content
    edges = coo_matrix((np.ones(len(copied), dtype=np.int8),
                        (groups[copied], num_groups + content)), shape=(size, size))
    _, labels = connected_components(edges, directed=False)
    return _compact(labels[:num_groups])[0][groups]


def copies_findings(copies: Copies | None, timed: bool,
                    groups: np.ndarray | None = None) -> list[Finding]:
    """An info saying how many copies the split kept together (or, for a time split, why it
    did not), and which contents were too common to keep whole."""
    if copies is None:
        return []
    counts = f"{copies.num_rows} rows have the same inputs as another row " \
             f"({copies.num_contents} distinct inputs)"
    left = (f" {copies.num_left} inputs held by more than {copies.limit} rows each were "
            "split as rows (kept whole they would skew the parts' class shares); the duplicate "
            "check reports any that straddle the parts." if copies.num_left else "")
    evidence = {"num_rows": copies.num_rows, "num_contents": copies.num_contents,
                "num_left": copies.num_left, "limit": copies.limit}
    if timed:
        return [info("split", "copies_not_kept_together",
                     f"{counts}: a time split places each row by its time, so they are not "
                     "moved to keep them together. At other times they are readings, not "
                     "copies (inputs_repeat_over_time counts those across parts); rows equal "
                     "in inputs and time too are copies, which the duplicate check reports. "
                     "To drop such copies, see the data stage's duplicate_samples."
                     + left, **evidence)]
    joined = ""
    if groups is not None:
        codes = pd.factorize(np.asarray(groups).reshape(-1))[0]
        before, after = int(codes.max()) + 1, int(join(codes, copies.codes).max()) + 1
        joined = (f" Copies in different groups joined them: {before} groups became {after} "
                  "(each kept whole)." if after < before else "")
        evidence.update(num_groups=before, num_joined_groups=after)
    return [info("split", "copies_kept_together",
                 f"{counts}: the split kept the rows of each input in one of the parts it "
                 f"drew, so none is scored on inputs it trained on.{joined}{left} "
                 "Exact copies still weigh "
                 "more in training: drop them (the data stage's duplicate_samples lists them) "
                 "if that is not meant.", **evidence)]


def stamp_hashes(hashes: np.ndarray, times: np.ndarray,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """(N,) hashes of each row's inputs AND time (AND group, when given). In time-ordered data
    equal inputs at another time are a new reading, not a copy: audit s13 F1's 10 stores x 728
    days of integer sales repeat (promo, sales) in 82% of validation rows, each with its own
    next-day target; only rows equal in inputs, time and series are the same record twice."""
    from trainwise.data.leakage import normalise_rows, row_hashes
    from trainwise.data.timesplit import time_axis

    axis = normalise_rows(time_axis(times).reshape(-1, 1))  # int64 ns or float64: 8 bytes
    columns = [np.asarray(hashes, dtype=np.uint64), axis.view(np.uint64).reshape(-1)]
    if groups is not None:
        columns.append(pd.factorize(np.asarray(groups).reshape(-1))[0].astype(np.uint64))
    return row_hashes(np.column_stack(columns))


def inputs_at_other_times(num_rows: int, num_b: int, num_distinct: int,
                          names: tuple[str, str], grouped: bool) -> list[Finding]:
    """An info: under a time split, `num_rows` of the later part's `num_b` rows have the inputs
    of `a`'s rows, but at other times (or of other series): no leak, since the model never
    saw b's targets; only coarse inputs. Not "later": under group_time the held-out groups
    may span the training period (review s13 VD2)."""
    from trainwise.data.leakage import MAX_COPY_SHARE

    if num_rows == 0:
        return []
    a, b = names
    share = num_rows / max(num_b, 1)
    where = "other times or other series" if grouped else "other times"
    coarse = (" Inputs that repeat this often tell rows apart poorly: if the model underfits, "
              "add features that separate them (lags, calendar fields)."
              if share > MAX_COPY_SHARE else "")
    return [info("split", "inputs_repeat_over_time",
                 f"{num_rows} {b} rows have the same inputs as {a} rows at {where} ({num_rows} "
                 f"of {num_b}, {share:.1%}; {num_distinct} distinct inputs): in a time split "
                 f"that is no leak, since training never saw these {b} rows' targets. Keep "
                 f"the time split.{coarse}",
                 **{f"num_rows_{b}": num_rows, f"share_{b}": round(share, 4),
                    "num_distinct": num_distinct})]
