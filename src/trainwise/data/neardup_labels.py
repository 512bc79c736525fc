"""Near copies of an image that carry different labels: one of the two labels is wrong.

An exact copy filed under two classes is a conflicting_labels warning (duplicates.py); a
re-encoded, resized or mirrored copy under another class was called a leak that "inflates the
score" (audit s13 I5: 4 JPEG copies of c0 images filed in c3), and inside one part it was not
reported at all. Such pairs are labelling errors first: the model is trained or scored
against the wrong class of a picture it has, in effect, seen. Except mirror images: left and
right arrows, b and d, left and right hands are mirrored copies under two classes by design,
so those pairs are searched only when training flips, and are then a warning that the flip
turns one class into the other (review s13 VD3), never a wrong label.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from trainwise.data.pixels import MIN_CORRELATION, SIDE, pixel_correlation
from trainwise.findings import Finding, warning

if TYPE_CHECKING:
    from trainwise.data.neardup import _Pairs

MAX_SHARED = 50  # rows one pHash value may hold and still be searched within the pool: a blank
# or placeholder image held by thousands of rows would expand to millions of pairs (the pool
# search pairs the pool with itself); those rows are the exact-duplicate and constant-image
# checks' to report. Measured on one core (MIH keys, as across parts; mirrored too): 50k
# random hashes against themselves in 0.4 s, 500k in 7.6 s: about N log N, as across parts
PART_ORDER = ("train", "val", "train+val", "test", "no part")
FIX = ("Open the example files (evidence: example_files): each pair is one picture under two "
       "classes; move the wrong one to the folder of its class, or delete it, and rerun from "
       "the data stage.")


def label_conflicts(pairs: _Pairs, labels: tuple[np.ndarray, np.ndarray],
                    correlation: np.ndarray, by_part: dict[str, int] | None = None) -> Finding:
    """One warning for confirmed near-copy pairs whose labels differ (`labels`: the class
    name of each row, on each side as `pairs` index them); `by_part`: pairs per part or pair
    of parts, when one search covered them all."""
    a, b = pairs.names
    evidence, example, first = pairs.described()
    classes = [[str(labels[0][pairs.i[k]]), str(labels[1][pairs.j[k]])] for k in first]
    where = (f"{b} images" if a == b else f"{b} images and {a} images").strip()
    if by_part:
        where += " (" + ", ".join(f"{n} {part}" for part, n in by_part.items()) + ")"
    return warning(
        "split", "near_copy_labels",
        f"{evidence['num_pairs']} pairs of {where} are near copies of each other with "
        f"different labels (pHash within {pairs.max_distance} of 64 bits and pixels correlated "
        f">= {MIN_CORRELATION} at {SIDE}x{SIDE}; labels e.g. "
        f"{', '.join(' vs '.join(c) for c in classes[:2])}{example}): one label of "
        "each pair is wrong, so the model is taught or scored against the other class of a "
        "picture it has in effect seen.", FIX, **evidence, example_labels=classes,
        min_correlation=MIN_CORRELATION, num_pairs_by_part=by_part or {},
        correlations=[round(float(c), 4) for c in correlation[first]])


def mirrored_classes(pairs: _Pairs, labels: np.ndarray, correlation: np.ndarray) -> Finding:
    """One warning for images whose mirror image is filed under another class: with a random
    flip in training, the classes differ by orientation, not by a wrong label (VD3)."""
    evidence, example, first = pairs.described()
    classes, counts = np.unique([" vs ".join(sorted((str(labels[i]), str(labels[j]))))
                                 for i, j in zip(pairs.i, pairs.j, strict=True)],
                                return_counts=True)
    by_classes = {str(c): int(n) for c, n in sorted(zip(classes, counts, strict=True),
                                                    key=lambda cn: -cn[1])}
    return warning(
        "split", "mirrored_classes",
        f"{evidence['num_pairs']} pairs of images are mirror images of each other under "
        f"different classes ({', '.join(f'{n} {c}' for c, n in by_classes.items())}; pHash of "
        f"one mirrored left-right within {pairs.max_distance} of 64 bits of the other's, pixels "
        f"correlated >= {MIN_CORRELATION} at {SIDE}x{SIDE}{example}): these classes differ by "
        "orientation, and the random horizontal flip that data.augment plans turns a picture "
        "of one into a picture of the other, still labelled as the first.",
        "Set data.augment = \"none\" so that training never mirrors images, and rerun from the "
        "split stage; if orientation should not matter here, the mirrored copies carry wrong "
        "labels: move each to the folder of its class, or delete it.",
        **evidence, num_pairs_by_classes=by_classes, min_correlation=MIN_CORRELATION,
        correlations=[round(float(c), 4) for c in correlation[first]])


def pool_conflicts(hashes: np.ndarray, mirror: np.ndarray | None, images: np.ndarray,
                   labels: np.ndarray, files: list[str], parts: np.ndarray) -> list[Finding]:
    """Near copies with different labels among all rows of `images` (the pool and a carved
    test part: one search covers every part and pair of parts, since labels do not depend on
    the split): one near_copy_labels warning for copies as they are, counted by `parts` (the
    part of each row), and one mirrored_classes warning for mirrored copies, searched when
    `mirror` (the mirrored images' hashes) is given, i.e. when training flips."""
    from trainwise.data.neardup import MAX_DISTANCE, _hits, _Pairs

    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    rows = np.flatnonzero(counts[inverse.reshape(-1)] <= MAX_SHARED)
    i, j, distance, mirrored = _hits(hashes[rows], hashes[rows], MAX_DISTANCE,
                                     None if mirror is None else mirror[rows])
    i, j = rows[i], rows[j]
    keep = (i < j) & (labels[i] != labels[j])  # each pair once, an image never with itself
    if not keep.any():
        return []
    pairs = _Pairs(i[keep], j[keep], distance[keep], ("pool", "pool"), MAX_DISTANCE,
                   (files, files), mirrored[keep])
    correlation = pixel_correlation(images, images, pairs.i, pairs.j, pairs.mirrored)
    found = []
    for flipped in (False, True):
        chosen = (correlation >= MIN_CORRELATION) & (pairs.mirrored == flipped)
        if not chosen.any():
            continue
        subset = pairs.subset(chosen)
        found.append(mirrored_classes(subset, labels, correlation[chosen]) if flipped else
                     label_conflicts(replace(subset, names=("", "")), (labels, labels),
                                     correlation[chosen], _by_part(subset, parts)))
    return found


def _by_part(pairs: _Pairs, parts: np.ndarray) -> dict[str, int]:
    """{'within train': 3, 'train ~ val': 1, ...}: pairs per part or pair of parts."""
    counts: dict[str, int] = {}
    for a, b in zip(parts[pairs.i], parts[pairs.j], strict=True):
        a, b = sorted((a, b), key=lambda part: (PART_ORDER + (part,)).index(part))
        key = f"within {a}" if a == b else f"{a} ~ {b}"
        counts[key] = counts.get(key, 0) + 1
    return counts
