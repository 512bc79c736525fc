"""The data stage's samples figure: images drawn as images (digits' 64 pixel features too),
sequences on one y-scale with axis labels, and a caption that says what is drawn."""

from __future__ import annotations

import json
import re
from html import unescape

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")

from trainwise.data.distribution_figures import (  # noqa: E402
    distribution_caption,
    distribution_figure,
    plot_distributions,
)
from trainwise.data.figures import picked, samples_caption, samples_figure  # noqa: E402
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

    result = trainwise.run({"data": {"source": "digits"}}, until="data",
                           overrides=[f"run.out_dir=\"{tmp_path}\""])
    entry, spread = json.loads((result.path / "meta.json").read_text())["figures"]
    assert entry["path"] == "figures/samples.png" and entry["title"] == "Data samples"
    assert entry["caption"].startswith("The first 6 images of each class")
    assert (result.path / entry["path"]).read_bytes().startswith(PNG)
    # digits' rows are 8x8 pictures: their distributions are drawn as images too
    assert spread["path"] == "figures/distributions.png"
    assert spread["caption"].startswith("Per class: the mean image")
    assert (result.path / spread["path"]).read_bytes().startswith(PNG)
    html = (result.path / "report.html").read_text(encoding="utf-8")
    shown = re.search(r'alt="Data distributions".*?<figcaption>(.*?)<span', html, re.S)
    assert unescape(shown.group(1).strip()) == spread["caption"]


# Distribution figures for images and sequences (audit s8 R6: METHOD.md 1.1 "per-feature
# distributions" had histograms for tables only).

def _sequences(n: int = 60, channels: int = 2) -> TaskData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, channels, 20)).astype(np.float32)  # (N, C, T)
    y = np.arange(n) % 3
    x[y == 2, 0] += np.linspace(0, 3, 20)  # class c drifts upward on channel 0
    x[:, :, -4:] = 0  # zero padding at the end of every sequence
    return TaskData(name="s", kind="sequence", task="classification", x=x, y=y,
                    class_names=list("abc"))


def test_sequence_distribution_draws_each_class_mean_and_band_per_channel() -> None:
    data = _sequences()
    figure = distribution_figure(data)
    panels = [ax for ax in figure.axes if ax.lines]
    assert [ax.get_title() for ax in panels] == ["class a (n=20)", "class b (n=20)",
                                                 "class c (n=20)"]
    for label, ax in enumerate(panels):
        for channel, line in enumerate(ax.lines):
            np.testing.assert_allclose(line.get_ydata(), data.x[data.y == label, channel]
                                       .mean(axis=0, dtype=np.float64))
        band = ax.collections[0].get_paths()[0].vertices[:, 1]  # channel 0's 10-90% band
        low, high = np.quantile(data.x[data.y == label, 0], [0.1, 0.9], axis=0)
        assert np.isclose(band.min(), low.min()) and np.isclose(band.max(), high.max())
    assert len({ax.get_ylim() for ax in panels}) == 1  # one y-scale: amplitudes compare
    histograms = [ax for ax in figure.axes if ax.patches]
    assert [ax.get_title() for ax in histograms] == ["channel 0: all values",
                                                     "channel 1: all values"]
    caption = distribution_caption(data)
    assert "all 60 samples" in caption and "padding" in caption and "band" in caption


def test_many_channels_and_samples_are_capped_and_the_caption_says_so() -> None:
    data = _sequences(n=5000, channels=5)
    figure = distribution_figure(data)
    assert {len(ax.lines) for ax in figure.axes if ax.lines} == {3}  # channels 0-2 only
    assert "2000 of 5000 samples" in figure.get_suptitle()
    caption = distribution_caption(data)
    assert "channels 0-2 of 5" in caption and "a random 2000 of the 5000 samples" in caption
    assert sum(int(t.split("=")[1].rstrip(")")) for t in
               (ax.get_title() for ax in figure.axes if ax.lines)) == 2000


def _watermarked_images() -> TaskData:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, size=(90, 1, 8, 8), dtype=np.uint8)  # (N, C, H, W)
    y = np.arange(90) % 3
    x[y == 1, :, 0, :] = 255  # a bright top row on class b only: a shortcut
    return TaskData(name="i", kind="image", task="classification", x=x, y=y,
                    class_names=list("abc"))


