"""meta.json records the command that made a run, and the report says how to rerun it and
score new rows with it (audit s12 S16)."""

from __future__ import annotations

import html
import json
import re
import shlex
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import trainwise
from trainwise.cli import main
from trainwise.findings import info
from trainwise.preprocessing import Preprocessing
from trainwise.reporting.reproduce import reproduce
from trainwise.rundir import read_findings, read_meta

QUICK = ["--set", "train.max_epochs=1", "--set", "run.threads=1", "--set", "run.checks=false",
         "--set", "train.lr=0.01", "--set", "train.batch_size=32"]


def _box(report: str) -> str:
    box = report[report.index('id="reproduce"'):]
    box = box[:box.index("</div>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", box)))


def test_a_cli_run_records_its_command_and_the_report_says_how_to_use_it(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (150, 3))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x @ [1.0, 2.0, 0.5]}).to_csv(
        tmp_path / "t.csv", index=False)
    out = tmp_path / "runs"
    argv = ["run", str(tmp_path / "t.csv"), "--set", "data.target=\"y\"", *QUICK,
            "--set", f"run.out_dir=\"{out}\""]
    assert main(argv) == 0
    [folder] = list(out.glob("*-t"))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["command"] == shlex.join(["trainwise", *argv])
    box = _box((folder / "report.html").read_text(encoding="utf-8"))
    assert f"made by: {meta['command']}" in box
    assert f"rerun it: trainwise run {folder / 'config.toml'}" in box
    assert f"score new rows: trainwise predict {folder} new.csv" in box
    # audit s16 S4 / S14: the report says what it carries before it is shared
    assert ("before sharing this file: it carries the identifier values of the rows it flags, "
            "sample images and file names, absolute data paths and the command line") in box


def test_a_resume_keeps_the_command_that_made_the_run_and_is_listed_after_it(tmp_path):
    # audit s13 P16: meta.json's command became `trainwise run --resume RUN`, and the report's
    # "made by" lost the command that made the run
    out = tmp_path / "runs"
    argv = ["run", "--set", 'data.source="wine"', *QUICK, "--set", f"run.out_dir=\"{out}\""]
    assert main([*argv, "--no-report"]) == 0
    [folder] = list(out.iterdir())
    again = ["run", "--resume", str(folder)]
    assert main(again) == 0 and main(again) == 0  # twice: the list grows
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["command"] == shlex.join(["trainwise", *argv, "--no-report"])
    assert [r["command"] for r in meta["resumed"]] == [shlex.join(["trainwise", *again])] * 2
    step = meta["resumed"][0]["from_step"]
    assert step > 0 and meta["resumed"][1]["from_step"] == step  # training had ended there
    box = _box((folder / "report.html").read_text(encoding="utf-8"))
    assert f"made by: {meta['command']} resumed by: {shlex.join(['trainwise', *again])} , " \
           f"from step {step} ({meta['resumed'][0]['at']})" in box


def test_an_api_run_says_it_was_trainwise_run(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (150, 3)).astype(np.float32)
    result = trainwise.run(data=(x, x @ [1.0, 2.0, 0.5]), until="data", report=False,
                           overrides=["run.threads=1", f"run.out_dir=\"{tmp_path}\""])
    meta = json.loads((result.path / "meta.json").read_text())
    assert meta["command"] == f"trainwise.run(...) from Python ({shlex.join(sys.argv)})"


def test_a_run_of_your_own_module_is_scored_in_python_with_model(tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"")
    box = reproduce(tmp_path, {"command": "trainwise.run(...)"},
                    [info("model", "user_model", "Net, 1,234 parameters.")])
    assert "predict" not in box and "model=net" in box["note"]
    Preprocessing(kind="tokens", task="classification", input_shape=(8,), input_dtype="int64",
                  class_names=["a", "b"],
                  vocab_size=9).save(tmp_path)  # written by a trainwise before vocabularies
    box = reproduce(tmp_path, {"data": {"columns": [
        {"column": "note", "treatment": "read as words (token ids)"}]},
        "config": {"data": {"source": "notes.csv"}}}, [])
    assert box["predict"].endswith("new.csv") and "does not hold that vocabulary" in box["note"]
    assert f"trainwise run --resume {tmp_path}" in box["note"]


def test_a_text_run_that_saved_its_vocabulary_is_said_to_be_scored(tmp_path) -> None:
    # review s13 VA1: the box kept its own rule ("read as words": cannot be scored) while
    # predict scores a run whose preprocess.npz holds the vocabulary
    rng = np.random.default_rng(0)
    neutral = "the film plot was quite a story and it".split()
    frame = pd.DataFrame({"review": [" ".join([("good", "bad")[i % 2], *rng.choice(neutral, 6)])
                                     for i in range(240)], "label": ["pos", "neg"] * 120})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    result = trainwise.run(report=False, overrides=[
        o for o in QUICK if o != "--set"] + [f"run.out_dir=\"{tmp_path / 'runs'}\"",
                                             f"data.source=\"{tmp_path / 'reviews.csv'}\""])
    assert Preprocessing.load(result.path).vocabulary
    box = reproduce(result.path, read_meta(result.path), read_findings(result.path))
    assert box["predict"] == f"trainwise predict {result.path} new.csv"
    assert "note" not in box, box.get("note")


