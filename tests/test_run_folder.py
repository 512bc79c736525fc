"""A run folder stands on its own: its config.toml reruns from any working folder."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

import trainwise
from trainwise import rundir
from trainwise.config import load_config
from trainwise.resume import config_tag
from trainwise.rundir import RunDir, read_findings


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


class _FixedClock:
    @staticmethod
    def now():
        return datetime(2026, 1, 1, 12, 0, 0)


def test_a_run_never_takes_an_existing_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "datetime", _FixedClock)
    (tmp_path / "20260101-120000-arrays").mkdir()
    (tmp_path / "20260101-120000-arrays-2").write_text("a file of that name")
    assert RunDir.create(tmp_path, "arrays").path.name == "20260101-120000-arrays-3"


def test_runs_starting_at_once_get_distinct_folders(tmp_path, monkeypatch):
    # a slow exists() (a network drive) widens the window between checking a name and
    # creating it, where the old exists()-then-mkdir let several runs share one folder
    monkeypatch.setattr(rundir, "datetime", _FixedClock)
    exists = Path.exists

    def slow_exists(self, *args, **kwargs):
        found = exists(self, *args, **kwargs)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(Path, "exists", slow_exists)
    start = threading.Barrier(6)

    def create(_):
        start.wait()
        return RunDir.create(tmp_path, "arrays").path

    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(create, range(6)))
    assert len(set(paths)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