def test_image_distribution_shows_each_class_mean_and_its_difference() -> None:
    data = _watermarked_images()
    figure = distribution_figure(data)
    drawn = [ax for ax in figure.axes if ax.images]
    means, differences = drawn[0::2], drawn[1::2]
    overall = data.x[:, 0].mean(axis=0)
    for label, (mean_ax, difference_ax) in enumerate(zip(means, differences, strict=True)):
        expected = data.x[data.y == label, 0].mean(axis=0)
        np.testing.assert_allclose(mean_ax.images[0].get_array(), expected)
        np.testing.assert_allclose(difference_ax.images[0].get_array(), expected - overall)
    (scale,) = {ax.images[0].get_clim() for ax in means}  # one grey scale for every class
    assert scale[1] == 255.0  # class b's watermark sets its top
    top_row = differences[1].images[0].get_array()[0]
    assert (top_row > 50).all()  # the watermark stands out in class b's difference
    histogram = next(ax for ax in figure.axes if ax.patches)
    assert [t.get_text() for t in histogram.get_legend().get_texts()] == ["a", "b", "c"]
    assert "watermark" in distribution_caption(data)


def test_digits_rows_get_the_image_distribution_figure() -> None:
    data = load_data("digits")
    figure = distribution_figure(data)
    first = next(ax for ax in figure.axes if ax.images).images[0].get_array()
    np.testing.assert_allclose(first, data.x[data.y == 0].reshape(-1, 8, 8)
                               .mean(axis=0, dtype=np.float64))


def test_tables_get_no_distribution_figure(tmp_path) -> None:
    data = TaskData(name="v", kind="table", task="classification",
                    x=np.zeros((10, 3), np.float32), y=np.arange(10) % 2, class_names=["a", "b"])
    assert plot_distributions(data, tmp_path / "d.png") is None
    assert not (tmp_path / "d.png").exists()



def test_a_zero_inflated_target_names_its_quarters_by_their_number() -> None:
    """150 zeros fill quarters 1-3 of the range's quantiles and leave 1 and 2 empty: the
    groups left were labelled 'quarter 1' and 'quarter 2' by position after the drop."""
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(150), rng.exponential(size=50)].astype(np.float32)
    data = TaskData(name="z", kind="image", task="regression",
                    x=rng.integers(0, 255, (200, 1, 8, 8)).astype(np.uint8), y=y)
    figure = distribution_figure(data)
    legends = [text.get_text() for ax in figure.axes if ax.get_legend()
               for text in ax.get_legend().get_texts()]
    assert legends == ["quarter 3", "quarter 4"]


def test_a_wide_tables_histograms_show_the_features_that_separate_the_classes_on_train_rows(
        tmp_path) -> None:
    """Audit s11 M14: a 500-column table drew its first 12 columns, noise when the signal sits
    in columns 300-305. After the split the figure shows the 12 with the largest F statistic
    on the training rows (scikit-learn's f_classif is the reference)."""
    from sklearn.feature_selection import f_classif

    import trainwise

    rng = np.random.default_rng(0)
    y = np.arange(100) % 2
    x = rng.normal(size=(100, 500)).astype(np.float32)
    x[:, 300:306] += 1.5 * y[:, None]
    data = TaskData(name="wide", kind="table", task="classification", x=x, y=y,
                    class_names=["a", "b"], feature_names=[f"g{i}" for i in range(500)])
    before = samples_figure(data)  # before the split: the first 12, said so
    assert "the first 12 of 500 features" in before.texts[0].get_text()
    result = trainwise.run(data=(x, y), until="split", report=False,
                           overrides=[f"run.out_dir=\"{tmp_path}\"", "run.threads=1"])
    with np.load(result.path / "split.npz") as split:
        train = split["train"]
    scores = f_classif(x[train], y[train])[0]
    expected = [f"x{i}" for i in np.argsort(-scores, kind="stable")[:12]]
    after = samples_figure(data, picked(data, train))
    assert [ax.get_title() for ax in after.axes if ax.get_title()] == \
        [name.replace("x", "g") for name in expected]
    assert {f"g{i}" for i in range(300, 306)} <= {ax.get_title() for ax in after.axes}
    title = after.texts[0].get_text()
    assert f"features that separate the classes most (F test on the {len(train)} training rows)" \
        in title
    meta = json.loads((result.path / "meta.json").read_text())
    caption = meta["figures"][0]["caption"]
    assert caption.startswith(f"The 12 features with the largest F statistic on the {len(train)} "
                              "training rows only")
    assert re.search(r"\d+ of 500 features differ between the classes at p < 0.05", caption)


def test_the_split_stage_picks_a_wide_tables_features_once(tmp_path, monkeypatch) -> None:
    """Review s11 VD10: the F test over every column ran 3 times in the split stage on the
    same training rows (the redraw check, the figure, the caption)."""
    import trainwise
    import trainwise.data.figures as figures

    calls = []
    real = figures.pick_features
    monkeypatch.setattr(figures, "pick_features",
                        lambda *args: calls.append(args[0].shape) or real(*args))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 20)).astype(np.float32)  # 20 columns > 12 panels: picked
    result = trainwise.run(data=(x, np.arange(100) % 2), until="split", report=False,
                           overrides=[f"run.out_dir=\"{tmp_path}\"", "run.threads=1"])
    with np.load(result.path / "split.npz") as split:
        num_train = len(split["train"])
    assert calls == [(num_train, 20)]
    caption = json.loads((result.path / "meta.json").read_text())["figures"][0]["caption"]
    assert caption.startswith(f"The 12 features with the largest F statistic on the {num_train} ")


