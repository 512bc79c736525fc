"""The data stage's samples figure: images drawn as images (digits' 64 pixel features too),
sequences on one y-scale with axis labels, and a caption that says what is drawn."""

from __future__ import annotations

import json
import re

import matplotlib
import numpy as np

matplotlib.use("Agg")

from trainwise.data.figures import samples_caption, samples_figure  # noqa: E402
from trainwise.data.sources import load_data  # noqa: E402
from trainwise.data.task import TaskData  # noqa: E402
from trainwise.reporting import build_report  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_digits_rows_are_drawn_as_8x8_images_per_class() -> None:
    data = load_data("digits")
    assert data.kind == "vector" and data.input_shape == (64,) and data.image_shape == (8, 8)
    fig = samples_figure(data)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 10 * 6  # a row per class, 6 images each
    assert not any(ax.patches for ax in fig.axes)  # no histogram bars
    first = drawn[0].images[0].get_array()
    assert first.shape == (8, 8)
    row = data.x[np.flatnonzero(data.y == 0)[0]].reshape(8, 8)
    scaled = (row - row.min()) / (row.max() - row.min())
    assert np.allclose(first, scaled)  # the picture is the row itself, laid out as 8x8
    assert "images of each class" in samples_caption(data)


def test_vectors_without_an_image_shape_keep_their_histograms() -> None:
    rng = np.random.default_rng(0)
    data = TaskData(name="v", kind="vector", task="classification",
                    x=rng.normal(size=(60, 13)).astype(np.float32), y=np.arange(60) % 3,
                    class_names=["a", "b", "c"])
    fig = samples_figure(data)
    assert not any(ax.images for ax in fig.axes) and any(ax.patches for ax in fig.axes)
    assert samples_caption(data).startswith("Histograms of the first 12 of 13 features")


def test_sequence_panels_share_one_y_scale_and_have_axis_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 30)).astype(np.float32)
    x[0] *= 10  # one class with a larger amplitude: its panel must not be rescaled alone
    data = TaskData(name="s", kind="sequence", task="classification", x=x,
                    y=np.arange(40) % 4, class_names=list("abcd"))
    fig = samples_figure(data)
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 4
    assert len({ax.get_ylim() for ax in panels}) == 1
    assert fig.get_supxlabel() == "time step"
    assert fig.get_supylabel().startswith("value")
    assert "on one y-scale" in samples_caption(data)


def _caption(html: str) -> str:
    return re.search(r'alt="Data samples".*?<figcaption>(.*?)<span', html, re.S).group(1)


def test_the_report_captions_the_samples_figure(tmp_path) -> None:
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "samples.png").write_bytes(PNG + b"x")
    meta = {"name": "t", "verdict": "ok", "figures": [
        {"path": "figures/samples.png", "title": "Data samples",
         "caption": "The first 6 images of each class."}]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert _caption(build_report(tmp_path).read_text()).strip() == \
        "The first 6 images of each class."
    # a run folder from before captions were saved: a sentence, not the word "samples"
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "figures": ["figures/samples.png"]}))
    html = build_report(tmp_path).read_text()
    caption = re.search(r'alt="samples".*?<figcaption>(.*?)<span', html, re.S).group(1)
    assert caption.startswith("Typical samples of the data")


def test_the_data_stage_saves_the_caption_with_the_figure(tmp_path) -> None:
    import trainwise

    result = trainwise.run({"data": {"source": "digits"}}, until="data", report=False,
                           overrides=[f"run.out_dir=\"{tmp_path}\""])
    (entry,) = json.loads((result.path / "meta.json").read_text())["figures"]
    assert entry["path"] == "figures/samples.png" and entry["title"] == "Data samples"
    assert entry["caption"].startswith("The first 6 images of each class")
    assert (result.path / entry["path"]).read_bytes().startswith(PNG)
