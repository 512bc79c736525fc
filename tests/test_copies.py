"""Exact copies stay in one part of trainwise's own split (row, group and k-fold splits), with
an info saying how many; time splits leave them where time puts them and say so; contents
too common to be copies of a file are split as rows and still reported."""

from __future__ import annotations

import numpy as np
import pytest

from trainwise.data.audit import audit
from trainwise.data.copies import find_copies, tie_codes
from trainwise.data.plan import SplitSettings, plan_split
from trainwise.data.split import split_indices
from trainwise.data.task import TaskData


def with_copies(num_rows: int = 400, num_copied: int = 100, seed: int = 0) -> TaskData:
    """(num_rows, 6) vectors, 3 classes; the last num_copied rows copy rows 0.. (pairs), rows
    150 and 160 copy row 0 too (a content on 4 rows), and the copy of row 1 has another
    label (a conflict)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_rows, 6)).astype(np.float32)
    y = rng.integers(0, 3, num_rows)
    copies = np.arange(num_rows - num_copied, num_rows)
    x[copies], y[copies] = x[: len(copies)], y[: len(copies)]
    x[[150, 160]], y[[150, 160]] = x[0], y[0]
    if num_copied > 1:
        y[copies[1]] = (y[1] + 1) % 3  # the same input with two labels
    return TaskData(name="t", kind="vector", task="classification", x=x, y=y,
                    class_names=["a", "b", "c"])


def parts_of(result) -> list[np.ndarray]:
    if result.folds:
        pool = np.setdiff1d(np.arange(result.train.size + result.val.size + result.test.size),
                            result.test)
        return [pool[f.val] for f in result.folds] + [result.test]
    return [result.train, result.val, result.test]


def assert_contents_in_one_part(data: TaskData, parts: list[np.ndarray]) -> None:
    hashes = data.row_hashes()
    for k, part in enumerate(parts):
        others = np.concatenate([p for j, p in enumerate(parts) if j != k])
        assert not set(hashes[part].tolist()) & set(hashes[others].tolist())


def codes(findings) -> list[str]:
    return [f.code for f in findings]


@pytest.mark.parametrize("strategy", ["auto", "stratified", "random"])
@pytest.mark.parametrize("num_folds", [1, 3])
def test_copies_land_in_one_part_and_the_split_says_how_many(strategy, num_folds):
    data = with_copies()
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2,
                                            strategy=strategy, num_folds=num_folds))
    assert result.strategy == ("stratified" if strategy == "auto" else strategy)
    assert "cross_split_duplicates" not in codes(result.findings)
    assert_contents_in_one_part(data, parts_of(result))
    [kept] = [f for f in result.findings if f.code == "copies_kept_together"]
    assert kept.severity == "info" and kept.evidence["num_rows"] == 2 * 99 + 4
    assert kept.evidence["num_contents"] == 100 and kept.evidence["num_left"] == 0
    assert "202 rows have the same inputs as another row (100 distinct inputs)" in kept.message
    assert abs(len(result.test) - 80) <= 2  # still sized in samples
    if strategy != "random":  # and stratified: val's class shares as the pool's
        shares = np.bincount(data.y[result.val], minlength=3) / len(result.val)
        pooled = np.bincount(data.y[np.r_[result.train, result.val]], minlength=3)
        assert np.abs(shares - pooled / pooled.sum()).max() <= 0.03


def test_conflicting_copies_are_kept_together_and_still_reported_by_the_audit():
    data = with_copies()
    findings, _ = audit(data)
    assert "conflicting_labels" in codes(findings)
    result = plan_split(data, SplitSettings())
    sides = [k for k, part in enumerate(parts_of(result)) for row in (1, 301) if row in part]
    assert data.y[1] != data.y[301] and len(sides) == 2
    assert len(set(sides)) == 1


def test_a_declared_group_key_is_joined_through_copies():
    data = with_copies()
    data.groups = np.repeat(np.arange(100), 4)  # rows 0..3 one group; copies cross groups
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    assert result.strategy == "stratified_group"
    assert not {"cross_split_duplicates", "shared_groups"} & set(codes(result.findings))
    assert_contents_in_one_part(data, parts_of(result))
    [kept] = [f for f in result.findings if f.code == "copies_kept_together"]
    assert kept.evidence["num_groups"] == 100 > kept.evidence["num_joined_groups"]
    assert "groups became" in kept.message


def test_a_time_split_keeps_time_order_and_says_copies_were_not_moved():
    data = with_copies()
    data.times = np.random.default_rng(1).permutation(len(data.y)).astype(np.float64)
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    assert result.strategy == "time"
    assert "time_overlap" not in codes(result.findings)
    [note] = [f for f in result.findings if f.code == "copies_not_kept_together"]
    assert "time split" in note.message and "copies_kept_together" not in codes(result.findings)
    # reported, not hidden: at distinct times they are readings, an info (audit s13 F1)
    assert "inputs_repeat_over_time" in codes(result.findings)


def test_contents_too_common_to_be_copies_split_as_rows_and_stay_reported():
    data = with_copies(num_rows=300, num_copied=0)  # row 0 on 3 rows
    data.x[100:120] = data.x[99]  # one content on 21 rows of 300: over max(5, 1%)
    data.x[200], data.x[201] = data.x[250], data.x[251]  # and two pairs
    copies = find_copies(data.row_hashes())
    assert copies is not None and (copies.num_rows, copies.num_left) == (3 + 4, 1)
    result = plan_split(data, SplitSettings())
    [kept] = [f for f in result.findings if f.code == "copies_kept_together"]
    assert "1 inputs held by more than 5 rows" in kept.message
    assert "cross_split_duplicates" in codes(result.findings)  # the 21 straddle, reported
    parts = parts_of(result)
    for pair in ((200, 250), (201, 251), (0, 150), (0, 160)):
        assert len({k for k, part in enumerate(parts) for row in pair if row in part}) == 1


def test_without_copies_a_split_is_drawn_exactly_as_before():
    y = np.random.default_rng(0).integers(0, 3, 500)
    assert tie_codes(np.arange(500)) is None  # every row its own content: nothing to tie
    for strategy in ("random", "stratified"):
        plain = split_indices(y, val_fraction=0.2, strategy=strategy, seed=4)
        tied = split_indices(y, val_fraction=0.2, strategy=strategy, seed=4,
                             ties=np.arange(500)[::-1])
        assert plain.fingerprint == tied.fingerprint and tied.strategy == strategy
    data = TaskData(name="t", kind="vector", task="classification",
                    x=np.random.default_rng(0).normal(size=(500, 4)), y=y,
                    class_names=["a", "b", "c"])
    assert find_copies(data.row_hashes()) is None
    assert not {"copies_kept_together", "copies_not_kept_together"} & set(
        codes(plan_split(data, SplitSettings()).findings))


def test_join_links_groups_through_shared_contents():
    from trainwise.data.copies import join

    groups = np.array([0, 0, 1, 2, 3, 3])
    ties = np.array([0, 1, 1, 2, 3, 4])  # rows 1 and 2 hold one content: groups 0, 1 join
    assert join(groups, ties).tolist() == [0, 0, 0, 1, 2, 2]
    assert join(groups, np.arange(6)).tolist() == groups.tolist()  # nothing shared


def write_folder(root, copies: dict[str, str]) -> None:
    """3 classes x 30 random 8x8 gray PNGs, plus copies {new path: existing path}."""
    import shutil

    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "eel"):
        (root / name).mkdir(parents=True)
        for k in range(30):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    for new, old in copies.items():
        shutil.copy(root / old, root / new)


def test_an_image_folder_with_copied_files_passes_the_split_stage(tmp_path):
    """The audit's messy/ and dups/ folders: the run stopped at the split stage on copies
    trainwise's own split had scattered, with a fix a folder user could not follow."""
    import trainwise

    copied = {f"cat/copy{k}.png": f"cat/{k}.png" for k in range(12)}
    copied["dog/from_cat.png"] = "cat/20.png"  # the same picture under two labels
    write_folder(tmp_path / "pets", copied)
    result = trainwise.run({"data": {"source": str(tmp_path / "pets")},
                            "run": {"out_dir": str(tmp_path), "threads": 1}},
                           until="split", report=False)
    found = {f.code: f for f in result.findings}
    assert "cross_split_duplicates" not in found and "conflicting_labels" in found
    assert found["copies_kept_together"].evidence["num_rows"] == 26
    saved = np.load(result.path / "split.npz")
    data = trainwise.load_data(str(tmp_path / "pets"))
    hashes = data.row_hashes()
    parts = [set(hashes[saved[p]].tolist()) for p in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_copies_left_to_straddle_are_named_by_their_files():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 1, 6, 6), dtype=np.uint8)
    x[:12] = 0  # 12 blank images: more than max(5, 1%) rows, so not kept together
    y = np.arange(300) % 3
    data = TaskData(name="pets", kind="image", task="classification", x=x, y=y,
                    class_names=["a", "b", "c"],
                    files=[f"/data/pets/{'abc'[c]}/{k}.png" for k, c in enumerate(y)])
    result = plan_split(data, SplitSettings())
    dups = [f for f in result.findings if f.code == "cross_split_duplicates"]
    assert dups
    for dup in dups:
        examples = next(v for k, v in dup.evidence.items() if k.startswith("examples_"))
        assert dup.evidence["example_files"] == [[f"{'abc'[i % 3]}/{i}.png" for i in pair]
                                                 for pair in examples]
        assert " = ".join(dup.evidence["example_files"][0]) in dup.message
        # equal inputs are not always copies (12 blank images with 3 labels): say what is known
        assert "rows have the same inputs as" in dup.message and "coarse features" in dup.fix
