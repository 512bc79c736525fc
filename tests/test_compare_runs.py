"""`trainwise compare` and trainwise.compare_runs (audit s12 L5): which run was best, and why."""

import json
import math

from trainwise.cli import main
from trainwise.comparison import FOOTNOTE, SPLIT_NOTE, compare_runs
from trainwise.config import from_dict, to_toml
from trainwise.findings import error, info, warning
from trainwise.run_result import RunResult


def _config(name, lr, seed):
    """config.toml as the run writes it (every key; batch_size commented out when left to the
    tune stage), each run under its own run.name and run.out_dir."""
    return to_toml(from_dict({"data": {"source": "digits"},
                              "train": {"lr": lr, "max_epochs": 3},
                              "run": {"seed": seed, "name": name, "out_dir": f"out_{name}"}}))


def _run(root, name, lr, seed, val_losses, test=None, findings=(), meta=None):
    """A run folder as `trainwise run` writes it, with the parts compare reads."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(_config(name, lr, seed))
    meta = {"name": name, "config": {}, **({"test": test} if test else {}), **(meta or {})}
    (folder / "meta.json").write_text(json.dumps(meta))
    rows = [{"kind": "step", "step": 1, "epoch": 1, "loss": 2.0}]
    rows += [{"kind": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train_loss": 1.0,
              "val_loss": loss} for i, loss in enumerate(val_losses)]
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "findings.json").write_text(json.dumps([f.to_dict() for f in findings]))
    return folder


def _three(tmp_path):
    runs = tmp_path / "runs"
    # b has the best validation loss (0.3 at epoch 2) but not the best test accuracy (c's):
    # the table must follow the validation loss
    _run(runs, "a", 0.003, 0, [0.9, 0.8, 0.7], {"test_accuracy": 0.80},
         [warning("train", "w", "m", "f"), info("data", "i", "m")])
    _run(runs, "b", 0.01, 0, [0.5, 0.3, 0.4], {"test_accuracy": 0.85})
    _run(runs, "c", 0.03, 1, [0.6, 0.5, 0.45], {"test_accuracy": 0.90},
         [warning("train", "w", "m", "f"), warning("data", "w2", "m", "f")])
    _run(runs, "d", 0.1, 0, [1.5], None, [error("train", "diverged", "m", "f")])  # unfinished
    (runs / "data" / "0123abcd").mkdir(parents=True)  # the in-memory data store: skipped
    return runs


def test_rows_are_sorted_by_validation_loss_with_only_the_differing_keys(tmp_path):
    table = compare_runs([str(_three(tmp_path) / "*")])
    assert list(table["run"]) == ["b", "c", "a", "d"]  # not c first, which tests best
    # data.source and train.max_epochs are the same in all four; batch_size is commented out;
    # run.name and run.out_dir say where, not what (review s12 VA9)
    assert list(table.columns) == ["path", "run", "run.seed", "train.lr", "best_epoch",
                                   "best_val_loss", "test_accuracy", "warnings", "errors"]
    assert list(table["best_epoch"]) == [2, 3, 3, 1]
    assert list(table["best_val_loss"]) == [0.3, 0.45, 0.7, 1.5]
    assert list(table["train.lr"]) == [0.01, 0.03, 0.003, 0.1]
    assert list(table["warnings"]) == [0, 2, 1, 0]
    assert list(table["errors"]) == [0, 0, 0, 1]
    assert math.isnan(table["test_accuracy"].iloc[3])  # d stopped before its test


def test_the_command_prints_the_table_and_the_footnote_and_json(tmp_path, capsys):
    runs = _three(tmp_path)
    assert main(["compare", str(runs)]) == 0  # a folder holding runs stands for them all
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "run.seed", "train.lr", "best_epoch", "best_val_loss",
                                "test_accuracy", "warnings", "errors"]
    assert lines[1].split() == ["b", "0", "0.01", "2", "0.3", "0.85", "0", "0"]
    assert lines[4].split() == ["d", "0", "0.1", "1", "1.5", "-", "0", "1"]
    assert lines[5] == FOOTNOTE and "leaks the test set" in FOOTNOTE
    assert main(["compare", str(runs / "a"), str(runs / "d"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in answer["runs"]] == ["a", "d"]
    assert answer["runs"][1]["test_accuracy"] is None  # NaN is no JSON
    # a and d share run.seed = 0: only train.lr differs between them
    assert set(answer["runs"][0]) == {"path", "run", "train.lr", "best_epoch",
                                      "best_val_loss", "test_accuracy", "warnings", "errors"}


def test_a_folder_that_is_not_a_run_is_named_and_exits_1(tmp_path, capsys):
    runs = _three(tmp_path)
    (tmp_path / "notes").mkdir()
    assert main(["compare", str(runs / "a"), str(tmp_path / "notes")]) == 1
    message = " ".join(capsys.readouterr().err.split())
    assert f"'{tmp_path / 'notes'}' is not a run folder" in message
    assert main(["compare", str(tmp_path / "missing")]) == 1
    assert f"there is no folder '{tmp_path / 'missing'}'" in " ".join(
        capsys.readouterr().err.split())


def test_report_path_is_none_when_no_report_was_written(tmp_path):
    result = RunResult(tmp_path, [], "verdict")
    assert result.report_path is None  # was tmp_path/report.html, a file that did not exist
    (tmp_path / "report.html").write_text("<html></html>")
    assert result.report_path == tmp_path / "report.html"


def test_compare_runs_is_a_verb_of_the_package():
    import trainwise

    assert trainwise.compare_runs is compare_runs
    assert "compare_runs" in trainwise.__all__


def test_a_key_an_older_trainwise_did_not_write_is_its_default_not_a_difference(tmp_path):
    # review s12 VA9: a run made before model.user_class existed showed '-' against ''
    runs = _three(tmp_path)
    older = runs / "a" / "config.toml"
    text = older.read_text()
    assert 'user_class = ""' in text
    older.write_text(text.replace('user_class = ""\n', ""))
    table = compare_runs([runs])
    assert "model.user_class" not in table.columns
    assert [c for c in table.columns if "." in c] == ["run.seed", "train.lr"]


def test_only_the_runs_own_test_metrics_and_the_cross_validation_mean(tmp_path):
    # review s12 VA8: test_mean_rmse is the RMSE of predicting the training mean (a baseline)
    runs = tmp_path / "runs"
    _run(runs, "a", 0.01, 0, [0.5], {"test_rmse": 3.0, "test_mean_rmse": 10.0})
    _run(runs, "b", 0.03, 0, [0.4], {"test_rmse": 2.5, "test_mean_rmse": 10.0},
         meta={"cross_validation": {"metric": "val_rmse", "mean": 2.75, "std": 0.1}})
    table = compare_runs([runs])
    assert list(table.columns[-4:]) == ["test_rmse", "cv_val_rmse", "warnings", "errors"]
    assert list(table["test_rmse"]) == [2.5, 3.0]
    assert table["cv_val_rmse"].iloc[0] == 2.75 and math.isnan(table["cv_val_rmse"].iloc[1])
    _run(runs, "c", 0.01, 1, [0.6], {"test_accuracy": 0.8, "test_balanced_accuracy": 0.75})
    table = compare_runs([runs / "c"])
    assert table.iloc[0][["test_accuracy", "test_balanced_accuracy"]].tolist() == [0.8, 0.75]


def test_runs_on_different_validation_rows_are_sorted_within_their_split(tmp_path, capsys):
    # review s12 VA10: a wine run's 0.0007 ranked above churn runs on another file
    runs = tmp_path / "runs"
    wine, churn = {"split": {"fingerprint": "eba5bf54b1bc1334"}}, \
        {"split": {"fingerprint": "73629784d7e310aa"}}
    _run(runs, "churn1", 0.01, 0, [0.45], meta=churn)
    _run(runs, "wine", 0.01, 0, [0.5], meta=wine)
    _run(runs, "churn2", 0.03, 0, [0.4], meta=churn)
    _run(runs, "wine2", 0.03, 0, [0.7], meta=wine)
    table = compare_runs([runs])
    # churn holds the best run (0.4): its split first, each split by its own loss
    assert list(table["run"]) == ["churn2", "churn1", "wine", "wine2"]
    splits = list(table["split"])  # 8 digits of the data and split fingerprints' hash
    assert splits[0] == splits[1] != splits[2] == splits[3] and len(splits[0]) == 8
    assert main(["compare", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"{FOOTNOTE} {SPLIT_NOTE}"
    assert "do not compare" in SPLIT_NOTE
    same = compare_runs([runs / "churn1", runs / "churn2"])  # one split: no column, no note
    assert "split" not in same.columns and list(same["run"]) == ["churn2", "churn1"]


def test_the_same_split_of_another_data_set_is_another_split(tmp_path):
    # review s12 F3: the split fingerprint hashes row indices only, so two files of the same
    # length split with the same seed share it; the data fingerprint tells them apart
    runs = tmp_path / "runs"
    split = {"fingerprint": "eba5bf54b1bc1334"}
    _run(runs, "v1a", 0.01, 0, [0.5], meta={"data": {"fingerprint": "aaaa"}, "split": split})
    _run(runs, "v2", 0.01, 0, [0.3], meta={"data": {"fingerprint": "bbbb"}, "split": split})
    _run(runs, "v1b", 0.03, 0, [0.7], meta={"data": {"fingerprint": "aaaa"}, "split": split})
    _run(runs, "v1c", 0.1, 0, [0.4], meta={"data": {"fingerprint": "aaaa"}, "split": split})
    table = compare_runs([runs])
    assert list(table["run"]) == ["v2", "v1c", "v1a", "v1b"]  # v1c's 0.4 not ranked with v2's
    splits = list(table["split"])
    assert splits[0] != splits[1] == splits[2] == splits[3]
    same = compare_runs([runs / "v1a", runs / "v1b"])
    assert "split" not in same.columns
