import base64
import json
import re

from trainwise.reporting import build_report


def test_short_runs_render_as_table_and_figure(tmp_path):
    tune = {"candidates": [
        {"lr": 0.01, "val_loss": 0.30, "curve": [0.9, 0.5, 0.30], "seconds": 1.0, "round": 0},
        {"lr": 0.001, "val_loss": 0.60, "curve": [1.2, 0.8, 0.60], "seconds": 1.1, "round": 0},
        {"lr": 0.1, "val_loss": 0.45, "curve": [1.0, 0.6, 0.45], "seconds": 0.9, "round": 0}],
        "chosen_lr": 0.012, "best_lr": 0.01, "widened": False, "spacing": "log",
        "num_epochs": 3}
    html = build_report(_write(tmp_path, tune)).read_text()
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>[^<]*</td><td>(best)?</td>",
                      html)
    assert [r[0] for r in rows] == ["0.001", "0.01", "0.1"]  # sorted by rate
    assert [r[2] for r in rows] == ["", "best", ""]  # the lowest validation loss wins
    assert "log spacing" in html
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert any(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert (tmp_path / "figures" / "report_short_runs.png").exists()


def test_short_run_curves_spanning_decades_get_a_log_axis():
    from trainwise.reporting.tuning import short_runs_figure

    def figure(*curves):
        tune = {"chosen_lr": 0.1, "candidates": [{"lr": 10.0 ** -k, "curve": curve}
                                                 for k, curve in enumerate(curves)]}
        return short_runs_figure(tune)

    blown_up = figure([13.0, 0.7, 0.06], [1.0, 0.5, 0.07], [1.0, float("nan"), None])
    assert blown_up.axes[0].get_yscale() == "log"
    assert figure([1.0, 0.9, 0.8], [1.1, 0.7, 0.5]).axes[0].get_yscale() == "linear"
    assert figure([]).axes[0].get_yscale() == "linear"  # nothing to draw: no crash


def test_the_short_runs_legend_is_in_lr_order():
    """Widened candidates are appended to tune.json after the first round (audit s7 #21)."""
    from trainwise.reporting.tuning import short_runs_figure

    lrs = [0.01, 0.0221, 0.0486, 0.107, 0.00453]
    tune = {"best_lr": 0.01, "candidates": [{"lr": lr, "curve": [1.0, 0.5]} for lr in lrs]}
    ax = short_runs_figure(tune).axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["lr 0.00453", "lr 0.01 (best)", "lr 0.0221", "lr 0.0486", "lr 0.107"]


def _tuning_text(tmp_path, tune):
    html = build_report(_write(tmp_path, tune)).read_text()
    section = html[html.index('id="tuning"'):html.index('id="training"')]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


def test_the_tuning_section_walks_from_the_best_short_run_to_the_lr_used(tmp_path):
    """A constant lr: best 0.02, parabola 0.016, times the horizon factor 0.5 -> 0.008."""
    candidates = [{"lr": lr, "val_loss": v, "curve": [v], "seconds": 0.1, "round": 0,
                   "tail": [v] * 6} for lr, v in ((0.01, 0.2), (0.02, 0.1), (0.04, 0.3))]
    text = _tuning_text(tmp_path, {"candidates": candidates, "chosen_lr": 0.008,
                                   "best_lr": 0.02, "horizon_factor": 0.5, "widened": False,
                                   "spacing": "log", "num_epochs": 3, "horizon_epochs": 2.5,
                                   "tail_evals": 6, "source": "short_runs"})
    assert "scored by the median of 6 validation losses spread over its last epoch" in text
    assert "Best 0.02; the minimum of a parabola" in text
    assert "(in log lr) 0.016, times 0.5 because the whole run is longer" in text
    assert "ratio of epochs, 2.5 to the whole run's)" in text
    assert "Training uses 0.008 ." in text
    untailed = [{k: v for k, v in c.items() if k != "tail"} for c in candidates]
    annealed = _tuning_text(tmp_path, {"candidates": untailed, "chosen_lr": 0.016,
                                       "best_lr": 0.02, "horizon_factor": 1.0,
                                       "widened": False, "spacing": "log", "num_epochs": 3})
    assert "(in log lr) 0.016. Training uses 0.016 ." in annealed
    assert "median of" not in annealed  # no tail: scored by the last loss
    diverged = _tuning_text(tmp_path, {"candidates": candidates, "chosen_lr": None,
                                       "best_lr": None, "widened": False, "spacing": "log",
                                       "num_epochs": 3})
    assert "Training uses" not in diverged  # every short run diverged: no lr to name


def test_tail_scored_runs_show_their_spread_and_say_when_the_best_is_within_noise(tmp_path):
    """Constant lr: each run scored by the median of its last-epoch losses; the table shows
    their lowest and highest, and the text says when the runner-up's range reaches below the
    best's score. A run that diverged (no score) shows no range, even with finite losses."""
    def tune(runner_up_tail):
        candidates = [
            {"lr": 0.01, "val_loss": 0.20, "curve": [0.5, 0.2], "seconds": 0.1, "round": 0,
             "tail": runner_up_tail},
            {"lr": 0.02, "val_loss": 0.15, "curve": [0.4, 0.15], "seconds": 0.1, "round": 0,
             "tail": [0.17, 0.14, 0.15, 0.16, 0.13, 0.15]},
            {"lr": 0.04, "val_loss": 0.30, "curve": [0.6, 0.3], "seconds": 0.1, "round": 0,
             "tail": [0.3] * 6},
            {"lr": 0.08, "val_loss": None, "curve": [0.9, None], "seconds": 0.1, "round": 0,
             "tail": [0.12, 0.13, None, None, None, None]}]  # diverged mid-epoch: inf score
        return {"candidates": candidates, "chosen_lr": 0.018, "best_lr": 0.02, "widened": False,
                "spacing": "log", "num_epochs": 2, "tail_evals": 6, "source": "short_runs"}

    html = build_report(_write(tmp_path, tune([0.25, 0.20, 0.14, 0.22, 0.21, 0.19]))).read_text()
    cells = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]*)</td><td>[^<]*</td>"
                       r"<td>(best)?</td>", html)
    assert [(c[0], c[2]) for c in cells] == [("0.01", "0.14 – 0.25"), ("0.02", "0.13 – 0.17"),
                                             ("0.04", "0.3 – 0.3"), ("0.08", "")]
    assert "lowest – highest over the last epoch" in html
    assert "within its own noise" in html  # the runner-up's 0.14 <= the best's 0.15
    clear = build_report(_write(tmp_path, tune([0.25, 0.20, 0.18, 0.22, 0.21, 0.19]))).read_text()
    assert "within its own noise" not in clear  # the runner-up's lowest is 0.18


