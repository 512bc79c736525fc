"""A run killed mid-training (audit s15 O6): predict and load_model refuse its never-tested
best.pt, naming the epoch it stopped at and the resume command, unless allowed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import trainwise
from trainwise.cli import main
from trainwise.rundir import RunFolderError


@pytest.fixture
def finished(finished_run):
    """conftest's finished run (folder, x), read-only here: _killed_after_epoch_one copies it."""
    return finished_run


def _killed_after_epoch_one(finished, tmp_path):
    """The folder as a kill -9 in epoch 2 leaves it: meta.json as written after the tune stage
    (no verdict, no train in stage_seconds), history up to the first epoch row."""
    source, _ = finished
    folder = tmp_path / "killed"
    shutil.copytree(source, folder)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["verdict"]
    meta["stage_seconds"] = {k: v for k, v in meta["stage_seconds"].items()
                             if k in ("data", "split", "model", "check", "tune")}
    (folder / "meta.json").write_text(json.dumps(meta))
    rows = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    first_epoch = next(i for i, row in enumerate(rows) if row.get("kind") == "epoch")
    (folder / "history.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows[:first_epoch + 1]))
    return folder


def test_predict_refuses_a_killed_run_and_names_where_it_stopped(finished, tmp_path):
    folder = _killed_after_epoch_one(finished, tmp_path)
    x = finished[1][:5]
    with pytest.raises(RunFolderError) as caught:
        trainwise.predict(folder, x)
    said = str(caught.value)
    assert "epoch 1 of 3" in said and f"trainwise run --resume {folder}" in said
    with pytest.raises(RunFolderError, match="unfinished run"):
        trainwise.load_model(folder)
    # allowed, it predicts as the finished run's best.pt does (the same file)
    allowed = trainwise.predict(folder, x, allow_unfinished=True)
    assert allowed.equals(trainwise.predict(finished[0], x))


def test_cli_predict_exits_1_on_a_killed_run_unless_allowed(finished, tmp_path, capsys):
    folder = _killed_after_epoch_one(finished, tmp_path)
    np.savez(tmp_path / "new.npz", X=finished[1][:5])
    out = tmp_path / "p.csv"
    args = ["predict", str(folder), str(tmp_path / "new.npz"), "--out", str(out)]
    assert main(args) == 1
    assert not out.exists()
    assert "--allow-unfinished" in capsys.readouterr().err
    assert main([*args, "--allow-unfinished"]) == 0
    assert out.is_file()


def test_a_finished_run_predicts_as_before(finished):
    folder, x = finished
    assert len(trainwise.predict(folder, x[:3])) == 3


def test_predict_reads_meta_json_once(finished, monkeypatch):
    """Review VO12: the unfinished check read meta.json, then predict read it again."""
    import trainwise.prediction as prediction
    import trainwise.rundir as rundir

    reads = []
    real_read = rundir.read_meta

    def counted(folder):
        reads.append(folder)
        return real_read(folder)

    monkeypatch.setattr(rundir, "read_meta", counted)
    monkeypatch.setattr(prediction, "read_meta", counted)
    trainwise.predict(finished[0], finished[1][:5])
    assert len(reads) == 1
