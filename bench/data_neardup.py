"""Near-duplicate image search: pHash throughput and the Hamming-radius search at scale.

    python bench/data_neardup.py [--train 1000000] [--val 1000000]

Hashes: pHash of decoded images (perceptual_hashes) is timed on 20,000 64x64 RGB scenes; the
search is timed on synthetic 64-bit hashes (train x val, with 1,000 planted val hashes 0..4
bits from a train hash), since decoding a million files is not what is measured here.
Baseline: deepchecks' removed SimilarImageLeakage loop (for each val hash, XOR + popcount
against every train hash), timed on 200 val hashes and scaled linearly to all of them.
Detection: planted copies found and copy-free images flagged by the hash alone (the rule
before hash hits were confirmed pixel by pixel) and by check_near_duplicates, which confirms
them (data/pixels.py). Copies: 400 smooth 64x64 and 400 32x32 colour scenes, each with one
edited copy (JPEG q50 / q70 / q90, noise sd 10, brightness +40, 3/4 resize); false alarms:
600 copy-free random shapes (as the audit's shapes/ folder) split 450 / 150.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_data_neardup import shapes  # noqa: E402  (the copy-free shapes the test uses)
from trainwise.data.neardup import (
    _key_sets,
    check_near_duplicates,
    hamming_pairs,
    perceptual_hashes,
)

NUM_PLANTED = 1000


def synthetic(num_train: int, num_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 2**63, num_train, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    val = rng.integers(0, 2**63, num_val, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    for k in range(NUM_PLANTED):
        flips = rng.choice(64, k % 5, replace=False).astype(np.uint64)
        val[k] = train[k * 13] ^ np.bitwise_or.reduce(np.uint64(1) << flips, initial=np.uint64(0))
    return train, val


def loop_baseline(train: np.ndarray, val: np.ndarray, num: int = 200) -> float:
    start = time.perf_counter()
    for h in val[:num]:  # deepchecks: one vectorised comparison per test image
        np.flatnonzero(np.bitwise_count(train ^ h) <= 4)
    return (time.perf_counter() - start) / num * len(val)


def phash_rate(num: int = 20_000) -> float:
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(0, 255, (num, 3, 6, 6)).astype(np.float32))
    images = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic").clamp(
        0, 255).byte().numpy()
    start = time.perf_counter()
    perceptual_hashes(images)
    return num / (time.perf_counter() - start)


def scenes(num: int, side: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (num, 3, 6, 6)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bicubic").clamp(
        0, 255).byte().numpy()


def edit(image: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    import io

    from PIL import Image

    kind = k % 6
    if kind < 3:  # JPEG q50, q70, q90
        buffer = io.BytesIO()
        Image.fromarray(image.transpose(1, 2, 0)).save(buffer, "JPEG", quality=50 + 20 * kind)
        return np.asarray(Image.open(buffer)).transpose(2, 0, 1)
    if kind == 3:
        return np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    if kind == 4:
        return np.clip(image.astype(int) + 40, 0, 255).astype(np.uint8)
    side = image.shape[-1]
    small = torch.nn.functional.interpolate(torch.from_numpy(image[None]).float(),
                                            size=(side * 3 // 4,) * 2, mode="bilinear",
                                            antialias=True)
    return torch.nn.functional.interpolate(small, size=(side, side), mode="bilinear")[0].round(
        ).clamp(0, 255).byte().numpy()


def _found(train: np.ndarray, val: np.ndarray) -> tuple[int, int]:
    """(val images the hash alone flags, val images check_near_duplicates confirms)."""
    hash_a, hash_b = perceptual_hashes(train), perceptual_hashes(val)
    hashed = len(np.unique(hamming_pairs(hash_a, hash_b)[1]))
    [finding] = check_near_duplicates(hash_a, hash_b, images=(train, val))
    return hashed, finding.evidence["num_images"]


def detection() -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for side in (64, 32):
        originals = scenes(400, side, seed=side)
        copies = np.stack([edit(image, k, rng) for k, image in enumerate(originals)])
        hashed, confirmed = _found(originals, copies)
        rows.append(f"| 400 edited copies of {side}x{side} scenes | {hashed} | {confirmed} |")
    others = shapes(600)
    hashed, confirmed = _found(others[:450], others[450:])
    rows.append(f"| 150 copy-free shapes vs 450 (false alarms) | {hashed} | {confirmed} |")
    return ["| val images flagged | hash alone (before) | hash + pixels (now) |",
            "|---|---:|---:|", *rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=1_000_000)
    parser.add_argument("--val", type=int, default=1_000_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, val = synthetic(args.train, args.val)
    start = time.perf_counter()
    i, j, distance = hamming_pairs(train, val, max_distance=4)
    ours = time.perf_counter() - start
    planted = set(zip((np.arange(NUM_PLANTED) * 13).tolist(), range(NUM_PLANTED), strict=True))
    found = planted <= set(zip(i.tolist(), j.tolist(), strict=True))
    loop = loop_baseline(train, val)
    rate = phash_rate()
    body = "\n".join([
        f"{args.train:,} train x {args.val:,} val 64-bit hashes, radius 4 bits.", "",
        "| step | seconds | notes |", "|---|---:|---|",
        f"| trainwise hamming_pairs (multi-index: {len(_key_sets(4))} keys of 24 bits) | "
        f"{ours:.1f} | {len(j):,} pairs; "
        f"all {NUM_PLANTED:,} planted found: {found} |",
        f"| per-image loop as in deepchecks' SimilarImageLeakage | {loop:,.0f} | estimated: "
        f"200 val hashes timed, x {args.val // 200:,} |",
        f"| pHash of decoded 64x64 RGB images (1 thread) | - | {rate:,.0f} images/s |", "",
        *detection()])
    print(body)
    from _record import append

    append("Data: near-duplicate image search", body)


if __name__ == "__main__":
    main()