def test_candidate_rows_take_the_best_from_every_scored_run():
    from trainwise.reporting.tuning import candidate_rows, within_noise

    rows = candidate_rows({"best_lr": 0.1, "candidates": [
        {"lr": 0.1, "val_loss": 0.1, "tail": None},  # the best, scored by one loss
        {"lr": 0.2, "val_loss": 0.3, "tail": [0.3, 0.2, 0.4]},
        {"lr": 0.3, "val_loss": 0.35, "tail": [0.35, 0.05, 0.4]}]})
    assert [r["spread"] for r in rows] == [None, (0.2, 0.4), (0.05, 0.4)]
    assert not within_noise(rows)  # runner-up 0.3's lowest (0.2) is above the best's 0.1
    assert within_noise(candidate_rows({"candidates": [
        {"lr": 0.1, "val_loss": 0.3, "tail": [0.3, 0.3]},
        {"lr": 0.2, "val_loss": 0.3, "tail": [0.3, 0.3]}]}))  # a tie is within noise
    assert not within_noise(candidate_rows({"candidates": [
        {"lr": 0.1, "val_loss": 0.3, "tail": [0.3, 0.2]}]}))  # one run: nothing to compare


def test_the_tuning_section_shows_every_batch_size_trial_and_the_precision(tmp_path):
    trials = [{"batch_size": 32, "attempt": 1, "status": "ok", "peak_bytes": 2**21,
               "samples_per_s": 900.0, "message": ""},
              {"batch_size": 64, "attempt": 1, "status": "chosen", "peak_bytes": 2**22,
               "samples_per_s": 1500.0, "message": ""},
              {"batch_size": 128, "attempt": 1, "status": "no_speedup", "peak_bytes": 2**23,
               "samples_per_s": 1550.0, "message": ""}]
    tune = {"candidates": [], "chosen_lr": 0.01, "source": "range_test",
            "batch_size": {"mode": "auto", "chosen": 64, "memory_limit": 8 * 2**30,
                           "headroom": 0.2, "trials": trials}}
    folder = _write(tmp_path, tune)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "precision": "bf16-mixed"}))
    html = build_report(folder).read_text()
    section = html.split('id="tuning"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td><td>1</td><td>([a-z ]+)</td>", section)
    assert rows == [("32", "ok"), ("64", "chosen"), ("128", "no speedup")]
    assert "<strong>64</strong>" in section and "20% of the memory limit" in section
    assert "Precision <code>bf16-mixed</code>" in section
    fixed = build_report(_write(tmp_path / "fixed", {
        "candidates": [], "batch_size": {"mode": "fixed", "chosen": 128}})).read_text()
    assert "128, from the config" in fixed and "Precision <code>" not in fixed


def _write(tmp_path, tune):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "meta.json").write_text(json.dumps({"name": "t", "verdict": "ok",
                                                    "data": {"task": "classification"}}))
    (tmp_path / "tune.json").write_text(json.dumps(tune))
    return tmp_path


def test_the_short_runs_axes_say_their_scale_and_tick_whole_epochs():
    """Audit s13 P13: two epochs had ticks 1.0, 1.2, ... 2.0, and a log axis was not said."""
    from trainwise.reporting.tuning import short_runs_figure

    tune = {"chosen_lr": 0.1, "candidates": [{"lr": 0.1, "curve": [13.0, 0.06]},
                                             {"lr": 0.01, "curve": [1.0, 0.07]}]}
    ax = short_runs_figure(tune).axes[0]
    ax.figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert ax.get_ylabel() == "validation loss (log scale)"
