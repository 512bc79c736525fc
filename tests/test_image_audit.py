"""Image audit findings name files on both sides of a shipped test/ folder, find mirrored
and cross-label near copies (audit s13 I4, I5, I6)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainwise.data.plan import SplitSettings, plan_split
from trainwise.data.sources import load_data
from trainwise.reporting.html import build_report


def scenes(num: int, seed: int = 0, side: int = 32) -> np.ndarray:
    """(num, 3, side, side) uint8 smooth random scenes (pHash bits of pure noise are unstable)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (num, 3, 6, 6)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bicubic",
                                           align_corners=False).clamp(0, 255).byte().numpy()


def save(image: np.ndarray, path, quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image.transpose(1, 2, 0))
    if quality is None:
        picture.save(path)
    else:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality)
        path.write_bytes(buffer.getvalue())


def split_folder(tmp_path, test_copies):
    """train/{a,b}/ of 40 scenes; test/ of 10 others plus `test_copies(images, root)`."""
    images, root = scenes(50), tmp_path / "set"
    for k in range(40):
        save(images[k], root / "train" / "ab"[k % 2] / f"{k}.png")
    for k in range(40, 50):
        save(images[k], root / "test" / "ab"[k % 2] / f"{k}.png")
    test_copies(images, root)
    data = load_data(str(root))
    return data, plan_split(data, SplitSettings(val_fraction=0.2, seed=0)).findings


def test_a_test_folders_near_and_exact_copies_name_the_files_of_both_sides(tmp_path):
    def copies(images, root):
        save(images[4], root / "test" / "a" / "jpeg_of_4.jpg", quality=80)
        save(images[6], root / "test" / "a" / "copy_of_6.png")

    data, findings = split_folder(tmp_path, copies)
    assert data.test_files and data.test_files[0].endswith("test/a/40.png")
    [near] = [f for f in findings if f.code == "near_duplicate_images"
              and "jpeg_of_4" in str(f.evidence["example_files"])]
    assert ["train/a/4.png", "test/a/jpeg_of_4.jpg"] in near.evidence["example_files"]
    assert "train/a/4.png ~ test/a/jpeg_of_4.jpg" in near.message
    [exact] = [f for f in findings if f.code == "cross_split_duplicates"]
    assert "train/a/6.png = test/a/copy_of_6.png" in exact.message


def test_a_test_folders_suspect_labels_name_their_files(tmp_path):
    import csv

    import trainwise

    rng, root = np.random.default_rng(0), tmp_path / "set"
    for part, count in (("train", 60), ("test", 20)):
        for k in range(count):  # class a dark, class b bright: a model cannot miss them
            label = k % 2
            pixels = rng.integers(0, 60, (8, 8)) + 190 * label
            folder = "ba"[label] if part == "test" and k < 4 else "ab"[label]  # 4 wrong
            path = root / part / folder / f"{part}{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(path)
    result = trainwise.run(str(root), report=False, overrides=[
        "train.max_epochs=6", "train.lr=0.01", "run.threads=1", "run.checks=false",
        "data.augment=\"none\"", f"run.out_dir=\"{tmp_path}\""])
    with open(result.path / "label_issues.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["part"] == "test (own)"]
    named = {r["file"][len(str(root)) + 1:] for r in rows}  # the file column: full paths
    assert named == {f"test/{'ba'[k % 2]}/test{k}.png" for k in range(4)}
    meta = json.loads((result.path / "meta.json").read_text())  # and the mistakes figure
    confusion = np.asarray(meta["test"]["test_confusion"])
    assert meta["mistakes"]["num_wrong"] == confusion.sum() - np.trace(confusion)
    assert (result.path / meta["mistakes"]["figure"]).exists()
    html = build_report(result.path).read_text(encoding="utf-8")
    assert "Most confident mistakes" in html


def test_mirrored_copies_across_parts_are_found_and_called_mirrored():
    from trainwise.data.task import TaskData

    images = scenes(200, seed=3)
    images[150:160] = images[:10, :, :, ::-1]  # mirrored copies, as a flip trains on them
    data = TaskData(name="photos", kind="image", task="classification", x=images,
                    y=np.arange(200) % 2, class_names=["a", "b"],
                    files=[f"/photos/{'ab'[k % 2]}/{k}.png" for k in range(200)])
    result = plan_split(data, SplitSettings(val_fraction=0.25, test_fraction=0.2, seed=0))
    parts = [set(p.tolist()) for p in (result.train, result.val, result.test)]
    crossing = sum(not any({k, k + 150} <= p for p in parts) for k in range(10))
    near = [f for f in result.findings if f.code == "near_duplicate_images"]
    assert crossing > 0
    assert sum(f.evidence["num_mirrored"] for f in near) == crossing  # each planted pair, once
    assert all("mirrored left-right" in f.message for f in near)
    for f in near:
        for i, j, _ in f.evidence["examples"]:
            assert {i, j} in [{k, k + 150} for k in range(10)]


def jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image.transpose(1, 2, 0)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer)).transpose(2, 0, 1)


