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

import trainwise
from trainwise.cli import main
from trainwise.findings import info
from trainwise.reporting.reproduce import reproduce

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
    box = reproduce(tmp_path, {"data": {"columns": [
        {"column": "note", "treatment": "read as words (token ids)"}]}}, [])
    assert box["predict"].endswith("new.csv") and "read as words" in box["note"]
