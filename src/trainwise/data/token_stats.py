"""Look first, for token ids (METHOD.md 1.1): how long the rows are, which ids are common,
and which id sets a class apart; the findings an audit of texts should raise.

A position of an (N, T) id array is no feature, so the per-feature checks say nothing here.
What does: empty rows (all padding: nothing to classify), rows cut at T (known when trainwise
tokenised the text, else guessed from the rows that fill all T positions), and a single id
that nearly always means one class: a label word left in the text, a template line one
source adds, or an honest keyword; worth a look either way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trainwise.data.neardup_tokens import token_bags
from trainwise.findings import Finding, info, warning

MAX_ROWS = 200_000  # rows counted per id: a fixed random subset beyond, counts scale the same
SHORTCUT_PURITY = 0.98  # of the rows holding the id, this share is in one class
SHORTCUT_COVERAGE = 0.5  # and the id is in at least half of that class's rows
SHORTCUT_MIN_ROWS = 20  # fewer rows: a pure id can be chance
NUM_SHOWN = 5
MIN_GAP = 0.02  # share in the class minus share elsewhere: below, chance over a big vocabulary
MIN_GROUP_ROWS = 5  # rows of the class holding the id: fewer is an anecdote


def row_lengths(ids: np.ndarray) -> np.ndarray:
    """(N, T) -> (N,) non-padding ids per row."""
    return (np.asarray(ids) != 0).sum(axis=1)


def padding_side(ids: np.ndarray) -> str:
    """"end", "start" or "both ends / inside": where the 0s of the padded rows sit."""
    ids = np.asarray(ids)
    padded = ids[(ids == 0).any(1) & (ids != 0).any(1)]
    if len(padded) == 0:
        return "none"
    if bool((padded[:, -1] == 0).all()):
        return "end"
    return "start" if bool((padded[:, 0] == 0).all()) else "both ends / inside"


def counted_rows(num_rows: int) -> np.ndarray:
    """Row indices the id statistics are counted on: every row, or a fixed random MAX_ROWS."""
    if num_rows <= MAX_ROWS:
        return np.arange(num_rows)
    return np.sort(np.random.default_rng(0).choice(num_rows, MAX_ROWS, replace=False))


def rows_holding(ids: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(G, V) rows of each group that hold each id at least once, and (V,) over all rows."""
    bags = token_bags(ids)
    member = sp.csr_matrix((np.ones(sum(len(g) for g in groups), np.float32),
                            (np.repeat(np.arange(len(groups)), [len(g) for g in groups]),
                             np.concatenate(groups) if groups else np.zeros(0, int))),
                           shape=(len(groups), len(ids)))
    per_group = np.asarray((member @ bags).todense())
    return per_group, np.asarray(bags.sum(axis=0)).ravel()


def over_represented(per_group: np.ndarray, overall: np.ndarray, sizes: np.ndarray,
                     group: int, count: int) -> list[tuple[int, float, float, float]]:
    """(id, share of the group's rows holding it, share of the other rows, share of the rows
    holding it that are in the group), the `count` ids whose share in the group most exceeds
    their share elsewhere: frequent and specific, not a rare id seen twice (ids below MIN_GAP
    or in fewer than MIN_GROUP_ROWS of the group's rows are left out: none may be left)."""
    inside = per_group[group] / max(sizes[group], 1)
    others = (overall - per_group[group]) / max(sizes.sum() - sizes[group], 1)
    gap = inside - others
    best = [int(k) for k in np.argsort(-gap, kind="stable")[:count]
            if gap[k] >= MIN_GAP and per_group[group, k] >= MIN_GROUP_ROWS and k != 0]
    return [(k, float(inside[k]), float(others[k]), float(per_group[group, k] / overall[k]))
            for k in best]


def _shortcuts(ids: np.ndarray, y: np.ndarray, class_names: list[str]) -> list[str]:
    """'id 7 in 96% of class 'spam' rows, 99% of its rows spam' for each near-pure id."""
    rows = counted_rows(len(ids))
    labels = np.unique(y)
    groups = [np.flatnonzero(y[rows] == c) for c in labels]
    per_group, overall = rows_holding(ids[rows], groups)
    sizes = np.array([len(g) for g in groups])
    found = []
    for g, label in enumerate(labels):
        name = class_names[int(label)] if int(label) < len(class_names) else str(label)
        for k, inside, _, purity in over_represented(per_group, overall, sizes, g, 3):
            if (purity >= SHORTCUT_PURITY and inside >= SHORTCUT_COVERAGE
                    and overall[k] >= SHORTCUT_MIN_ROWS):
                found.append(f"id {k} is in {inside:.0%} of class '{name}' rows, and "
                             f"{purity:.0%} of the rows holding it are '{name}'")
    return found