@pytest.mark.parametrize("num_folds", [1, 3])
def test_near_copies_under_another_class_are_one_wrong_labels_warning_over_all_parts(num_folds):
    from trainwise.data.task import TaskData

    images, y = scenes(300, seed=5), np.arange(300) % 3
    planted = {(k, 280 + k) for k in range(12)}  # re-encoded copies filed one class over
    for k, copy in planted:
        images[copy], y[copy] = jpeg(images[k]), (y[k] + 1) % 3
    images[270] = jpeg(images[20])  # and one copy under its own class: a leak, not a label
    y[270] = y[20]
    data = TaskData(name="photos", kind="image", task="classification", x=images, y=y,
                    class_names=["a", "b", "c"], files=[f"/p/{k}.png" for k in range(300)])
    result = plan_split(data, SplitSettings(val_fraction=0.25, test_fraction=0.2, seed=0,
                                            num_folds=num_folds))
    [conflict] = [f for f in result.findings if f.code == "near_copy_labels"]  # one (VD8)
    found = {tuple(sorted(pair[:2])) for pair in conflict.evidence["examples"]}
    assert conflict.evidence["num_pairs"] == len(planted) and found <= planted
    part = {}  # the part of each planted row, counted by hand
    for name, rows in (("train", result.train), ("val", result.val), ("test", result.test)):
        part.update(dict.fromkeys(rows.tolist(), "train+val" if num_folds > 1
                                  and name != "test" else name))
    order = ["train", "val", "train+val", "test"]
    expected = {}
    for k, c in planted:
        a, b = sorted((part[k], part[c]), key=order.index)
        key = f"within {a}" if a == b else f"{a} ~ {b}"
        expected[key] = expected.get(key, 0) + 1
    assert conflict.evidence["num_pairs_by_part"] == expected
    assert len(expected) > 1  # seed 0 spreads the planted pairs over several parts
    for f in result.findings:  # a leak warning holds same-label pairs only
        if f.code == "near_duplicate_images":
            assert all(y[i] == y[j] for i, j, _ in f.evidence["examples"])


@pytest.mark.parametrize("augment", ["auto", "none"])
def test_mirror_images_under_two_classes_are_no_wrong_labels(augment):
    """Right arrows and their mirror images as left arrows (review s13 VD3): one warning that
    the classes differ by orientation when training flips, nothing when it does not."""
    from trainwise.data.task import TaskData

    right = scenes(60, seed=7)
    noise = np.random.default_rng(7).integers(-3, 4, right.shape)  # ±10 moves 13 hashes > 4 bits
    left = np.clip(right[..., ::-1].astype(int) + noise, 0, 255).astype(np.uint8)
    data = TaskData(name="arrows", kind="image", task="classification",
                    x=np.concatenate([right, left]), y=np.repeat([0, 1], 60),
                    class_names=["right", "left"],
                    files=[f"/a/{'right' if k < 60 else 'left'}/{k}.png" for k in range(120)])
    findings = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2,
                                              augment=augment)).findings
    assert not [f for f in findings if f.code == "near_copy_labels"]
    mirrored = [f for f in findings if f.code == "mirrored_classes"]
    if augment == "none":  # orientation matters to this user: no mirrored search at all
        assert not mirrored
        assert all(f.evidence.get("num_mirrored", 0) == 0 for f in findings)
        return
    [warned] = mirrored
    assert warned.evidence["num_pairs"] == 60  # each right arrow with its own left arrow
    assert all(j == i + 60 for i, j, _ in warned.evidence["examples"])
    assert warned.evidence["num_pairs_by_classes"] == {"left vs right": 60}
    assert 'data.augment = "none"' in warned.fix


