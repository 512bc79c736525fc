"""trainwise.predict on images (audit s13 I1, I11): a folder or image files decoded as the
run's folder loader decoded its own, and arrays given the loader's conversions (gray saved
as RGB read as one channel, (N, H, W) gray, other sizes resized). The reference is the
loader itself: the pixels predict reads from a file are the pixels the run trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import trainwise
from trainwise.cli import main
from trainwise.data.errors import DataError
from trainwise.data.images import resize_images
from trainwise.data.sources import load_data
from trainwise.prediction_images import read_images

QUICK = ["train.max_epochs=2", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=16"]


def _folder(root):
    """Two classes of 8x8 gray digits-like blobs saved as gray, as RGB with three equal
    channels, as gray + alpha, and two at 12x12 (resized by the loader)."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(16):
            size = 12 if i < 2 else 8
            pixels = rng.integers(0, 90, (size, size)).astype(np.uint8)
            pixels[: size // 2] += 120 if label == "b" else 0
            image = Image.fromarray(pixels)
            if i % 3 == 1:
                image = image.convert("RGB")
            elif i % 3 == 2:
                image = image.convert("LA")
            image.save(root / label / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = _folder(tmp_path_factory.mktemp("imgs") / "set")
    result = trainwise.run(report=False, overrides=[
        *QUICK, f"run.out_dir=\"{root.parent}\"", f"data.source=\"{root}\""])
    assert result.stopped_at is None or result.ok, result.verdict
    return result, root, load_data(str(root))


def test_a_folder_is_decoded_to_the_pixels_the_loader_trained_on(tmp_path):
    root = _folder(tmp_path / "set")
    data = load_data(str(root))
    with pytest.warns(UserWarning, match=r"4 images resized to 8x8"):
        read = read_images(root, data.x.shape[1:])
    row_of = {f: k for k, f in enumerate(read.files)}
    np.testing.assert_array_equal(read.pixels[[row_of[f] for f in data.files]], data.x)


def test_cli_predict_scores_a_folder_and_an_image_file_with_a_file_column(image_run,
                                                                          tmp_path):
    result, root, data = image_run
    out = tmp_path / "p.csv"
    assert main(["predict", str(result.path), str(root), "--out", str(out)]) == 0
    written = pd.read_csv(out)
    assert list(written.columns[:3]) == ["row", "file", "prediction"]
    assert len(written) == len(data.files) + (0 if data.x_test is None else len(data.x_test))
    reference = trainwise.predict(result.path, data.x)  # the loader's own pixels
    by_file = written.set_index("file").loc[data.files]
    np.testing.assert_allclose(by_file["probability_a"], reference["probability_a"],
                               rtol=1e-5)
    one = tmp_path / "one.csv"
    assert main(["predict", str(result.path), data.files[0], "--out", str(one)]) == 0
    assert pd.read_csv(one)["file"].tolist() == [data.files[0]]


def test_arrays_get_the_loaders_channel_and_size_conversions(image_run):
    result, _, data = image_run
    gray = data.x[:6]  # (6, 1, 8, 8) uint8, as trained on
    reference = trainwise.predict(result.path, gray)
    pd.testing.assert_frame_equal(trainwise.predict(result.path, gray[:, 0]), reference)
    rgb = np.repeat(gray, 3, axis=1)  # gray saved as RGB: read as one channel
    pd.testing.assert_frame_equal(trainwise.predict(result.path, rgb), reference)
    pd.testing.assert_frame_equal(trainwise.predict(result.path, rgb.transpose(0, 2, 3, 1)),
                                  reference)
    big = np.repeat(np.repeat(gray, 2, axis=2), 2, axis=3)  # (6, 1, 16, 16)
    with pytest.warns(UserWarning, match=r"6 images of 16x16 resized to 8x8"):
        resized = trainwise.predict(result.path, big)
    pd.testing.assert_frame_equal(resized, trainwise.predict(result.path,
                                                             resize_images(big, 8)))


def test_a_folder_for_a_run_that_read_no_images_is_called_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (80, 3)).astype(np.float32), rng.integers(0, 2, 80)
    result = trainwise.run(data=(x, y), report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    with pytest.raises(DataError, match=r"'.*' is a folder; this run read vector data"):
        trainwise.predict(result.path, tmp_path)
    with pytest.raises(DataError, match=r"one row shaped \(3,\) without the row axis"):
        trainwise.predict(result.path, x[0])


def test_cli_predict_says_where_it_wrote_and_that_it_replaced_a_file(image_run, tmp_path,
                                                                     monkeypatch, capsys):
    """Audit s13 I14: the default ./predictions.csv was overwritten without a word."""
    result, root, _ = image_run
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(result.path), str(root)]) == 0
    first = " ".join(capsys.readouterr().err.split())
    assert f"to {tmp_path / 'predictions.csv'}." in first and "replaced" not in first
    assert main(["predict", str(result.path), str(root)]) == 0
    assert "It replaced the older file of that name" in " ".join(
        capsys.readouterr().err.split())


