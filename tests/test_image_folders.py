"""Image folders as users unpack them: train/ + test/ split folders, images nested below a
class, macOS and notebook junk, gray pictures saved as RGB."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from trainwise.data.errors import DataError
from trainwise.data.sources import load_data


def save_images(folder, count: int, *, value: int = 0, mode: str = "L", size=(6, 6)):
    """`count` PNGs of constant-ish pixels (value + i), so each file's row is recognisable."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.full((*size, 3) if mode == "RGB" else size, value + i, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def test_train_and_test_folders_are_the_pool_and_the_test_part(tmp_path):
    root = tmp_path / "set"
    for name, start in (("cat", 0), ("dog", 100)):
        save_images(root / "train" / name, 4, value=start)
        save_images(root / "test" / name, 2, value=start + 50)
    data = load_data(str(root))
    assert data.class_names == ["cat", "dog"]  # not "test" and "train"
    assert data.x.shape == (8, 1, 6, 6) and list(data.y) == [0] * 4 + [1] * 4
    assert data.x_test.shape == (4, 1, 6, 6) and list(data.y_test) == [0, 0, 1, 1]
    assert data.x_test[2, 0, 0, 0] == 150 and data.x[5, 0, 0, 0] == 101
    assert all("/train/" in f for f in data.files)
    [found] = [f for f in data.findings if f.code == "split_folders"]
    assert "train/ (8 images)" in found.message and "test/ (4 images)" in found.message
    assert data.notes[0] == found.message.rstrip(".")  # the terminal prints notes


def test_a_val_folder_is_merged_into_the_pool(tmp_path):
    root = tmp_path / "set"
    for split, count in (("Train", 3), ("valid", 2)):
        for name in ("a", "b"):
            save_images(root / split / name, count)
    data = load_data(str(root))
    assert data.x.shape[0] == 10 and data.x_test is None
    [found] = [f for f in data.findings if f.code == "split_folders"]
    assert "Train/, valid/ (10 images)" in found.message and "merged" in found.message
    assert "no test/ folder" in found.message


def test_a_test_class_missing_from_training_is_an_error(tmp_path):
    root = tmp_path / "set"
    for name in ("a", "b"):
        save_images(root / "train" / name, 2)
    save_images(root / "test" / "c", 2)
    with pytest.raises(DataError, match=r"test folder .* has class folders \['c'\]"):
        load_data(str(root))


@pytest.mark.parametrize("layout", [("animals/cat", "animals/dog", "plants/fern"),
                                    ("test/a", "test/b")])
def test_other_folders_without_images_are_an_error(tmp_path, layout):
    for folder in layout:
        save_images(tmp_path / "set" / folder, 1)
    with pytest.raises(DataError, match="hold only folders, no images.*Point data.source at"):
        load_data(str(tmp_path / "set"))


def test_images_below_a_class_folder_are_kept_and_counted(tmp_path):
    root = tmp_path / "set"
    save_images(root / "cat", 2)
    save_images(root / "cat" / "more" / "deeper", 3)
    save_images(root / "dog", 2)
    data = load_data(str(root))
    assert list(data.y) == [0] * 5 + [1] * 2
    assert any(n.startswith("3 images in sub-folders of a class folder") and
               "cat/more/deeper/0.png" in n for n in data.notes)


