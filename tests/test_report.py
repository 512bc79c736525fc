"""The report stage: synthetic run folders written by hand (docs/run_folder.md) -> report.html."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")

from trainwise.findings import Finding, Severity  # noqa: E402
from trainwise.reporting import build_report  # noqa: E402
from trainwise.reporting.curves import grad_norm_figure, loss_figure  # noqa: E402
from trainwise.reporting.formats import fmt_evidence, fmt_seconds, fmt_shape  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r'<img src="([^"]*)"')
NASTY = "loss rose <script>alert('x')</script> & fell"
# evaluate()'s 15 bins (the ECE's): the 33 validation samples fill the top 4
RELIABILITY = {"confidence": [None] * 11 + [0.76, 0.82, 0.88, 0.97],
               "accuracy": [None] * 11 + [0.5, 0.75, 0.9, 1.0], "count": [0] * 11 + [4, 8, 10, 11]}


def _write(run: Path, name: str, payload: Any) -> None:
    (run / name).write_text(json.dumps(payload), encoding="utf-8")


def _meta(task: str = "classification", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "blobs", "kind": "vector", "task": task,
                            "fingerprint": "a1b2c3d4e5f60718", "input_shape": [8],
                            "notes": ["dropped 3 rows whose target is missing"]}
    if task == "classification":
        data.update(num_classes=3, class_names=["cat", "dog", "owl"],
                    class_counts={"train": [100, 90, 80], "val": [12, 11, 10],
                                  "test": [30, 28, 27]})
    meta = {"name": "synthetic", "created": "2026-11-26T21:40:00", "seed": 7,
            "config": {"lr": 0.004, "note": "<b>bold</b>"}, "git_revision": "abc123",
            "versions": {"python": "3.11.7", "torch": "2.4.0"}, "data": data,
            "split": {"strategy": "stratified", "fingerprint": "ffee00112233",
                      "sizes": {"train": 270, "val": 33, "test": 85}},
            "stage_seconds": {"data": 1.2, "tune": 3.0, "train": 80.5},
            "verdict": "Trained cleanly." + (" Test accuracy 91.0 %." if data.get("num_classes")
                                             else "")}
    meta.update(extra)
    return meta


def _history(task: str = "classification", epochs: int = 4) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * 5 + 1, epoch * 5 + 1):
            rows.append({"kind": "step", "step": step, "epoch": epoch,
                         "loss": 2.0 / step, "grad_norm": 1.0 + step % 3, "lr": 0.004})
        row = {"kind": "epoch", "epoch": epoch, "step": epoch * 5, "train_loss": 1.0 / epoch,
               "val_loss": 1.2 / epoch if epoch < epochs else 0.5, "lr": 0.004, "seconds": 1.0}
        if task == "classification":
            row.update(train_accuracy=0.5 + 0.1 * epoch, val_accuracy=0.45 + 0.1 * epoch,
                       val_mean_confidence=0.6 + 0.08 * epoch, val_ece=0.05,
                       val_confidence_hist=[0] * 10 + [1, 2, 3, 4, 5, 6, 5, 4, 3, 2],
                       val_reliability=RELIABILITY)
        else:
            row.update(val_mae=1.0 / epoch, val_rmse=1.5 / epoch)
        rows.append(row)
    test = {"test_loss": 0.3, "test_accuracy": 0.91, "test_reliability": RELIABILITY} \
        if task == "classification" else {
        "test_loss": 0.3, "test_mae": 0.4321, "test_rmse": 0.6543}
    rows.append({"kind": "test", **test})
    return rows


def _findings() -> list[dict[str, Any]]:
    return [
        Finding("train", Severity.WARNING, "grad_norm_spike", NASTY,
                {"step": 12, "grad_norm": 45.25, "median": 1.5},
                "Lower the learning rate (stage tune).", step=12).to_dict(),
        Finding("data", Severity.INFO, "class_balance_ok", "Classes are balanced.").to_dict(),
    ]


def _write_run(run: Path, task: str = "classification") -> Path:
    run.mkdir()
    _write(run, "meta.json", _meta(task))
    (run / "history.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _history(task)), encoding="utf-8")
    _write(run, "findings.json", _findings())
    lrs = [1e-5 * 1.5**i for i in range(30)]
    _write(run, "lr_range.json", {
        "curves": [{"seed": s, "lrs": lrs, "losses": [2.3 - 0.03 * i + 0.01 * s for i in range(30)],
                    "smoothed": [2.3 - 0.03 * i for i in range(30)]} for s in (0, 1)],
        "lr": 0.004, "lr_low": 0.001, "lr_high": 0.01, "spread_decades": 0.1,
        "rule": "valley"})
    _write(run, "model_summary.json", {
        "rows": [{"name": "0", "type": "Linear", "input_shape": [128, 8],
                  "output_shape": [128, 32], "num_params": 288, "trainable": True},
                 {"name": "2", "type": "Linear", "input_shape": [128, 32],
                  "output_shape": [128, 3], "num_params": 99, "trainable": True}],
        "total_params": 387, "trainable_params": 387})
    return run


def _images(text: str) -> list[bytes]:
    """Decode every <img>; fail on anything that is not an inlined PNG/JPEG/SVG."""
    decoded = []
    for src in IMG_SRC.findall(text):
        assert src.startswith("data:image/png;base64,"), src[:60]
        decoded.append(base64.b64decode(src.split(",", 1)[1], validate=True))
    return decoded


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One complete classification run, built once: figures are the slow part (~0.3 s each)."""
    run = _write_run(tmp_path_factory.mktemp("report") / "run")
    (run / "figures").mkdir()
    (run / "figures" / "samples.png").write_bytes(PNG_MAGIC + b"stage figure")
    _write(run, "meta.json", _meta(figures=["figures/samples.png", "../outside.png"]))
    path = build_report(run)
    return run, path, path.read_text(encoding="utf-8")


