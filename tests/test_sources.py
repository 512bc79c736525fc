"""Sources: tables, .npz arrays, sequences and image folders load as documented or fail with a
DataError that names the file or column; whatever loading changes is counted in notes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from trainwise.data.errors import DataError
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data


def write_table(tmp_path, frame: pd.DataFrame, suffix: str = ".csv"):
    path = tmp_path / f"t{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.fixture
def visits() -> pd.DataFrame:
    """120 rows: 30 patients x 4 visits, a 40-level text column, a date column."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "patient_id": np.repeat(np.arange(30), 4),
        "visit": pd.date_range("2024-01-01", periods=120, freq="D").strftime("%Y-%m-%d"),
        "ward": [f"w{i % 40}" for i in range(120)],
        "sex": rng.choice(["f", "m"], 120),
        "dose": rng.normal(size=120),
        "label": rng.choice(["sick", "well"], 120)})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_keys_are_inferred_and_kept_out_of_the_features(tmp_path, visits, suffix):
    data = load_data(str(write_table(tmp_path, visits, suffix)), "label")
    assert {(k.column, k.role, k.declared) for k in data.keys} == {
        ("patient_id", "group", False), ("visit", "time", False)}
    assert np.array_equal(data.groups, visits["patient_id"].to_numpy())
    assert data.times.dtype == np.dtype("datetime64[ns]")
    assert data.times[0] == np.datetime64("2024-01-01")
    # 'ward' has 40 levels, 3 rows each: too rare to learn from, so a group candidate too,
    # but patient_id wins by name; ward is one-hot like sex (64 levels at most)
    wards = sorted(visits["ward"].unique())
    assert data.feature_names == ["dose", *[f"ward_{w}" for w in wards], "sex_f", "sex_m"]
    expected = pd.get_dummies(visits[["ward", "sex"]], dtype=np.float32).to_numpy()
    np.testing.assert_array_equal(data.x[:, 1:], expected)
    assert "many_levels_one_hot" in [f.code for f in data.findings]
    assert data.class_names == ["sick", "well"]


def test_declared_and_disabled_keys(tmp_path, visits):
    path = str(write_table(tmp_path, visits))
    data = load_data(path, "label", group_column="none", time_column="none")
    assert data.keys == [] and data.groups is None and data.times is None
    assert "patient_id" in data.feature_names
    data = load_data(path, "label", group_column="patient_id", time_column="visit")
    assert all(k.declared for k in data.keys)


@pytest.mark.parametrize(("change", "match"), [
    (lambda f: f.drop(columns="label"), "target column 'label' is not in"),
    (lambda f: f.assign(label="sick"), "single class"),
    (lambda f: f.assign(dose=1e39), r"column 'dose' holds values up to 1e\+39, beyond float32"),
])
def test_bad_tables_name_the_column(tmp_path, visits, change, match):
    path = tmp_path / "t.parquet"
    frame = change(visits)
    frame.to_parquet(path)
    with pytest.raises(DataError, match=match):
        load_data(str(path), "label")


def test_a_target_mixing_numbers_and_text_is_read_as_a_csv_would(visits):
    # table_data reads a frame as the CSV it would write (review s14 VD7): 1 and 'a' are
    # the classes '1' and 'a', as in the CSV, no longer "mixes value types"
    from trainwise.data.tables import table_data

    data = table_data(visits.assign(label=[1, "a"] * 60), "label")
    assert data.class_names == ["1", "a"]


def test_a_misspelt_target_names_the_closest_column_and_counts_the_rest():
    # the audit's leak.csv shape (P2): 30 features, the default target 'label', and a
    # leaking column last; 'lable' must point at 'label', never at the last column
    columns = {f"feature {i}": [0.0, 1.0] for i in range(30)}
    frame = pd.DataFrame({**columns, "label": [0, 1], "followup_outcome": [0, 1]})
    with pytest.raises(DataError) as error:
        table_data(frame, "lable")
    message = str(error.value)
    assert "Did you mean 'label'?" in message and "data.target='\"label\"'" in message
    assert "followup_outcome\"" not in message  # the leak is never the suggestion
    assert "32 columns:" in message and "feature 19 (and 12 more)" in message
    # nothing close: the last column is offered as a guess, and called one
    with pytest.raises(DataError, match=r"No column is close to 'y'; a target is often the "
                                        r"last column \('b'\), but check"):
        table_data(pd.DataFrame({"alpha": [0, 1], "b": [0, 1]}), "y")