def length_summary(ids: np.ndarray) -> dict:
    lengths = row_lengths(ids)
    width = np.shape(ids)[1]
    return {"min_length": int(lengths.min()) if len(lengths) else 0, "median_length":
            float(np.median(lengths)) if len(lengths) else 0.0,
            "max_length": int(lengths.max(initial=0)), "width": int(width),
            "num_empty": int((lengths == 0).sum()), "num_full": int((lengths == width).sum()),
            "padding": padding_side(ids), "num_ids": int(len(np.unique(ids[ids != 0])))}


def full_rows(s: dict, num_rows: int, cut_share: float | None) -> str:
    """How many rows reach T and were cut there: known when trainwise tokenised the text
    itself (`cut_share`, tokenise.py's), else guessed from the rows that fill all T (a row
    exactly T long fills them too, so only "probably")."""
    width, num_full = s["width"], s["num_full"]
    if cut_share is not None:
        num_cut = int(round(cut_share * num_rows))
        exact = num_full - num_cut
        also = f"; {exact} more are exactly {width} words long, not cut" if exact > 0 else ""
        rows = "1 row" if num_cut == 1 else f"{num_cut} rows"
        were = "was" if num_cut == 1 else "were"
        return (f"{rows} ({cut_share:.1%}) {were} longer than T = {width} words and cut "
                f"there when trainwise tokenised the text, their ends lost (a larger T keeps "
                f"them, if the ends matter){also}") if num_cut else \
            f"no row was cut at T = {width} when trainwise tokenised the text"
    return (f"{num_full} rows ({num_full / max(num_rows, 1):.0%}) fill all {width} "
            "positions: probably cut at T, their ends lost (a larger T keeps them, if the "
            "ends matter)") if num_full else \
        f"no row fills all {width} positions (none cut at T)"


def token_findings(ids: np.ndarray, y: np.ndarray, task: str, class_names: list[str],
                   cut_share: float | None = None) -> list[Finding]:
    """Row lengths (info), empty rows (warning) and ids that nearly give the class away;
    `cut_share`: the share of rows trainwise's own tokeniser cut at T (None for a user's ids)."""
    ids = np.asarray(ids)
    s = length_summary(ids)
    full = full_rows(s, len(ids), cut_share)
    empty = f"{s['num_empty']} rows are empty" if s["num_empty"] else "no row is empty"
    # positions no row reaches are padding everywhere: no constant feature to drop (an
    # embedding model reads positions, not features), only a T longer than needed
    unused = s["width"] - s["max_length"]
    first_or_last = "first" if s["padding"] == "start" else "last"
    spare = (f"; the {first_or_last} {unused} positions are padding in every row (nothing to fix; "
             "padding only to the longest row would make each batch cheaper)") if unused else ""
    findings = [info(
        "data", "token_lengths",
        f"rows hold {s['min_length']} to {s['max_length']} tokens (median "
        f"{s['median_length']:g}) of T = {s['width']}, padded at the {s['padding']}, over "
        f"{s['num_ids']} distinct ids; {full}; {empty}{spare}.", **s,
        cut_share=None if cut_share is None else round(cut_share, 4))]
    if s["num_empty"]:
        empty = np.flatnonzero(row_lengths(ids) == 0)
        findings.append(warning(
            "data", "empty_rows",
            f"{s['num_empty']} rows hold only padding (0), no token (e.g. rows "
            f"{', '.join(map(str, empty[:NUM_SHOWN].tolist()))}): they cannot be classified, "
            "since every one of them is the same empty input whatever its label.",
            "Find why tokenising gave nothing (empty texts, or words mapped to id 0, which is "
            "padding: real ids start at 1); fix or drop those rows.",
            num_rows=s["num_empty"], rows=empty[:NUM_SHOWN].tolist()))
    shortcuts = _shortcuts(ids, np.asarray(y), class_names) if task == "classification" \
        else []
    if shortcuts:
        findings.append(warning(
            "data", "token_shortcut",
            f"a single token nearly gives the class away: {'; '.join(shortcuts[:NUM_SHOWN])}. "
            "A model can score well by spotting it alone: it may be a real keyword, or a "
            "leak (the label word left in the text, a header or template only one source "
            "adds).",
            "Decode those ids with your vocabulary and read a few rows that hold them; if the "
            "token would not be there when the model is used, remove it from the texts.",
            shortcuts=shortcuts[:NUM_SHOWN]))
    return findings