def test_full_run_is_self_contained_and_complete(full_report: tuple[Path, Path, str]) -> None:
    run, path, text = full_report
    assert path == run / "report.html"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    images = _images(text)
    # class balance, lr range, loss, grad norm, lr, accuracy, confidence, reliability + 1 stage
    assert len(images) == 9
    assert all(img.startswith(PNG_MAGIC) for img in images)
    assert sorted(p.name for p in (run / "figures").glob("report_*.png")) == [
        f"report_{n}.png" for n in sorted(("accuracy", "class_balance", "confidence",
                                            "grad_norm", "learning_rate", "loss", "lr_range",
                                            "reliability"))]
    for expected in ("Lower the learning rate (stage tune).", "Classes are balanced.",
                     "91.0 %", "Trained cleanly", "grad_norm_spike", "a1b2c3d4e5f60718",
                     "abc123", "dropped 3 rows", "Linear", "B × 32", "batch of 128 training",
                     "1 min 25 s"):
        assert expected in text, expected
    assert "outside.png" in text  # refused, and said so rather than silently dropped
    findings = text[text.index('id="findings"'):]
    assert findings.index("<h3>data</h3>") < findings.index("<h3>train</h3>")  # METHOD order


def test_reliability_diagram_sits_next_to_the_confidence_histogram(
        full_report: tuple[Path, Path, str]) -> None:
    run, _, text = full_report
    training = text[text.index('id="training"'):text.index('id="test"')]
    assert 'alt="Confidence"' in training and 'alt="Reliability diagram"' in training
    assert training.index('alt="Confidence"') < training.index('alt="Reliability diagram"')
    png = (run / "figures" / "report_reliability.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and png in _images(text)
    # the bins are a figure, not a row of the test table or a clause of the verdict
    test_section = text[text.index('id="test"'):text.index('id="findings"')]
    assert "test accuracy" in test_section and "reliability" not in test_section


def test_verdict_from_the_test_row_leaves_the_bins_out(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "no_verdict")
    _write(run, "meta.json", _meta(verdict=None))
    text = build_report(run).read_text(encoding="utf-8")
    verdict = re.search(r'<div class="verdict[^>]*>(.*?)</div>', text).group(1)
    assert verdict == "Finished: test loss 0.3, test accuracy 91.0 %."


def test_a_class_weighted_runs_losses_are_labelled_so(tmp_path: Path) -> None:
    # the weighted CE read as a log-loss comparable with an unweighted run's (audit s9 I9);
    # the context and template without figures, which take seconds to draw
    from trainwise.reporting.context import report_context
    from trainwise.reporting.html import render_html
    from trainwise.reporting.run_data import load_run

    # read from the config, not from the model stage's class_weights finding, which a
    # resumed run without its findings.json lacks (review s9 A9)
    run = _write_run(tmp_path / "weighted")
    _write(run, "meta.json", _meta(verdict=None))
    plain = report_context(load_run(run))
    _write(run, "meta.json", _meta(verdict=None, config={"train": {"class_weights": "balanced"}}))
    context = report_context(load_run(run))
    assert context["verdict"].startswith("Finished: test loss (class-weighted cross-entropy) 0.3,")
    assert ("test loss (class-weighted cross-entropy)", "0.3") in context["test"]
    assert ("best val loss (epoch 3, class-weighted)", "0.4") in context["headline"]
    assert ("best val loss (epoch 3)", "0.4") in plain["headline"]
    caption = "Every loss of this run, training, validation and test, is the class-weighted"
    assert caption in render_html({**context, "figures": {}})
    assert caption not in render_html({**plain, "figures": {}})


def test_the_prior_only_sentence_comes_only_with_its_line(tmp_path: Path) -> None:
    from trainwise.reporting.context import report_context
    from trainwise.reporting.html import render_html
    from trainwise.reporting.run_data import load_run

    sentence = "a dash-dot line"
    run = _write_run(tmp_path / "even")  # 100/90/80 training rows: no prior-only line
    figures = {"loss": {"uri": "data:image/png;base64,", "title": "Loss"}}
    even = report_context(load_run(run))
    assert not even["prior_line"]
    skewed = _meta(verdict=None)
    skewed["data"]["class_counts"]["train"] = [500, 20, 10]
    _write(run, "meta.json", skewed)
    context = report_context(load_run(run))
    assert context["prior_line"]
    assert sentence in render_html({**context, "figures": figures})
    assert sentence not in render_html({**even, "figures": figures})
    _write(run, "meta.json", {**skewed, "config": {"train": {"class_weights": "balanced"}}})
    assert not report_context(load_run(run))["prior_line"]  # weighted: the line is not drawn


def test_findings_with_a_step_are_drawn_on_the_curves() -> None:
    rows = _history()
    steps = [r for r in rows if r["kind"] == "step"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    findings = [Finding.from_dict(f) for f in _findings()]  # one at step 12, one without
    for fig in (loss_figure(steps, epochs, findings), grad_norm_figure(steps, findings)):
        ax = fig.axes[0]
        vertical = [line for line in ax.lines if list(line.get_xdata()) == [12, 12]]
        labels = [t.get_text() for t in ax.texts]
        assert len(vertical) == 1 and labels == ["grad_norm_spike"]


def test_finding_text_is_escaped(full_report: tuple[Path, Path, str]) -> None:
    text = full_report[2]
    assert NASTY not in text
    assert "loss rose &lt;script&gt;alert(" in text
    assert NASTY in html.unescape(text)  # escaped, not dropped
    assert "<b>bold</b>" not in text  # config values are escaped too


def test_failed_run_shows_error_and_fix_at_top(tmp_path: Path) -> None:
    run = tmp_path / "failed"
    run.mkdir()
    _write(run, "meta.json", {"name": "failed", "created": "2026-11-26T21:40:00", "seed": 0,
                              "stage_seconds": {"data": 0.5}})
    _write(run, "findings.json", [Finding(
        "check", Severity.ERROR, "loss_at_init_off", "Loss at init is 9.1, expected 2.30.",
        {"loss": 9.1, "expected": 2.302585}, "Check the output layer (stage model).").to_dict()])

    text = build_report(run).read_text(encoding="utf-8")

    header = text[: text.index('id="data"')]
    assert "Stopped at stage &#39;check&#39;" in header
    # a recipe stops at its first error (a Monitor run says "what went wrong": reverify s8 L10)
    assert "1 error: what stopped the run and how to fix it" in header
    assert "Loss at init is 9.1" in header and "Check the output layer (stage model)." in header
    assert "sev-error" in header
    assert _images(text) == []
    assert "No training history in this run: it stopped at stage <code>check</code>" in text
    assert "No data description in this run." in text  # data came before check: not "stopped"


def test_regression_run_has_no_accuracy_or_confidence(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "reg", task="regression")
    text = build_report(run).read_text(encoding="utf-8")
    assert "test RMSE" in text and "0.6543" in text
    assert "accuracy" not in text.lower()
    assert "confidence" not in text.lower()
    assert len(_images(text)) == 5  # lr range, loss, grad norm, lr, validation error
    assert (run / "figures" / "report_val_error.png").exists()
    # the loss caption says what a regression's loss is, not "chance, ln C" (audit s10 A17)
    plain = html.unescape(text)
    assert "ln C" not in plain and "MSE of the standardised target" in plain
    assert "mean squared error of the target standardised by the training split" in plain
    assert ("The dotted line at 1 is what predicting the training mean scores on the "
            "training rows") in plain
    assert "√L times the standard deviation of the target." in plain


def test_regression_amounts_read_in_plain_digits(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "price", task="regression")
    rows = _history("regression")
    rows[-1] = {"kind": "test", "test_loss": 0.31, "test_rmse": 128437.2, "test_mae": 67712.0}
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = html.unescape(build_report(run).read_text(encoding="utf-8"))
    assert "128,400" in text and "67,710" in text and "1.284e+05" not in text
    assert "Test: predicted vs actual" not in text  # no predictions kept: no figure


def test_regression_test_section_shows_the_kept_predictions(tmp_path: Path) -> None:
    """The evaluate stage's test_predictions.csv drawn against the actual values, and the
    error per quarter of the targets as a table (audit s10 A18)."""
    run = _write_run(tmp_path / "price", task="regression")
    rows = _history("regression")
    rows[-1] = {"kind": "test", "test_loss": 0.31, "test_rmse": 128437.2, "test_mae": 67712.0,
                "test_error_by_quarter": [
                    {"low": 8545.0, "high": 252700.0, "rows": 50, "mae": 81190.0,
                     "rmse": 100700.0, "mean_error": 40330.0},
                    {"low": 876400.0, "high": 11110000.0, "rows": 50, "mae": 563700.0,
                     "rmse": 981000.0, "mean_error": -103100.0}]}
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "test_predictions.csv").write_text(
        "row,actual,predicted,error\n3,8545.0,20000.0,11455.0\n8,11110000.0,5800000.0,"
        "-5310000.0\n9,300000.0,310000.0,10000.0\n", encoding="utf-8")
    text = html.unescape(build_report(run).read_text(encoding="utf-8"))
    section = text[text.index('id="test"'):text.index('id="findings"')]
    assert "predicted vs actual" in section.lower() and len(_images(section)) == 1
    assert (run / "figures" / "report_predictions.png").exists()
    assert "Error by quarter of the test targets" in section
    assert re.search(r"<td>8545 – 252,700</td><td class=\"num\">50</td><td class=\"num\">"
                     r"81,190</td><td class=\"num\">100,700</td><td class=\"num\">\+40,330</td>",
                     section)
    assert "-103,100" in section


def test_non_finite_history_still_renders(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "nan")
    rows = _history() + [{"kind": "step", "step": 21, "epoch": 5, "loss": math.nan,
                          "grad_norm": math.inf, "lr": 0.004}]
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # lr_range.json writes non-finite numbers as null (a range test that never found a valley)
    _write(run, "lr_range.json", {"curves": [{"seed": 0, "lrs": [1e-4, 1e-3, 1e-2],
                                              "losses": [2.3, None, 2.1], "smoothed": None}],
                                  "lr": None, "lr_low": None, "lr_high": None,
                                  "spread_decades": None, "rule": "valley"})
    text = build_report(run).read_text(encoding="utf-8")
    assert "could not be drawn" not in text
    assert len(_images(text)) == 8


def test_run_still_in_its_first_epoch(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "early")
    steps = [r for r in _history() if r["kind"] == "step"][:3]
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in steps))
    (run / "meta.json").write_text(json.dumps(_meta(verdict=None)))
    text = build_report(run).read_text(encoding="utf-8")
    assert "No verdict recorded" in text
    assert "No test result in this run" in text
    assert len(_images(text)) == 5  # class balance, lr range, loss, grad norm, lr


