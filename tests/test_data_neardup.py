"""Near-duplicate images: pHash survives re-encoding and resizing, the Hamming search finds
exactly what a brute-force popcount over all pairs finds, and the split stage reports it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from trainwise.data.neardup import check_near_duplicates, hamming_pairs, perceptual_hashes
from trainwise.data.plan import SplitSettings, plan_split
from trainwise.data.task import TaskData


def scenes(num: int, seed: int = 0, side: int = 64) -> np.ndarray:
    """(num, 3, side, side) uint8 smooth random scenes: blurred noise, like photos (pHash
    bits of pure noise are unstable)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (num, 3, 6, 6)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bicubic",
                                           align_corners=False).clamp(0, 255).byte().numpy()


def jpeg(image: np.ndarray, quality: int = 70) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image.transpose(1, 2, 0)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer)).transpose(2, 0, 1)


def test_phash_survives_edits_and_separates_different_images():
    images = scenes(40)
    hashes = perceptual_hashes(images)
    brighter = np.clip(images[1].astype(int) + 12, 0, 255).astype(np.uint8)
    near = perceptual_hashes(np.stack([jpeg(images[0]), brighter]))
    assert np.bitwise_count(near ^ hashes[:2]).max() <= 4
    smaller = torch.nn.functional.interpolate(torch.from_numpy(images[2:3]).float(),
                                              size=(48, 48), mode="bilinear", antialias=True)
    resized = perceptual_hashes(smaller.round().byte().numpy())  # the hash is size-free
    assert int(np.bitwise_count(resized[0] ^ hashes[2])) <= 4
    distances = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    assert distances[np.triu_indices(40, 1)].min() > 4  # 40 different scenes: none near


@pytest.mark.parametrize(("seed", "radius"), [(0, 4), (1, 4), (2, 0), (3, 2), (4, 6)])
def test_hamming_search_equals_brute_force(seed, radius):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, 4000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, 4000).astype(np.uint64)
    b = rng.integers(0, 2**63, 1500, dtype=np.int64).astype(np.uint64)
    for k in range(60):  # plant pairs at distance 0..6 (those above the radius: not found)
        flips = rng.choice(64, k % 7, replace=False).astype(np.uint64)
        b[k] = a[k * 7] ^ np.bitwise_or.reduce(np.uint64(1) << flips, initial=np.uint64(0))
    a[100], b[200] = a[0], b[0]  # repeated values on both sides
    i, j, distance = hamming_pairs(a, b, max_distance=radius)
    brute = np.bitwise_count(a[:, None] ^ b[None, :])
    expected = set(zip(*np.nonzero(brute <= radius), strict=True))
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == {(int(p), int(q))
                                                             for p, q in expected}
    assert np.array_equal(distance, brute[i, j])


def test_split_stage_warns_about_near_copies_across_parts():
    images = scenes(200, seed=3)
    images[150:160] = np.stack([jpeg(images[k]) for k in range(10)])  # re-encoded copies
    data = TaskData(name="photos", kind="image", task="classification", x=images,
                    y=np.arange(200) % 2, class_names=["a", "b"],
                    files=[f"/photos/{'ab'[k % 2]}/{k}.jpg" for k in range(200)])
    result = plan_split(data, SplitSettings(val_fraction=0.25, test_fraction=0.2, seed=0))
    near = [f for f in result.findings if f.code == "near_duplicate_images"]
    parts = {k: set(v.tolist()) for k, v in
             (("train", result.train), ("val", result.val), ("test", result.test))}
    crossing = sum((k in parts["train"]) != (k + 150 in parts["train"]) for k in range(10))
    assert crossing > 0 and near
    assert sum(f.evidence["num_pairs"] for f in near) >= crossing
    for f in near:  # examples name rows: each one a planted original and its copy
        for i, j, distance in f.evidence["examples"]:
            assert {i, j} in [{k, k + 150} for k in range(10)] and distance <= 4
        files = [[f"{'ab'[i % 2]}/{i}.jpg", f"{'ab'[j % 2]}/{j}.jpg"]
                 for i, j, _ in f.evidence["examples"]]  # and their files, by folder
        assert f.evidence["example_files"] == files
        assert f"e.g. {files[0][0]} ~ {files[0][1]}" in f.message


def test_no_near_duplicates_is_an_info():
    hashes = perceptual_hashes(scenes(30))
    [finding] = check_near_duplicates(hashes[:20], hashes[20:])
    assert finding.code == "no_near_duplicates"