def test_a_wide_tables_flagged_columns_are_drawn_first_before_and_after_the_split(tmp_path):
    """Audit s15 M8: `trainwise audit` drew the first 12 of 30 features, and after the split
    the F test's 12: a column with typed-wrong huge values or gaps but no class relation was
    never drawn. The columns the audit flags come first, said in the panel and the title."""
    import trainwise
    from trainwise.rundir import read_meta

    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    frame = pd.DataFrame(rng.normal(size=(300, 30)), columns=[f"g{i}" for i in range(30)])
    frame["g5"] += 2.0 * y  # the class signal, early: the F test draws it anyway
    frame.loc[[3, 77], "g25"] = 1e6  # typed wrong: extreme values, no class relation
    frame.loc[::10, "g27"] = np.nan  # 10% missing
    frame["label"] = np.where(y == 1, "b", "a")
    frame.to_csv(tmp_path / "wide.csv", index=False)
    result = trainwise.run({"data": {"source": str(tmp_path / "wide.csv"), "target": "label"}},
                           until="data", report=False,
                           overrides=[f"run.out_dir=\"{tmp_path}\"", "run.threads=1"])
    flagged = read_meta(result.path)["data"]["flagged_features"]
    assert flagged == {"g25": "extreme values", "g27": "missing values"}
    data = load_data(str(tmp_path / "wide.csv"), "label")
    before = samples_figure(data, picked(data, None, flagged))
    titles = [ax.get_title() for ax in before.axes if ax.get_title()]
    assert titles[:2] == ["g25 (extreme values)", "g27 (missing values)"]
    assert titles[2:] == [f"g{i}" for i in range(10)]  # then file order, said so
    assert "2 flagged (extreme values, missing values), then the first 10 others" \
        in before.texts[0].get_text()
    train = np.arange(0, 300, 3)  # after the split: then the F test's best, g5 first
    after = [ax.get_title() for ax in samples_figure(data, picked(data, train, flagged)).axes
             if ax.get_title()]
    assert after[:3] == ["g25 (extreme values)", "g27 (missing values)", "g5"]
    assert samples_caption(data, picked(data, None, {})).startswith(
        "Histograms of the first 12 of 30 features in file order")


def test_many_flagged_columns_leave_half_the_panels_to_the_f_test_and_are_named(tmp_path):
    """Review s15 VE6: 15 columns with gaps filled all 12 panels ("then the 0 most
    telling") and 3 flagged columns vanished without a word."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    frame = pd.DataFrame(rng.normal(size=(300, 30)), columns=[f"g{i}" for i in range(30)])
    frame["g5"] += 2.0 * y  # the signal the F test must still draw
    frame["label"] = y
    frame.to_csv(tmp_path / "wide.csv", index=False)
    data = load_data(str(tmp_path / "wide.csv"), "label")
    flagged = {f"g{i}": "missing values" for i in range(15, 30)}
    chosen = picked(data, np.arange(0, 300, 3), flagged)
    names = [data.feature_names[i] for i in chosen.features]
    assert names[:6] == [f"g{i}" for i in range(15, 21)] and names[6] == "g5"
    assert chosen.title() == ("12 of 30 features: 6 flagged (missing values), then the 6 most "
                              "telling (100 training rows)")
    assert samples_caption(data, chosen).startswith(
        "The 6 features the audit flagged (missing values) first (8 more flagged, not drawn: "
        "g21, g22, g23, g24, g25, g26, g28, g29), then the 6 features with the largest F")
    assert "g27" in names  # flagged past the first 6, drawn by the F test (review s15 VF2)


def test_a_flagged_column_the_f_test_draws_is_not_listed_as_not_drawn(tmp_path):
    """Review s15 VF2: g25, flagged past the first 6 and carrying the signal, was drawn among
    the F test's panels while the caption listed it as "not drawn" (and counted 9, not 8)."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    frame = pd.DataFrame(rng.normal(size=(300, 30)), columns=[f"g{i}" for i in range(30)])
    frame["g25"] += 2.0 * y
    frame["label"] = y
    frame.to_csv(tmp_path / "wide.csv", index=False)
    data = load_data(str(tmp_path / "wide.csv"), "label")
    chosen = picked(data, np.arange(0, 300, 3),
                    {f"g{i}": "missing values" for i in range(15, 30)})
    drawn = {data.feature_names[i] for i in chosen.features}
    assert "g25" in drawn
    assert set(chosen.more_flagged) == {f"g{i}" for i in range(21, 30)} - drawn
    assert "g25" not in samples_caption(data, chosen)