def test_an_npz_image_run_refuses_arrays_its_loader_never_converted(tmp_path):
    # review s13 VA2: a (3, 32, 32, 3) colour batch given to a gray 8x8 .npz run was converted
    # to gray and resized, and scored at 0.93, while the run's loader did neither
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    x = rng.integers(0, 90, (120, 1, 8, 8)).astype(np.uint8)
    x[y == 1, :, :4] += 120
    result = trainwise.run(data=(x, y), report=False,
                           overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\""])
    assert trainwise.predict(result.path, x[:3, 0]).shape[0] == 3  # (N, H, W): the loader's
    with pytest.raises(DataError, match=r"\(N, 1, 8, 8\)"):
        trainwise.predict(result.path, rng.integers(0, 255, (3, 32, 32, 3)).astype(np.uint8))
    with pytest.raises(DataError, match=r"\(N, 1, 8, 8\)"):
        trainwise.predict(result.path, np.repeat(x[:3], 3, axis=1))  # 3 channels


@pytest.mark.parametrize("name", ["nosuch_dir", "nosuch.csv", "notes.doc"])
def test_a_missing_path_for_an_image_run_asks_for_images(image_run, tmp_path, name):
    # review s13 VA3: an image run was told "folders and image files are read for runs on
    # images only"
    result, _, _ = image_run
    if name == "notes.doc":  # (a .txt is a table now: audit s14 Z1)
        (tmp_path / name).write_text("x")
    with pytest.raises(DataError) as raised:
        trainwise.predict(result.path, tmp_path / name)
    assert "folder of images" in str(raised.value)
    assert "runs on images only" not in str(raised.value)


def test_sizing_many_images_is_linear_in_their_count(monkeypatch):
    # review s13 VA4: a set of the resized rows was rebuilt per image, 5.9 s for 20,000 images
    # to resize before any resizing (the resize itself is stubbed out here)
    import time

    import torch

    from trainwise import prediction_images

    monkeypatch.setattr(prediction_images, "resize", lambda x, size: x[..., :1, :1])
    images = [torch.zeros(1, 2, 2, dtype=torch.uint8)] * 20_000 + \
        [torch.ones(1, 1, 1, dtype=torch.uint8)]
    start = time.perf_counter()
    pixels, resized = prediction_images.run_sized(images, (1, 1))
    assert time.perf_counter() - start < 2.0  # linear: ~0.1 s; rebuilt sets: ~6 s
    assert pixels.shape == (20_001, 1, 1, 1) and resized == list(range(20_000))


def test_every_conversion_is_said_at_the_callers_line(image_run):
    # review s13 VA10: gray saved as RGB lost two channels without a note, and the notes
    # pointed at trainwise's own prediction.py line
    result, root, data = image_run
    rgb = np.repeat(data.x[:2], 3, axis=1)
    with pytest.warns(UserWarning, match="three equal channels") as said:
        trainwise.predict(result.path, rgb)
    with pytest.warns(UserWarning, match="channels last") as last:
        trainwise.predict(result.path, rgb.transpose(0, 2, 3, 1))
    with pytest.warns(UserWarning, match="resized to 8x8") as folder:
        trainwise.predict(result.path, root)
    for record in (said, last, folder):
        notes = [w for w in record if "channels" in str(w.message) or
                 "resized" in str(w.message)]
        assert notes and all(w.filename == __file__ for w in notes)
