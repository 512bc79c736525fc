"""Near-duplicate image search: pHash throughput and the Hamming-radius search at scale.

    python bench/data_neardup.py [--train 1000000] [--val 1000000]

Hashes: pHash of decoded images (perceptual_hashes) is timed on 20,000 64x64 RGB scenes; the
search is timed on synthetic 64-bit hashes (train x val, with 1,000 planted val hashes 0..4
bits from a train hash), since decoding a million files is not what is measured here.
Baseline: deepchecks' removed SimilarImageLeakage loop (for each val hash, XOR + popcount
against every train hash), timed on 200 val hashes and scaled linearly to all of them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trainwise.data.neardup import _key_sets, hamming_pairs, perceptual_hashes

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
        f"| pHash of decoded 64x64 RGB images (1 thread) | - | {rate:,.0f} images/s |"])
    print(body)
    from _record import append

    append("Data: near-duplicate image search", body)


if __name__ == "__main__":
    main()