def folder(tmp_path, images: dict[str, np.ndarray]):
    """Save each (H, W) or (H, W, 3) uint8 picture at its relative path; load the folder."""
    root = tmp_path / "set"
    for name, pixels in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / name)
    return load_data(str(root))


def test_a_blank_image_and_resized_or_squashed_ones_are_named_with_their_sizes(tmp_path):
    from trainwise.data.audit import audit

    rng = np.random.default_rng(0)
    images = {f"{c}/{k}.png": rng.integers(0, 255, (16, 16), dtype=np.uint8)
              for c in "ab" for k in range(8)}
    images["b/black.png"] = np.zeros((16, 16), dtype=np.uint8)
    images["a/big.png"] = rng.integers(0, 255, (20, 20), dtype=np.uint8)  # 1:1, resized
    images["b/wide.png"] = rng.integers(0, 255, (8, 32), dtype=np.uint8)  # 4:1, squashed
    findings, _ = audit(folder(tmp_path, images))
    by_code = {f.code: f for f in findings}
    assert by_code["constant_images"].evidence["examples"] == ["b/black.png (0 everywhere)"]
    assert sorted(by_code["resized_images"].evidence["examples"]) == [
        "a/big.png (20x20)", "b/wide.png (8x32)"]
    assert by_code["squashed_images"].evidence["examples"] == ["b/wide.png (8x32)"]
    assert by_code["squashed_images"].severity.value == "warning"


def test_images_stretched_alike_are_a_note_and_only_unlike_ones_are_squashed():
    """60 frames stored 1080x1920 (16:9) and 2 stored 1080x1080, all resized to 64x64 (review
    s13 VD7): the 60 share one distortion (a note); the 2 square ones are the outliers."""
    from trainwise.data.image_checks import image_findings
    from trainwise.data.task import TaskData

    stored = np.array([[3, 1080, 1920]] * 60 + [[3, 1080, 1080]] * 2)
    data = TaskData(name="frames", kind="image", task="classification",
                    x=np.random.default_rng(0).integers(0, 255, (62, 3, 64, 64), dtype=np.uint8),
                    y=np.arange(62) % 2, class_names=["a", "b"],
                    files=[f"/f/c{k % 2}/{k}.jpg" for k in range(62)], stored_shapes=stored)
    by_code = {f.code: f for f in image_findings(data)}
    resized = by_code["resized_images"]
    assert resized.evidence["num_images"] == 62 and resized.evidence["num_stretched_alike"] == 60
    assert resized.evidence["median_aspect_ratio"] == pytest.approx(1920 / 1080, abs=1e-4)
    assert "1.78:1" in resized.message and "stretched alike" in resized.message
    squashed = by_code["squashed_images"]  # 1:1 against the median 16:9: factor 1.78 > 1.5
    assert squashed.evidence["examples"] == ["c0/60.jpg (1080x1080)", "c1/61.jpg (1080x1080)"]
    uniform = TaskData(name="frames", kind="image", task="classification", x=data.x[:60],
                       y=data.y[:60], class_names=["a", "b"], files=data.files[:60],
                       stored_shapes=stored[:60])
    codes = [f.code for f in image_findings(uniform)]
    assert "squashed_images" not in codes and "resized_images" in codes


def test_gray_images_in_one_class_only_are_a_shortcut_and_spread_ones_are_not(tmp_path):
    from trainwise.data.audit import audit

    rng = np.random.default_rng(0)

    def picture(gray: bool) -> np.ndarray:
        return rng.integers(0, 255, (12, 12) if gray else (12, 12, 3), dtype=np.uint8)

    one_class = {f"{c}/{k}.png": picture(c == "b") for c in "ab" for k in range(12)}
    findings, _ = audit(folder(tmp_path / "one", one_class))
    [shortcut] = [f for f in findings if f.code == "conversion_by_class"]
    assert shortcut.evidence["counts_per_class"] == {"a": [0, 12], "b": [12, 12]}
    assert shortcut.evidence["cramers_v"] == 1.0  # the flag predicts the class exactly
    assert "all of them are class b" in shortcut.message and "b/0.png" in shortcut.message
    spread = {f"{c}/{k}.png": picture(k % 2 == 0) for c in "ab" for k in range(12)}
    findings, _ = audit(folder(tmp_path / "spread", spread))
    assert not [f for f in findings if f.code == "conversion_by_class"]
