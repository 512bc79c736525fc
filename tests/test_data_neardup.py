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


def shapes(num: int = 210, seed: int = 0) -> np.ndarray:
    """(num, 3, 32, 32) uint8: one random circle, square or triangle of a random bright
    colour on a random dark background, as the audit's copy-free shapes/ folder."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    out = np.empty((num, 32, 32, 3), dtype=np.uint8)
    for k in range(num):
        out[k] = rng.integers(0, 60, 3)
        cy, cx, r = *rng.integers(10, 22, 2), rng.integers(5, 9)
        mask = [(yy - cy) ** 2 + (xx - cx) ** 2 < r * r,
                (abs(yy - cy) < r) & (abs(xx - cx) < r),
                (yy - cy + r > 0) & (abs(xx - cx) < (yy - cy + r) / 2) & (yy < cy + r)][k % 3]
        out[k][mask] = rng.integers(120, 255, 3)
    return out.transpose(0, 3, 1, 2).copy()


def test_hash_hits_between_different_simple_shapes_are_not_called_copies():
    """The audit's shapes/: 20 of 60 copy-free test images were 'near copies' by pHash."""
    images = shapes()
    hashes = perceptual_hashes(images)
    a, b = np.arange(150), np.arange(150, 210)
    i, j, _ = hamming_pairs(hashes[a], hashes[b])
    assert len(np.unique(j)) >= 10  # the hash alone flags many of them
    [unsure] = check_near_duplicates(hashes[a], hashes[b], rows=(a, b))
    assert unsure.code == "near_duplicate_images" and "may be near copies" in unsure.message
    assert "not compared pixel by pixel" in unsure.message
    [found] = check_near_duplicates(hashes[a], hashes[b], rows=(a, b), images=(images, images))
    assert found.code == "no_near_duplicates" and found.severity == "info"
    assert found.evidence["num_rejected"] == len(j) and found.evidence["num_pairs"] == 0
    assert "pixels that differ" in found.message
    data = TaskData(name="shapes", kind="image", task="classification", x=images,
                    y=np.arange(210) % 3, class_names=["circle", "square", "triangle"])
    split = plan_split(data, SplitSettings(seed=0))  # the split stage confirms as well
    assert "near_duplicate_images" not in [f.code for f in split.findings]


def test_edited_copies_are_confirmed_and_flat_images_are_not():
    from trainwise.data.pixels import MIN_CORRELATION, pixel_correlation

    images = scenes(40, seed=5)
    smaller = torch.nn.functional.interpolate(torch.from_numpy(images).float(), size=(48, 48),
                                              mode="bilinear", antialias=True)
    resized = torch.nn.functional.interpolate(smaller, size=(64, 64), mode="bilinear")
    edits = [np.stack([jpeg(im, 50) for im in images]),
             np.clip(images + np.random.default_rng(0).normal(0, 10, images.shape), 0,
                     255).astype(np.uint8),
             np.clip(images.astype(int) + 40, 0, 255).astype(np.uint8),
             resized.round().clamp(0, 255).byte().numpy()]
    rows = np.arange(40)
    for edited in edits:
        assert pixel_correlation(images, edited, rows, rows).min() >= MIN_CORRELATION
    others = shapes()
    different = pixel_correlation(others, others, np.arange(0, 100), np.arange(100, 200))
    assert different.max() < MIN_CORRELATION
    blank = np.stack([np.full((3, 8, 8), 20, np.uint8), np.full((3, 8, 8), 200, np.uint8)])
    assert pixel_correlation(blank, blank, np.array([0]), np.array([1]))[0] == 0


def test_confirmed_copies_are_counted_and_the_other_hash_hits_set_apart():
    images = np.concatenate([shapes(150), scenes(60, seed=7, side=32)])
    images[200:210] = np.stack([jpeg(images[k]) for k in range(150, 160)])  # 10 real copies
    hashes = perceptual_hashes(images)
    a, b = np.r_[0:120, 150:200], np.r_[120:150, 200:210]  # shapes and scenes on both sides
    [near] = check_near_duplicates(hashes[a], hashes[b], rows=(a, b), images=(images, images))
    hashed = [k for k in range(150, 160) if np.bitwise_count(hashes[k] ^ hashes[k + 50]) <= 4]
    assert near.code == "near_duplicate_images" and len(hashed) >= 8
    assert near.evidence["num_images"] == near.evidence["num_pairs"] == len(hashed)
    assert [(i, j) for i, j, _ in near.evidence["examples"]] == [(k, k + 50)
                                                                for k in hashed[:5]]
    assert min(near.evidence["correlations"]) >= 0.99
    assert "correlated >= 0.99 at 8x8" in near.message
    rejected = near.evidence["num_rejected"]
    assert rejected > 0 and f"{rejected} more pairs have similar hashes but different " \
        "pixels and are not counted" in near.message
    data = TaskData(name="mix", kind="image", task="classification", x=images,
                    y=np.arange(210) % 2, class_names=["a", "b"])
    result = plan_split(data, SplitSettings(seed=0))  # the split stage confirms as well
    for finding in result.findings:
        if finding.code == "near_duplicate_images":
            assert all(abs(j - i) == 50 for i, j, _ in finding.evidence["examples"])
