"""Near copies of an image that carry different labels: one of the two labels is wrong.

An exact copy filed under two classes is a conflicting_labels warning (duplicates.py); a
re-encoded, resized or mirrored copy under another class was called a leak that "inflates the
score" (audit s13 I5: 4 JPEG copies of c0 images filed in c3), and inside one part it was not
reported at all. Such pairs are labelling errors first: the model is trained or scored
against the wrong class of a picture it has, in effect, seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trainwise.data.pixels import MIN_CORRELATION, SIDE, pixel_correlation
from trainwise.findings import Finding, warning

if TYPE_CHECKING:
    from trainwise.data.neardup import _Pairs

MAX_SHARED = 50  # rows one pHash value may hold and still be searched within a part: a blank
# or placeholder image held by thousands of rows would expand to millions of pairs (a within-
# part search pairs a part with itself); those rows are the exact-duplicate and constant-image
# checks' to report. Measured on one core (MIH keys, as across parts; mirrored too): 50k
# random hashes against themselves in 0.4 s, 500k in 7.6 s: about N log N, as across parts
FIX = ("Open the example files (evidence: example_files): each pair is one picture under two "
       "classes; move the wrong one to the folder of its class, or delete it, and rerun from "
       "the data stage.")


def label_conflicts(pairs: _Pairs, labels: tuple[np.ndarray, np.ndarray],
                    correlation: np.ndarray) -> Finding:
    """One warning for confirmed near-copy pairs whose labels differ (`labels`: the class
    name of each row, on each side as `pairs` index them)."""
    a, b = pairs.names
    evidence, example, first = pairs.described()
    classes = [[str(labels[0][pairs.i[k]]), str(labels[1][pairs.j[k]])] for k in first]
    where = f"{b} images" if a == b else f"{b} images and {a} images"
    return warning(
        "split", "near_copy_labels",
        f"{evidence['num_pairs']} pairs of {where} are near copies of each other with "
        f"different labels (pHash within {pairs.max_distance} of 64 bits and pixels correlated "
        f">= {MIN_CORRELATION} at {SIDE}x{SIDE}"
        f"{'; ' + str(evidence['num_mirrored']) + ' mirrored' if evidence['num_mirrored'] else ''}"
        f"; labels e.g. {', '.join(' vs '.join(c) for c in classes[:2])}{example}): one label of "
        "each pair is wrong, so the model is taught or scored against the other class of a "
        "picture it has in effect seen.", FIX, **evidence, example_labels=classes,
        min_correlation=MIN_CORRELATION,
        correlations=[round(float(c), 4) for c in correlation[first]])


def within_part(hashes: np.ndarray, mirror: np.ndarray, rows: np.ndarray, name: str,
                images: np.ndarray, labels: np.ndarray, files: list[str]) -> list[Finding]:
    """Near copies with different labels among `rows` of one part (its images, labels, hashes
    and mirrored hashes given for every row); nothing when there are none."""
    from trainwise.data.neardup import MAX_DISTANCE, _hits, _Pairs

    values, inverse, counts = np.unique(hashes[rows], return_inverse=True, return_counts=True)
    rows = rows[counts[inverse.reshape(-1)] <= MAX_SHARED]
    i, j, distance, mirrored = _hits(hashes[rows], hashes[rows], MAX_DISTANCE, mirror[rows])
    i, j = rows[i], rows[j]
    keep = (i < j) & (labels[i] != labels[j])  # each pair once, an image never with itself
    if not keep.any():
        return []
    i, j, distance, mirrored = i[keep], j[keep], distance[keep], mirrored[keep]
    correlation = pixel_correlation(images, images, i, j, mirrored)
    confirmed = correlation >= MIN_CORRELATION
    if not confirmed.any():
        return []
    pairs = _Pairs(i, j, distance, (name, name), MAX_DISTANCE, (files, files), mirrored)
    return [label_conflicts(pairs.subset(confirmed), (labels, labels), correlation[confirmed])]