def test_hidden_and_macos_entries_are_skipped_at_every_depth(tmp_path):
    root = tmp_path / "set"
    save_images(root / "cat", 2)
    save_images(root / "dog", 2)
    save_images(root / "dog" / ".ipynb_checkpoints", 1)  # a real image: a duplicate
    save_images(root / "__MACOSX" / "dog", 1)
    (root / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # undecodable
    (root / ".hidden_class").mkdir()
    data = load_data(str(root))
    assert data.class_names == ["cat", "dog"] and len(data.y) == 4
    assert not any("ipynb" in f or "MACOSX" in f for f in data.files)
    [note] = [n for n in data.notes if n.startswith("skipped")]
    assert "4 hidden or system files and folders" in note  # ._0.png, 2 folders, __MACOSX/


def test_gray_saved_as_rgb_keeps_a_gray_folder_one_channel(tmp_path):
    root = tmp_path / "set"
    save_images(root / "a", 3, value=10)
    save_images(root / "b", 3, value=90, mode="RGB")  # R == G == B: gray JPEGs saved as RGB
    data = load_data(str(root))
    assert data.x.shape == (6, 1, 6, 6) and data.x[4, 0, 0, 0] == 91
    assert any(n.startswith("3 RGB images with three equal channels") for n in data.notes)
    colour = np.zeros((6, 6, 3), dtype=np.uint8)
    colour[..., 0] = 255  # one really coloured image makes the folder RGB
    Image.fromarray(colour).save(root / "b" / "red.png")
    data = load_data(str(root))
    assert data.x.shape == (7, 3, 6, 6)
    assert any(n.startswith("3 gray images repeated to RGB") for n in data.notes)


def test_the_recipe_tests_on_the_test_folder_and_prints_the_notes(tmp_path):
    import trainwise
    from trainwise.console import console

    root = tmp_path / "set"
    for name, start in (("cat", 0), ("dog", 100)):
        save_images(root / "train" / name, 10, value=start)
        save_images(root / "test" / name, 3, value=start + 50)
    (root / "train" / "README.txt").write_text("not an image")
    with console.capture() as captured:
        result = trainwise.run({"data": {"source": str(root)}, "run": {"out_dir": str(tmp_path)}},
                               until="split", report=False)
    assert result.ok, result.verdict
    assert (result.path / "split.npz").exists()
    sizes = json.loads((result.path / "meta.json").read_text())["split"]["sizes"]
    assert sizes["test"] == 6 and sizes["train"] + sizes["val"] == 20
    assert "note skipped 1 files that are not images (e.g. train/README.txt)" in \
        " ".join(captured.get().split())


def patients_folder(tmp_path, rows: list[str] | None = None):
    """cat/ and dog/, 6 images each; groups.csv puts every 2 images of a class in a patient."""
    root = tmp_path / "set"
    save_images(root / "cat", 6)
    save_images(root / "dog", 6, value=100)
    rows = rows if rows is not None else [f"{c}/{i}.png,{c}{i // 2}" for c in ("cat", "dog")
                                          for i in range(6)]
    (root / "groups.csv").write_text("file,patient\n" + "\n".join(rows) + "\n")
    return root


def test_groups_csv_gives_image_folders_a_group_key(tmp_path):
    from trainwise.data.plan import SplitSettings, plan_split

    root = patients_folder(tmp_path)
    data = load_data(str(root))
    assert list(data.groups[:4]) == ["cat0", "cat0", "cat1", "cat1"]
    assert [(k.column, k.role, k.declared) for k in data.keys] == [("patient", "group", True)]
    assert any(n.startswith("groups from groups.csv column 'patient': 6 groups over 12") for
               n in data.notes)
    assert not any("skipped" in n for n in data.notes)  # groups.csv was read, not skipped
    result = plan_split(data, SplitSettings(val_fraction=0.25, test_fraction=0.25))
    parts = [set(data.groups[rows]) for rows in (result.train, result.val, result.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert load_data(str(root), group_column="patient").groups is not None
    assert load_data(str(root), group_column="none").groups is None


@pytest.mark.parametrize(("change", "column", "match"), [
    (None, "patient", "has no columns. Add '.*groups.csv' with a 'file' column"),
    (["cat/0.png,p1"], "", r"no group for 11 of 12 images \(e.g. cat/1.png"),
    ([f"{c}/{i}.png,{c * (i > 0)}" for c in ("cat", "dog") for i in range(6)], "",
     r"no group for 2 of 12 images \(e.g. cat/0.png, dog/0.png\)"),
    (["./cat/0.png,p1", "cat/0.png,p2"], "", "lists 1 files more than once"),
    ([], "visit", r"needs a 'file' column .* and the column 'visit'"),
])
def test_group_columns_an_image_folder_cannot_give_are_errors(tmp_path, change, column, match):
    root = patients_folder(tmp_path, change)
    if change is None:
        (root / "groups.csv").unlink()
    with pytest.raises(DataError, match=match):
        load_data(str(root), group_column=column)