class Tiny(nn.Module):  # importable from this module and built with no arguments
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 2)

    def forward(self, x):
        return self.body(x)


def _own_run_folder(tmp_path, named: str, name: str = "auto"):
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"")
    (tmp_path / "config.toml").write_text("")
    return {"user_model": {"class": named, "importable": True},
            "config": {"model": {"name": name, "user_class": named}}}


def test_a_run_of_your_own_module_is_rerun_with_model_not_the_refused_command(tmp_path):
    # review s12 VA2: the box offered `trainwise run RUN/config.toml`, which is refused
    config = tmp_path / "config.toml"
    box = reproduce(tmp_path, _own_run_folder(tmp_path, "torch.nn.modules.container:Sequential"),
                    [])
    assert box["rerun"] == f"trainwise.run(\"{config}\", model=net)"
    assert "rerun_by_name" not in box and box["rebuildable"] is False
    assert "predict" not in box and "model=net" in box["note"]
    tiny = f"{Tiny.__module__}:Tiny"
    box = reproduce(tmp_path, _own_run_folder(tmp_path, tiny), [])
    assert box["rerun"] == f"trainwise.run(\"{config}\", model=net)" and box["rebuildable"]
    assert box["rerun_by_name"] == f"trainwise run {config} --set 'model.name=\"{tiny}\"'"
    # model.name names the class: the command line builds it, so it reruns the config as is
    box = reproduce(tmp_path, _own_run_folder(tmp_path, tiny, name=tiny), [])
    assert box["rerun"] == f"trainwise run {config}"


def test_the_box_and_the_provenance_row_agree_on_a_sequential(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (150, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    result = trainwise.run(model=net, data=(x, y), overrides=[
        o for o in QUICK if o != "--set"] + [f"run.out_dir=\"{tmp_path}\""])
    report = (result.path / "report.html").read_text(encoding="utf-8")
    box = _box(report)
    assert f"rerun it: trainwise.run(\"{result.path / 'config.toml'}\", model=net)" in box
    assert "trainwise run " not in box
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", report)))
    assert "container:Sequential (not rebuildable by model.name" in text
    with pytest.raises(trainwise.ConfigError, match="not rebuildable by model.name"):
        trainwise.run(result.path / "config.toml", report=False, until="data")


def test_reading_a_received_run_folder_imports_none_of_its_code(tmp_path, monkeypatch):
    # audit s16 S1: `trainwise report .` in a received folder whose meta.json names
    # folder_module:Net imported folder_module.py from the working folder (its code ran)
    from trainwise.config_files import _user_model_note

    (tmp_path / "received_module_s1.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('ran').write_text('x')\n"
        "import torch.nn as nn\nclass Net(nn.Module):\n    pass\n")
    meta = _own_run_folder(tmp_path, "received_module_s1:Net", name="received_module_s1:Net")
    meta["config"]["model"]["folder"] = str(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    monkeypatch.chdir(tmp_path)
    box = reproduce(tmp_path, meta, [])
    note = _user_model_note(tmp_path)
    assert not (tmp_path / "ran").exists() and "received_module_s1" not in sys.modules
    # what the run recorded (importable) is said, not checked again by importing
    assert box["rebuildable"] and 'model.name = "received_module_s1:Net"' in note


def test_the_commands_to_paste_are_one_shell_word_per_path(tmp_path) -> None:
    # audit s16 S6: a run folder named after "my data $(touch PWNED).csv" gave
    # `trainwise predict runs/...-my data $(touch PWNED) new.csv`: pasted, it ran the touch
    from trainwise.config import ConfigError
    from trainwise.config_files import refuse_run_folder

    path = tmp_path / "20261128-105221-my data $(touch PWNED)"
    path.mkdir()
    meta = _own_run_folder(path, f"{Tiny.__module__}:Tiny")
    meta_plain = {"data": {"columns": [{"column": "a"}]}, "config": {"model": {"name": "auto"}}}
    box = reproduce(path, meta_plain, [])
    assert shlex.split(box["predict"]) == ["trainwise", "predict", str(path), "new.csv"]
    assert shlex.split(box["rerun"]) == ["trainwise", "run", str(path / "config.toml")]
    resume = box["note"][box["note"].index("trainwise run --resume"):].rstrip(".")
    assert shlex.split(resume) == ["trainwise", "run", "--resume", str(path)]
    by_name = reproduce(path, meta, [])["rerun_by_name"]
    assert shlex.split(by_name)[:3] == ["trainwise", "run", str(path / "config.toml")]
    (path / "meta.json").write_text("{}")
    with pytest.raises(ConfigError) as refused:
        refuse_run_folder(path)
    said = str(refused.value)
    report = said[said.index("`trainwise report ") + 1:said.rindex("`")]
    assert shlex.split(report) == ["trainwise", "report", str(path)]
