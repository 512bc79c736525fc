"""A run folder stands on its own: its config.toml reruns from any working folder."""

import os

import numpy as np
import pandas as pd

import trainwise
from trainwise.config import load_config
from trainwise.resume import config_tag
from trainwise.rundir import read_findings


def test_config_toml_of_a_run_reruns_from_another_working_folder(tmp_path, monkeypatch):
    start, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (start / "data").mkdir(parents=True)
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80),
                  "label": rng.integers(0, 2, 80)}).to_csv(start / "data/t.csv", index=False)
    monkeypatch.chdir(start)
    first = trainwise.run({"data": {"source": "data/t.csv"}}, until="data", report=False,
                          overrides=[f'run.out_dir="{tmp_path / "runs"}"'])
    assert first.ok, first.verdict
    saved = load_config(first.path / "config.toml")
    assert saved.data.source == os.path.join(start, "data", "t.csv")  # was 'data/t.csv'
    meta = (first.path / "meta.json").read_text()
    assert config_tag(saved) in meta  # --resume from elsewhere matches the checkpoints' tag

    monkeypatch.chdir(elsewhere)
    again = trainwise.run(first.path / "config.toml", until="data", report=False)
    assert again.ok, [f.message for f in read_findings(again.path)]
