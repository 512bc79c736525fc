"""train.max_minutes may change on --resume (audit s15 K18): a wall-clock budget says how long
to train, not what; the key a user stopped by a cluster's time limit needs on the next job."""

from __future__ import annotations

import json

from trainwise.cli import main

QUICK = ["data.source=\"digits\"", "data.max_samples=300", "train.max_epochs=2",
         "train.lr=0.01", "run.threads=1", "run.checks=false"]


def _sets(keys):
    return [x for key in keys for x in ("--set", key)]


def test_resume_takes_a_new_time_budget_but_not_a_new_training(tmp_path, capsys):
    assert main(["run", *_sets([*QUICK, f'run.out_dir="{tmp_path}"']), "--no-report"]) == 0
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert main(["run", "--resume", str(run), "--no-report", "--set",
                 "train.max_epochs=3"]) == 1  # what is trained still may not change
    assert "train.max_epochs" in capsys.readouterr().err
    assert main(["run", "--resume", str(run), "--no-report", "--set",
                 "train.max_minutes=30"]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["config"]["train"]["max_minutes"] == 30
    assert main(["run", "--resume", str(run), "--no-report"]) == 0  # and again without it
    # config.toml took the new budget, so the plain resume an interrupt prints keeps 30 rather
    # than the first attempt's 0 = unlimited (review VO3)
    assert "max_minutes = 30" in (run / "config.toml").read_text()
    assert json.loads((run / "meta.json").read_text())["config"]["train"]["max_minutes"] == 30