def test_unreadable_and_unknown_files(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="could not read .*broken.parquet"):
        load_data(str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load_data(str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match="does not exist"):  # a .txt is a table (audit s14 Z1)
        load_data(str(tmp_path / "data.txt"))
    with pytest.raises(DataError, match="unknown data source"):
        load_data(str(tmp_path / "data.xlsx"))



def test_the_loader_and_the_config_check_say_alike_what_data_source_takes(tmp_path, monkeypatch):
    """Review VO10: two wordings had drifted (the list's order; the config's lost the
    spreadsheet advice). x.xlsx passes the config check (a suffix) and reaches the loader."""
    from trainwise.config import ConfigError, load_config

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as loader:
        load_data(str(tmp_path / "data.xlsx"))
    with pytest.raises(ConfigError) as config:
        load_config(None, ['data.source="digts"'])
    allowed = ("use one of 'mnist1d', 'digits', 'breast_cancer', 'wine', a data file (.csv "
               "(also .tsv, .txt; each also compressed: .gz, .bz2, .zip, .xz), .parquet, .npz), "
               "or a folder with one sub-folder of images per class (a spreadsheet: save the "
               "sheet as CSV, in Excel 'CSV UTF-8')")
    assert allowed in " ".join(str(loader.value).split())
    assert allowed in " ".join(str(config.value).split())


@pytest.mark.parametrize("name", ["nosuch.csv", "nosuch.npz"])
def test_a_missing_data_file_is_said_alike_by_every_reader(tmp_path, monkeypatch, name):
    """Review s13 VA5: the table and .npz readers had two wordings, both telling a Python
    caller (who has no config file) to check "your config"; now one message, naming where
    it was looked for and every place data.source is set."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as raised:
        load_data(name)
    said = " ".join(str(raised.value).split())
    assert said == (f"data file '{name}' (data.source) does not exist (looked for from "
                    f"'{tmp_path}'). Check the spelling and folder of data.source where it "
                    "was set: the config file, a --set data.source=... override, or the dict "
                    "or Config given to trainwise.run.")


def test_a_python_run_on_a_missing_data_file_makes_no_run_folder(tmp_path, monkeypatch):
    """Review s13 VA5: trainwise.run({"data": {"source": "nosuch.npz"}}) made a run folder
    and a report for a run that could not start."""
    import trainwise
    from trainwise.config import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"'nosuch.npz' \(data.source\) does not exist"):
        trainwise.run({"data": {"source": "nosuch.npz"}, "run": {"out_dir": "runs"}})
    assert list(tmp_path.iterdir()) == []


def test_missing_targets_are_dropped_and_counted(tmp_path, visits):
    visits.loc[[3, 7], "label"] = None
    data = load_data(str(write_table(tmp_path, visits)), "label")
    dropped = [f for f in data.findings if f.code == "target_missing"]
    assert len(data.y) == 118 and dropped[0].severity.value == "warning"
    assert dropped[0].evidence["rows"] == [3, 7] and dropped[0].evidence["num_rows"] == 2


def save_npz(tmp_path, **arrays):
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_vectors_with_declared_keys(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)), np.array(["a", "b"] * 25)
    times = np.arange(50).astype("datetime64[D]")
    data = load_data(save_npz(tmp_path, X=x, y=y, groups=np.arange(50) // 5, times=times))
    assert data.kind == "vector" and data.x.dtype == np.float32 and data.x.shape == (50, 4)
    assert data.class_names == ["a", "b"] and list(data.y[:2]) == [0, 1]
    assert {(k.role, k.declared) for k in data.keys} == {("group", True), ("time", True)}
    assert data.times.dtype.kind == "M"
    assert load_data(save_npz(tmp_path, X=x, y=y, groups=np.arange(50) // 5),
                     group_column="none").groups is None
    assert load_data(save_npz(tmp_path, X=x, y=y, groups=np.arange(50) // 5),
                     group_column="patient").groups is not None
    with pytest.raises(DataError, match="'patient' names a column, but .* no 'groups' array"):
        load_data(save_npz(tmp_path, X=x, y=y), group_column="patient")


def test_sequences_are_channels_first(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 25, 3))  # (N, T, C)
    data = load_data(save_npz(tmp_path, X=x, y=np.arange(40) % 2))
    assert data.kind == "sequence" and data.x.shape == (40, 3, 25)
    assert np.allclose(data.x[7, 2], x[7, :, 2])
    single = load_data(save_npz(tmp_path, X=x[:, :, 0], y=np.arange(40) % 2), kind="sequence")
    assert single.x.shape == (40, 1, 25) and np.allclose(single.x[:, 0], x[:, :, 0])


def test_a_3d_array_says_it_was_read_as_sequences(tmp_path):
    x, y = np.zeros((12, 8, 8)), np.arange(12) % 2  # (N, 8, 8): gray images or sequences
    data = load_data(save_npz(tmp_path, X=x, y=y))
    [found] = [f for f in data.findings if f.code == "read_as_sequences"]
    assert "12 sequences of 8 steps with 8 channels" in found.message
    assert 'data.kind = "image"' in found.fix and 'data.kind = "image"' in data.notes[-1]
    oblong = load_data(save_npz(tmp_path, X=np.zeros((12, 25, 3)), y=y))  # the usual (N, T, C)
    assert [f.code for f in oblong.findings] == ["read_as_sequences"] and not oblong.notes
    for kind in ("image", "sequence"):  # chosen by the user: nothing to say
        assert not load_data(save_npz(tmp_path, X=x, y=y), kind=kind).findings


def test_the_sequence_note_says_both_layouts_and_doubts_few_steps(tmp_path):
    y = np.arange(12) % 2
    usual = load_data(save_npz(tmp_path, X=np.zeros((12, 50, 3)), y=y))
    [found] = usual.findings
    assert found.severity.value == "info" and "stored (N, T, C)" in found.message
    assert "given to the model as (N, C, T) = (B, 3, 50)" in found.message
    assert usual.x.shape == (12, 3, 50)
    swapped = load_data(save_npz(tmp_path, X=np.zeros((12, 3, 50)), y=y))  # stored (N, C, T)
    [found] = swapped.findings
    assert found.severity.value == "warning" and found.code == "sequence_axes_swapped"
    assert "3 steps of 50 channels" in found.message and "X.transpose(0, 2, 1)" in found.fix


def test_channel_last_images_and_test_part(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 8, 9, 3), dtype=np.uint8)  # (N, H, W, C)
    data = load_data(save_npz(tmp_path, X=x, y=np.arange(30) % 3, X_test=x[:6],
                              y_test=np.arange(6) % 3))
    assert data.kind == "image" and data.x.dtype == np.uint8 and data.x.shape == (30, 3, 8, 9)
    assert np.array_equal(data.x[4, 1], x[4, :, :, 1]) and data.x_test.shape == (6, 3, 8, 9)


@pytest.mark.parametrize(("train", "test"), [(("X_train", "y_train"), ("X_test", "y_test")),
                                             (("x_train", "Y_train"), ("x_test", "Y_test"))])
def test_keras_style_train_names(tmp_path, train, test):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    data = load_data(save_npz(tmp_path, **{train[0]: x, train[1]: y, test[0]: x[:4],
                                           test[1]: y[:4]}))
    assert np.allclose(data.x, x) and list(data.y) == list(y)
    assert np.allclose(data.x_test, x[:4]) and list(data.y_test) == [0, 1, 0, 1]


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_npz_images_are_resized_to_image_size(tmp_path, dtype):
    from trainwise.data.images import resize_images

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10, 12, 12, 3)).astype(dtype)  # (N, H, W, C)
    path = save_npz(tmp_path, X=x, y=np.arange(10) % 2, X_test=x[:3], y_test=np.arange(3) % 2)
    data = load_data(path, image_size=6)
    assert data.x.shape == (10, 3, 6, 6) and data.x_test.shape == (3, 3, 6, 6)
    assert data.x.dtype == (np.uint8 if dtype == np.uint8 else np.float32)
    assert "13 images resized from 12x12 to 6x6 (data.image_size)" in data.notes
    # the reference: Pillow's antialiased bilinear resize, as folders' images get
    pillow = np.asarray(Image.fromarray(x[4, :, :, 0].astype(np.float32), mode="F").resize(
        (6, 6), Image.Resampling.BILINEAR))
    assert np.abs(data.x[4, 0].astype(np.float64) - pillow).max() <= 0.51
    whole = load_data(path).x
    assert np.array_equal(resize_images(whole, 6, chunk=3), resize_images(whole, 6))
    # a non-square size (a folder run's photos), chunked as the square one: the same numbers
    # as one resize of the whole set
    import torch

    from trainwise.data.images import resize

    assert np.array_equal(resize_images(whole, (5, 7), chunk=3),
                          resize(torch.as_tensor(whole), (5, 7)).numpy())


def test_image_size_on_data_that_are_not_images_is_a_warning(tmp_path, visits):
    sequences = load_data(save_npz(tmp_path, X=np.zeros((12, 8, 8)), y=np.arange(12) % 2),
                          image_size=4)
    assert sequences.x.shape == (12, 8, 8)
    [found] = [f for f in sequences.findings if f.code == "image_size_unused"]
    assert "read as sequence rows" in found.message and 'data.kind = "image"' in found.fix
    table = load_data(str(write_table(tmp_path, visits)), "label", image_size=4)
    assert "image_size_unused" in [f.code for f in table.findings]
    assert "image_size_unused" not in [f.code for f in load_data(str(write_table(
        tmp_path, visits)), "label").findings]


@pytest.mark.parametrize(("arrays", "match"), [
    ({"inputs": np.zeros((4, 2)), "y": np.arange(4)}, "no array named X or x .*holds: inputs, y"),
    ({"X": np.zeros((4, 2)), "y": np.arange(3)}, "one label or value per row"),
    ({"X": np.zeros((4, 2)), "y": np.zeros(4)}, "single class"),
    ({"X": np.zeros(4), "y": np.arange(4) % 2}, "Reshape a single feature"),
    ({"X": np.zeros((4, 2)), "y": np.arange(4) % 2, "groups": np.arange(3)}, "one per row"),
    ({"X": np.zeros((4, 2)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 2))}, "both or"),
])
def test_bad_npz_says_what_and_how(tmp_path, arrays, match):
    with pytest.raises(DataError, match=match):
        load_data(save_npz(tmp_path, **arrays))


def image_folder(tmp_path, sizes=((12, 10),) * 4, extra=True):
    root = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            channels = 1 if (label == "dog" and i == 0) else 3
            pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(
                root / label / f"{i}.png")
    if extra:
        (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_decodes_every_file(tmp_path):
    root = image_folder(tmp_path, sizes=((12, 10), (12, 10), (12, 10), (20, 16)))
    data = load_data(str(root))
    assert data.kind == "image" and data.class_names == ["cat", "dog"]
    assert data.x.shape == (8, 3, 12, 10) and data.x.dtype == np.uint8
    assert list(data.y) == [0, 0, 0, 0, 1, 1, 1, 1] and data.files[0].endswith("cat/0.png")
    stored = np.asarray(Image.open(root / "cat" / "1.png"))  # (H, W, C)
    assert np.array_equal(data.x[1], stored.transpose(2, 0, 1))
    assert any("skipped 1 files" in n and "notes.txt" in n for n in data.notes)
    assert any("2 images resized to 12x10" in n for n in data.notes)
    assert any("1 gray images repeated to RGB" in n for n in data.notes)
    assert load_data(str(root), image_size=8).x.shape == (8, 3, 8, 8)


def test_undecodable_images_are_an_error_naming_them(tmp_path):
    root = image_folder(tmp_path, extra=False)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"1 of 9 images could not be decoded: .*broken\.png"):
        load_data(str(root))


def test_image_folder_needs_two_classes(tmp_path):
    (tmp_path / "only" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_data(str(tmp_path / "only"))


def test_image_grid_figure(tmp_path):
    from trainwise.data.figures import plot_samples

    data = load_data(str(image_folder(tmp_path)))
    path = plot_samples(data, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_saved_index_is_dropped_with_a_warning(tmp_path):
    """On a file sorted by label, the saved index would give the label away."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "label": np.repeat([0, 1], 30)})
    frame.assign(order=np.arange(60) * 3 + 7).to_csv(tmp_path / "t.csv")  # index saved
    data = load_data(str(tmp_path / "t.csv"))
    assert data.feature_names == ["a", "order"]
    by_code = {f.code: f for f in data.findings}
    dropped, ordered = by_code["row_id_dropped"], by_code["ordered_id_column"]
    assert dropped.severity.value == "warning" and dropped.evidence["column"] == "Unnamed: 0"
    assert "index=False" in dropped.fix
    assert ordered.evidence["column"] == "order" and "split.time_column" in ordered.fix


def test_an_identifier_column_left_out_is_a_warning():
    """A dropped column is a feature the model never sees: said where the user looks."""
    from trainwise.data.tables import table_data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "account_number": rng.permutation(60),
                          "label": np.repeat([0, 1], 30)})
    data = table_data(frame, "label")
    (dropped,) = [f for f in data.findings if f.code == "row_id_dropped"]
    assert dropped.severity.value == "warning" and data.feature_names == ["a"]


def test_many_level_text_is_one_hot_up_to_64_then_the_63_most_frequent():
    rng = np.random.default_rng(0)
    n = 3000
    city = rng.choice([f"c{i:02d}" for i in range(40)], n)
    # 100 products with decreasing frequency: 63 kept, 37 share '(other)'
    product = rng.choice([f"p{i:03d}" for i in range(100)], n, p=np.arange(100, 0, -1) / 5050)
    frame = pd.DataFrame({"city": city, "product": product, "label": rng.integers(0, 2, n)})
    data = table_data(frame, "label")
    top = frame["product"].value_counts().index[:63]
    grouped = frame["product"].where(frame["product"].isin(top), "(other)")
    expected = pd.get_dummies(frame.assign(product=grouped)[["city", "product"]],
                              dtype=np.float32)
    assert data.feature_names == list(expected.columns)
    np.testing.assert_array_equal(data.x, expected.to_numpy())
    assert data.x.shape[1] == 40 + 64
    [note] = [f for f in data.findings if f.code == "rare_levels_grouped"]
    assert f"{frame['product'].nunique()} categories: its 63 most frequent" in note.message
    assert f"({int((grouped == '(other)').sum()):,} rows)" in note.message
    assert "split.group_column" in note.fix
