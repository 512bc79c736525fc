"""A resume with no training checkpoint reruns every stage in the run's folder; on data that
changed since the run started it is refused, as a resume from a checkpoint is (audit s15 O5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from trainwise.cli import main


def _interrupt(ctx):
    raise KeyboardInterrupt  # Ctrl-C in the split stage: the data stage has recorded its print


def test_resume_without_checkpoint_refuses_changed_data(tmp_path, monkeypatch, capsys):
    import trainwise.recipe as recipe

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    table["label"] = rng.integers(0, 2, 200)
    source = tmp_path / "table.csv"
    table.to_csv(source, index=False)
    data_stage = dict(recipe.STAGES)["data"]
    monkeypatch.setattr(recipe, "STAGES", [("data", data_stage), ("split", _interrupt)])
    out = tmp_path / "runs"
    assert main(["run", str(source), "--set", "data.target=label", "--set",
                 f'run.out_dir="{out}"', "--no-report"]) == 130
    [run] = list(out.iterdir())
    before = json.loads((run / "meta.json").read_text())["data"]["fingerprint"]
    table.iloc[:150].to_csv(source, index=False)  # the file was rewritten since
    monkeypatch.setattr(recipe, "STAGES", [("data", data_stage)])
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--no-report"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "changed since the run started" in said and f"{before} then" in said
    assert json.loads((run / "meta.json").read_text())["data"]["fingerprint"] == before
    table.to_csv(source, index=False)  # restored: the same resume goes on
    assert main(["run", "--resume", str(run), "--no-report"]) == 0


def test_resume_without_checkpoint_reads_the_data_once(tmp_path, monkeypatch):
    """Review VO6: the fingerprint check loaded the data, dropped it, and the data stage loaded
    and fingerprinted the same file again (the slowest step of a restart, done twice)."""
    import trainwise.recipe as recipe
    import trainwise.stages as stages

    data_stage = dict(recipe.STAGES)["data"]
    monkeypatch.setattr(recipe, "STAGES", [("data", data_stage), ("split", _interrupt)])
    out = tmp_path / "runs"
    assert main(["run", "--set", 'data.source="digits"', "--set", "data.max_samples=300",
                 "--set", f'run.out_dir="{out}"', "--no-report"]) == 130
    [run] = list(out.iterdir())
    before = json.loads((run / "meta.json").read_text())["data"]
    loads = []
    real_load = stages.load_data
    monkeypatch.setattr(stages, "load_data", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    monkeypatch.setattr(recipe, "STAGES", [("data", data_stage)])
    assert main(["run", "--resume", str(run), "--no-report"]) == 0
    assert len(loads) == 1
    after = json.loads((run / "meta.json").read_text())["data"]
    assert after["fingerprint"] == before["fingerprint"] and after["notes"] == before["notes"]
