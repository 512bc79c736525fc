"""Confirm perceptual-hash hits pixel by pixel before calling two images copies.

pHash keeps the sign of 64 low frequencies of the luma: plain shapes on plain backgrounds
share hashes without being copies (the audit's copy-free set of synthetic shapes: 40% of the
test part "near copies", 9 pairs at distance 0), and colour is not in it at all. Two images
count as near copies only when, resized to SIDE x SIDE with colour kept, their pixels also
correlate at MIN_CORRELATION or more. Measured on pairs the hash found (64 and 32 px colour
scenes, 24 px digits; bench/data_neardup.py has a table): copies by JPEG q50-q90, noise
(sd 10), brightness +40, a 3/4 or 1/2 resize or a 1-pixel crop correlate at >= 0.990 at 8x8
(the audit's dups/: 270 copy pairs, >= 0.9999), all but digits shrunk to half size (12 px,
0.984: missed); different synthetic shapes at <= 0.985 (540 hash pairs), and two different
writers' nearly identical digits at 0.985. At 16x16, JPEG's half-resolution colour already
brings small copies down to 0.98 (q50, 32 px).
"""

from __future__ import annotations

import numpy as np

SIDE = 8  # compared at 8x8: coarse enough to absorb resizing, JPEG blocks and its colour
# kept at half resolution, fine enough (with colour) to tell apart shapes pHash confuses
MIN_CORRELATION = 0.99
BATCH = 4096  # images resized per step, as in perceptual_hashes
PAIR_BATCH = 1 << 16  # pairs whose dot products are taken at once: 2 x 64k x 3 x 8 x 8 floats


def thumbnails(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(K,) rows of (N, C, H, W) images -> (K, C*SIDE*SIDE) float32 unit vectors: resized,
    minus their mean, over their norm, so a dot product is the pixel correlation. A flat
    image (one colour) has no pattern to correlate: its vector is zero, never a match (two
    blank images are the exact-duplicate check's)."""
    import torch

    from trainwise.data.images import resize  # lazy, as torch: hashing alone needs neither

    out = np.zeros((len(rows), images.shape[1] * SIDE * SIDE), dtype=np.float32)
    for start in range(0, len(rows), BATCH):
        batch = torch.as_tensor(np.asarray(images[rows[start:start + BATCH]]),
                                dtype=torch.float32)
        small = resize(batch, (SIDE, SIDE)).reshape(len(batch), -1)
        small = small - small.mean(dim=1, keepdim=True)
        norm = small.norm(dim=1, keepdim=True).clamp_min(1e-12)  # flat: stays 0
        out[start:start + len(batch)] = (small / norm).numpy()
    return out


def pixel_correlation(images_a: np.ndarray, images_b: np.ndarray, i: np.ndarray,
                      j: np.ndarray, mirrored: np.ndarray | None = None) -> np.ndarray:
    """(K,) correlation of images_a[i[k]] (mirrored left-right where `mirrored[k]`) and
    images_b[j[k]] at SIDE x SIDE, colour included; each image is resized once however many
    pairs it is in (and on both sides)."""
    if images_a is images_b:  # parts of one data set: a row on both sides is resized once
        rows, slots = np.unique(np.concatenate([i, j]), return_inverse=True)
        small_a = small_b = thumbnails(images_a, rows)
        slot_a, slot_b = slots.reshape(-1)[:len(i)], slots.reshape(-1)[len(i):]
    else:
        rows_a, slot_a = np.unique(i, return_inverse=True)
        rows_b, slot_b = np.unique(j, return_inverse=True)
        small_a, small_b = thumbnails(images_a, rows_a), thumbnails(images_b, rows_b)
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), PAIR_BATCH):
        a = small_a[slot_a.reshape(-1)[start:start + PAIR_BATCH]]
        if mirrored is not None:  # the antialiased resize commutes with a flip: flip the
            a = _mirror(a, mirrored[start:start + PAIR_BATCH], images_a.shape[1])  # thumbnail
        b = small_b[slot_b.reshape(-1)[start:start + PAIR_BATCH]]
        out[start:start + len(a)] = np.einsum("kd,kd->k", a, b)
    return out


def _mirror(small: np.ndarray, flip: np.ndarray, channels: int) -> np.ndarray:
    """(K, C*SIDE*SIDE) thumbnails with rows `flip` mirrored left-right (the width axis)."""
    grid = small.reshape(len(small), channels, SIDE, SIDE).copy()
    grid[flip] = grid[flip][..., ::-1]
    return grid.reshape(len(small), -1)
