"""Near-duplicate images across splits: a 64-bit perceptual hash per image and a vectorised
Hamming-radius search.

pHash as imagehash computes it (gray 32x32, 2-D DCT, the 8x8 lowest frequencies against
their median), but for a whole (N, C, H, W) batch at once with torch's antialiased resize
instead of one PIL image at a time; bits can differ from imagehash's Lanczos by a few.
Hash hits are then confirmed pixel by pixel (pixels.py): plain shapes share hashes.
The search is multi-index hashing: two hashes within r bits agree exactly on most of their 8
byte-chunks, so only pairs sharing a key made of some of those chunks are compared (see
_key_sets). deepchecks' removed SimilarImageLeakage compared every test hash with every
train hash in a Python loop, O(N x M), and was "the main cause of the slowness" on MNIST.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from trainwise.data.naming import name_files, named_pairs
from trainwise.data.neardup_labels import PART_ORDER, label_conflicts, pool_conflicts
from trainwise.data.pixels import MIN_CORRELATION, SIDE, pixel_correlation
from trainwise.data.task import TaskData
from trainwise.findings import Finding, info, warning

MAX_DISTANCE = 4  # bits of 64: re-encodes, resizes, small crops; deepchecks' default too
HASH_SIDE, LOW = 32, 8  # imagehash's pHash: 32x32 DCT, the 8x8 lowest frequencies
BATCH = 4096  # images resized per step: 4096 x 3 x 224 x 224 floats would be 2.4 GB
NUM_EXAMPLES = 5
NUM_CHUNKS, KEY_CHUNKS = 8, 3  # 8 byte-chunks of the 64 bits; keys of 3 chunks = 24 bits


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N,) uint64 pHash, bit 63 - k set when DCT coefficient k (row-major
    in the 8x8 block) is above the block's median."""
    import torch
    from scipy.fft import dctn

    out = np.empty(len(images), dtype=np.uint64)
    weights = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's convert("L")
    powers = (np.uint64(1) << np.arange(LOW * LOW - 1, -1, -1, dtype=np.uint64))
    for start in range(0, len(images), BATCH):
        batch = torch.as_tensor(np.ascontiguousarray(images[start:start + BATCH]),  # mirrored
                                dtype=torch.float32)  # views have negative strides
        gray = batch[:, 0] if batch.shape[1] < 3 else torch.einsum("nchw,c->nhw",
                                                                    batch[:, :3], weights)
        small = torch.nn.functional.interpolate(gray[:, None], size=(HASH_SIDE, HASH_SIDE),
                                                mode="bilinear", antialias=True)[:, 0]
        low = dctn(small.numpy().astype(np.float64), type=2, axes=(1, 2))[:, :LOW, :LOW]
        low = low.reshape(len(low), -1)  # (B, 64)
        bits = low > np.median(low, axis=1, keepdims=True)
        out[start:start + len(batch)] = (bits.astype(np.uint64) * powers).sum(axis=1)
    return out


@functools.cache
def _key_sets(max_distance: int) -> tuple[tuple[int, ...], ...]:
    """Which of the 8 byte-chunks form each search key. Two hashes within r bits differ in at
    most r chunks, so they agree on some (8 - r)-set of chunks; keys are KEY_CHUNKS-subsets
    chosen (greedily) so that every (8 - r)-set contains one, hence every near pair shares
    some key exactly. 24-bit keys leave ~1e12 / 2^24 = 60k chance candidates per key for 1M
    x 1M hashes, where 5 chunks of 13 bits (plain pigeonhole) left ~1e8 and ran out of memory."""
    agree = NUM_CHUNKS - max_distance
    size = min(KEY_CHUNKS, agree)
    if size < 1:
        raise ValueError(f"max_distance {max_distance} > {NUM_CHUNKS - 1}: search by brute force")
    uncovered = set(itertools.combinations(range(NUM_CHUNKS), agree))
    keys = []
    while uncovered:
        best = max(itertools.combinations(range(NUM_CHUNKS), size),
                   key=lambda k: sum(set(k) <= set(u) for u in uncovered))
        keys.append(best)
        uncovered = {u for u in uncovered if not set(best) <= set(u)}
    return tuple(keys)


def _key(values: np.ndarray, chunks: tuple[int, ...]) -> np.ndarray:
    key = np.zeros(len(values), dtype=np.uint64)
    for chunk in chunks:
        key = (key << np.uint64(8)) | ((values >> np.uint64(8 * chunk)) & np.uint64(0xFF))
    return key