def test_missing_run_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"there is no folder .*Pass the folder a run printed "
                       r"\(result\.run_dir in Python\)"):  # README's name (review s16 VX10)
        build_report(tmp_path / "nope")


@pytest.mark.parametrize(("value", "expected"), [
    (0.123456, "0.1235"), (list(range(10)), "[0, 1, 2, 3, 4, 5, 6, 7, … (10 items)]"),
    ("x" * 100, "x" * 79 + "…"), (None, "–")])
def test_fmt_evidence(value: Any, expected: str) -> None:
    assert fmt_evidence(value) == expected


def test_fmt_seconds() -> None:
    assert fmt_seconds(3.04) == "3.0 s"
    assert fmt_seconds(84.7) == "1 min 25 s"
    assert fmt_seconds(7300) == "2 h 1 min"


def test_fmt_shape() -> None:
    assert fmt_shape([128, 1, 40]) == "128 × 1 × 40"
    assert fmt_shape([[128, 40], [128]]) == "128 × 40, 128"
    assert fmt_shape(None) == "–"


def test_report_of_a_folder_that_is_not_a_run_refuses_and_writes_nothing(tmp_path):
    # the Python verb used to write an empty report.html and figures/ into any folder
    import trainwise
    from trainwise.rundir import RunFolderError

    (tmp_path / "notes.txt").write_text("a notebook's working folder")
    with pytest.raises(RunFolderError, match="is not a run folder: expected a run folder with "
                       "meta.json.*result.run_dir in Python"):
        trainwise.report(tmp_path)
    run = tmp_path / "runs" / "20260101-120000-wine"
    run.mkdir(parents=True)
    (run / "meta.json").write_text("{}")
    with pytest.raises(RunFolderError, match=re.escape(f'trainwise.report("{run}")')):
        trainwise.report(tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["20260101-120000-wine", "meta.json",
                                                           "notes.txt", "runs"]


def test_a_log_target_run_says_its_loss_is_on_the_log(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "logged", task="regression")
    meta = _meta("regression", config={"data": {"target_transform": "log"}})
    _write(run, "meta.json", meta)
    plain = html.unescape(build_report(run).read_text(encoding="utf-8"))
    assert "mean squared error of the target after log(1 + target)" in plain
    assert "√L times the standard deviation of log(1 + target), on that scale." in plain


def test_an_audits_report_says_the_later_stages_were_not_run(tmp_path: Path) -> None:
    """Audit s13 P14: `trainwise audit`'s report said "No model summary in this run" for
    stages the command never meant to run, as if something had gone missing."""
    run = tmp_path / "audit"
    run.mkdir()
    _write(run, "meta.json", {"name": "audit", "created": "2026-11-26T21:40:00", "seed": 0,
                              "stage_seconds": {"data": 0.5, "report": 0.2}})
    _write(run, "findings.json", [])
    text = build_report(run).read_text(encoding="utf-8")
    assert ("No model summary in this run: the command that made it ended before stage "
            "<code>model</code>") in text
    assert "stopped at stage" not in text