def _chunk_pairs(keys_a: np.ndarray, keys_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with keys_a[i] == keys_b[j]: both sides sorted, one range per a."""
    order_a, order_b = np.argsort(keys_a), np.argsort(keys_b)
    sorted_a, sorted_b = keys_a[order_a], keys_b[order_b]
    lo = np.searchsorted(sorted_b, sorted_a, side="left")  # sorted needles: cache friendly
    counts = np.searchsorted(sorted_b, sorted_a, side="right") - lo
    i = np.repeat(order_a, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, order_b[np.repeat(lo, counts) + offsets]


def hamming_pairs(hash_a: np.ndarray, hash_b: np.ndarray,
                  max_distance: int = MAX_DISTANCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) for every pair with popcount(hash_a[i] ^ hash_b[j]) <= max_distance.

    Distinct hash values are searched once (blank or copied images share one value), then
    expanded back to rows."""
    unique_a, row_a = np.unique(hash_a, return_inverse=True)
    unique_b, row_b = np.unique(hash_b, return_inverse=True)
    found = []
    for chunks in _key_sets(max_distance):  # candidates checked key by key: bounded memory
        i, j = _chunk_pairs(_key(unique_a, chunks), _key(unique_b, chunks))
        near = np.bitwise_count(unique_a[i] ^ unique_b[j]) <= max_distance
        found.append(i[near].astype(np.int64) * len(unique_b) + j[near])
    pairs = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    ua, ub = pairs // max(len(unique_b), 1), pairs % max(len(unique_b), 1)
    distance = np.bitwise_count(unique_a[ua] ^ unique_b[ub]).astype(np.int64)
    return _expand(ua, ub, distance, row_a.ravel(), row_b.ravel())


def _rows_by_value(inverse: np.ndarray, num_values: int) -> tuple[np.ndarray, np.ndarray]:
    """order, starts: the rows holding value u are order[starts[u]:starts[u + 1]]."""
    order = np.argsort(inverse, kind="stable")
    return order, np.searchsorted(inverse[order], np.arange(num_values + 1))


def _expand(ua: np.ndarray, ub: np.ndarray, distance: np.ndarray, row_a: np.ndarray,
            row_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of distinct values -> every pair of rows holding them (count_a x count_b each)."""
    order_a, starts_a = _rows_by_value(row_a, int(row_a.max(initial=-1)) + 1)
    order_b, starts_b = _rows_by_value(row_b, int(row_b.max(initial=-1)) + 1)
    count_a = (starts_a[1:] - starts_a[:-1])[ua]
    count_b = (starts_b[1:] - starts_b[:-1])[ub]
    sizes = count_a * count_b
    pair = np.repeat(np.arange(len(ua)), sizes)
    k = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows_a = order_a[starts_a[ua[pair]] + k // count_b[pair]]
    rows_b = order_b[starts_b[ub[pair]] + k % count_b[pair]]
    return rows_a, rows_b, distance[pair]


def check_near_duplicates(hash_a: np.ndarray, hash_b: np.ndarray, *,
                          max_distance: int = MAX_DISTANCE,
                          names: tuple[str, str] = ("train", "val"),
                          rows: tuple[np.ndarray, np.ndarray] | None = None,
                          files: Sequence[str] = (), files_b: Sequence[str] | None = None,
                          images: tuple[np.ndarray, np.ndarray] | None = None,
                          mirror_a: np.ndarray | None = None,
                          labels: tuple[np.ndarray, np.ndarray] | None = None,
                          report_labels: bool = True) -> list[Finding]:
    """A warning when images of b are within max_distance bits of an image of a and, given
    `images` (what `rows`, or else the positions, index on each side), their pixels confirm
    it (pixels.py); an info otherwise. Without `images` the hits are reported as possible
    copies, with the caveat that hashes match unrelated simple images. `rows` maps positions
    to the row numbers the examples should name; `files` (one per row) names their files, and
    `files_b` b's when b is another array (a shipped test/ folder's images). `mirror_a`: the
    hashes of a's images mirrored left-right, so that mirrored copies are found too. `labels`
    (class names, indexed as `images`): confirmed pairs with different labels are no leak;
    those found as they are are a near_copy_labels warning of their own unless
    `report_labels` is False (pool_conflicts reports them once for every part); mirrored
    ones are never a wrong label (left/right arrows: neardup_labels.mirrored_classes)."""
    i, j, distance, mirrored = _hits(hash_a, hash_b, max_distance, mirror_a)
    if rows is not None:
        i, j = rows[0][i], rows[1][j]
    if len(j) == 0:
        return [info("split", "no_near_duplicates", f"no {names[1]} image within "
                     f"{max_distance} bits (of 64, pHash) of a {names[0]} image.",
                     max_distance=max_distance)]
    pairs = _Pairs(i, j, distance, names, max_distance,
                   (files, files if files_b is None else files_b), mirrored)
    if images is None:
        return [_possible_copies(pairs)]
    correlation = pixel_correlation(images[0], images[1], i, j, mirrored)
    confirmed = correlation >= MIN_CORRELATION
    if not confirmed.any():
        return [_unconfirmed(pairs, correlation)]
    other = confirmed & (labels[0][i] != labels[1][j]) if labels else np.zeros_like(confirmed)
    wrong = other & ~pairs.mirrored if report_labels else np.zeros_like(other)
    found = [label_conflicts(pairs.subset(wrong), labels, correlation[wrong])] if labels \
        and wrong.any() else []
    same = confirmed & ~other
    return found + ([_near_copies(pairs.subset(same), correlation[same],
                                  int((~confirmed).sum()))] if same.any() else [])


def _hits(hash_a: np.ndarray, hash_b: np.ndarray, max_distance: int,
          mirror_a: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """(i, j, distance, mirrored): hash hits of a's images as they are and, given mirror_a,
    mirrored; a pair found both ways counts once, as it is (symmetric images)."""
    i, j, distance = hamming_pairs(hash_a, hash_b, max_distance)
    if mirror_a is None:
        return i, j, distance, np.zeros(len(i), dtype=bool)
    found = hamming_pairs(mirror_a, hash_b, max_distance)
    i, j, distance = (np.concatenate(p) for p in zip((i, j, distance), found, strict=True))
    mirrored = np.arange(len(i)) >= len(i) - len(found[0])
    _, first = np.unique(i * (len(hash_b) + 1) + j, return_index=True)  # plain ones first
    return i[first], j[first], distance[first], mirrored[first]


@dataclass(frozen=True)
class _Pairs:
    """Hash hits (row i of a, row j of b, Hamming distance) and how to name them."""

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    names: tuple[str, str]
    max_distance: int
    files: tuple[Sequence[str], Sequence[str]]  # a's and b's, one per row
    mirrored: np.ndarray  # (K,) bool: b's image is a's mirrored left-right

    def subset(self, keep: np.ndarray) -> _Pairs:
        return replace(self, i=self.i[keep], j=self.j[keep], distance=self.distance[keep],
                       mirrored=self.mirrored[keep])

    def described(self) -> tuple[dict, str, np.ndarray]:
        """(evidence, '; e.g. a.png ~ b.png' for the message, positions of the examples): the
        first pairs by b row."""
        first = np.argsort(self.j, kind="stable")[:NUM_EXAMPLES]
        pairs = [[int(self.i[k]), int(self.j[k])] for k in first]
        evidence = {"num_images": int(len(np.unique(self.j))), "num_pairs": int(len(self.j)),
                    "num_mirrored": int(self.mirrored.sum()), "max_distance": self.max_distance,
                    "examples": [[*pair, int(self.distance[k])]
                                 for pair, k in zip(pairs, first, strict=True)]}
        files, shifted = _both_sides(self.files, pairs)
        if files:
            evidence["example_files"] = name_files(files, shifted)
        return evidence, named_pairs(files, shifted, " ~ "), first


def _both_sides(files: tuple[Sequence[str], Sequence[str]], pairs: list[list[int]]
                ) -> tuple[Sequence[str], list[list[int]]]:
    """One list naming both sides, and the pairs' rows in it: b's rows come after a's when b
    has files of its own (a shipped test/ folder), so both sides are named relative to the
    folder they share ('test/c3/a.jpg ~ train/c0/a.png')."""
    files_a, files_b = files
    if files_a is files_b:
        return files_a, pairs
    if not files_a or not files_b:
        return [], pairs
    return [*files_a, *files_b], [[i, len(files_a) + j] for i, j in pairs]


FIX = ("Look at the example pairs; if they are copies, delete them (or, where the data has a "
       "group key, give each original and its copies one key and split by group).")


def _near_copies(pairs: _Pairs, correlation: np.ndarray, num_rejected: int) -> Finding:
    a, b = pairs.names
    evidence, example, first = pairs.described()
    rejected = (f" {num_rejected} more pairs have similar hashes but different pixels and are "
                "not counted." if num_rejected else "")
    num_mirrored = evidence["num_mirrored"]
    mirrored = (f"; {num_mirrored} of them mirrored left-right, the very images a random "
                "horizontal flip trains on" if num_mirrored else "")
    return warning(
        "split", "near_duplicate_images",
        f"{evidence['num_images']} {b} images are near copies of {a} images "
        f"({evidence['num_pairs']} pairs with pHash within {pairs.max_distance} of 64 bits "
        f"and pixels correlated >= {MIN_CORRELATION} at {SIDE}x{SIDE}, colour included"
        f"{mirrored}{example}): resized, re-encoded, mirrored or lightly edited copies "
        "inflate the score."
        f"{rejected}", FIX, **evidence, min_correlation=MIN_CORRELATION,
        num_rejected=num_rejected, correlations=[round(float(c), 4) for c in correlation[first]])


def _unconfirmed(pairs: _Pairs, correlation: np.ndarray) -> Finding:
    a, b = pairs.names
    evidence, example, _ = pairs.described()
    return info(
        "split", "no_near_duplicates",
        f"no {b} image is a near copy of a {a} image: {evidence['num_pairs']} pairs have pHash "
        f"within {pairs.max_distance} bits but pixels that differ (correlation below "
        f"{MIN_CORRELATION} at {SIDE}x{SIDE}, colour included), as plain shapes and "
        f"backgrounds often do{example}.",
        **{**evidence, "num_images": 0, "num_pairs": 0}, num_rejected=evidence["num_pairs"],
        min_correlation=MIN_CORRELATION, max_correlation=round(float(correlation.max()), 4))


def _possible_copies(pairs: _Pairs) -> Finding:
    a, b = pairs.names
    evidence, example, _ = pairs.described()
    return warning(
        "split", "near_duplicate_images",
        f"{evidence['num_images']} {b} images may be near copies of {a} images (pHash within "
        f"{pairs.max_distance} of 64 bits; {evidence['num_pairs']} pairs, "
        f"{int((pairs.distance == 0).sum())} at distance 0{example}): not "
        "compared pixel by pixel, and simple images (plain shapes, blank backgrounds) share "
        "hashes without being copies; real resized, re-encoded or lightly edited copies would "
        "inflate the score.", FIX, **evidence)


def split_near_duplicates(data: TaskData, pairs: list, seen: np.ndarray,
                          test: np.ndarray | None, flip: bool = True) -> list[Finding]:
    """pHash every image once; each pair of parts (a rows, b rows, names) and train+val
    against the test part (`test` rows of data.x, or data.x_test when None) are searched
    within MAX_DISTANCE bits and confirmed pixel by pixel, mirrored too when training `flip`s;
    copies under different labels (classification) are searched once over all rows."""
    hashes = perceptual_hashes(data.x)
    # mirrored only when training flips (data.augment's plan): a mirrored copy in val or test
    # is then a training image; ~2x the hashing (0.9 s more for 10k 32x32 RGB images). Without
    # flips a mirror image may be another class (left/right arrows): review s13 VD3
    mirror = perceptual_hashes(data.x[..., ::-1]) if flip else None
    labels, labels_test = _class_names(data)
    both, named = (data.x, data.x), (labels, labels) if labels is not None else None
    findings = [f for a, b, names in pairs  # different labels: pool_conflicts, once (VD8)
                for f in check_near_duplicates(hashes[a], hashes[b], names=names, rows=(a, b),
                                               files=data.files, images=both,
                                               mirror_a=_take(mirror, a), labels=named,
                                               report_labels=False)]
    if labels is not None:
        findings += pool_conflicts(hashes, mirror, data.x, labels, data.files,
                                   _parts(len(data.x), pairs, seen, test))
    test_part = ("train+val", "test")
    if test is not None:
        return findings + check_near_duplicates(hashes[seen], hashes[test], names=test_part,
                                                rows=(seen, test), files=data.files,
                                                images=both, mirror_a=_take(mirror, seen),
                                                labels=named, report_labels=False)
    if data.x_test is None:
        return findings
    # a shipped test part: its rows index data.x_test, its files data.test_files
    return findings + check_near_duplicates(
        hashes[seen], perceptual_hashes(data.x_test), names=test_part,
        rows=(seen, np.arange(len(data.x_test))), files=data.files,
        files_b=data.test_files, images=(data.x, data.x_test), mirror_a=_take(mirror, seen),
        labels=None if labels is None else (labels, labels_test))


def _take(values: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[rows]


def _parts(num_rows: int, pairs: list, seen: np.ndarray, test: np.ndarray | None
           ) -> np.ndarray:
    """(num_rows,) the part each row of data.x is in: train/val, or train+val with k folds
    (each pool row validates once), test, or no part (a time gap's rows)."""
    parts = np.full(num_rows, PART_ORDER[-1], dtype=object)
    if len(pairs) == 1:
        (a, b, names), = pairs
        parts[a], parts[b] = names
    else:
        parts[seen] = "train+val"
    if test is not None:
        parts[test] = "test"
    return parts


def _class_names(data: TaskData) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each row's class name in the pool and the shipped test part (None for regression)."""
    if data.task != "classification":
        return None, None
    names = np.asarray([*data.class_names, *map(str, range(len(data.class_names), 1024))])
    test = None if data.y_test is None else names[np.asarray(data.y_test, dtype=np.int64)]
    return names[np.asarray(data.y, dtype=np.int64)], test
