"""The folder of a `trainwise.Monitor`: a new run, an earlier one continued, or refused.

A user who resumes their loop from their own checkpoint points a new Monitor at the same
folder; deleting its history there would silently lose the epochs before the checkpoint (and
restart the step count at 1), so an earlier Monitor run is only continued (resume=True) or
deleted (overwrite=True) when asked, and refused otherwise, naming both options.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from trainwise.findings import TrainwiseError
from trainwise.rundir import RunDir, read_history

OWN_FILES = ("history.jsonl", "findings.json", "report.html", "meta.json")
MONITOR_SOURCE = "trainwise.Monitor"  # meta.json "source" of a Monitor's folder


def open_folder(path: Path, *, resume: bool, overwrite: bool
                ) -> tuple[RunDir, list[dict[str, Any]]]:
    """(the run folder, the history rows an earlier Monitor run there left to continue from:
    [] for a new run). A folder another tool wrote (a `trainwise run`) is refused."""
    if resume and overwrite:
        raise TrainwiseError("Monitor(resume=True, overwrite=True): choose one: resume=True "
                             "continues the run in the folder, overwrite=True deletes it.")
    source = written_by(path / "meta.json")
    if source not in (None, MONITOR_SOURCE):
        raise TrainwiseError(
            f"{path} holds {source}; a Monitor there would delete its history, findings and "
            "report files. Give the Monitor a folder of its own, e.g. "
            "trainwise.Monitor(\"runs/my-loop\").")
    earlier = read_history(path)
    if earlier and resume:
        run = RunDir(path)
        return run, run.keep_history(_finished_epochs(earlier))
    if earlier and not overwrite:
        raise TrainwiseError(_refusal(path, earlier))
    for name in OWN_FILES:
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "tensorboard", ignore_errors=True)
    return RunDir(path), []


def _finished_epochs(rows: list[dict[str, Any]]) -> int:
    """How many rows to keep on resuming: up to the last epoch row. The steps of an epoch left
    unfinished are trained again from the checkpoint (saved at an epoch's end), so their rows
    would be counted twice."""
    ends = [i for i, row in enumerate(rows) if row.get("kind") == "epoch"]
    return ends[-1] + 1 if ends else 0


def _refusal(path: Path, rows: list[dict[str, Any]]) -> str:
    epochs = [row["epoch"] for row in rows if row.get("kind") == "epoch"]
    steps = [row["step"] for row in rows if row.get("kind") == "step"]
    held = f"{len(epochs)} epoch(s), {max(steps, default=0)} step(s)"
    return (f"{path} already holds a Monitor run ({held}); a new Monitor would delete its "
            "history. Resuming your loop from a checkpoint: trainwise.Monitor("
            f"\"{path}\", resume=True) continues it (steps and epochs count on from where it "
            f"ended). Starting over: trainwise.Monitor(\"{path}\", overwrite=True) deletes it. "
            "Or give this run a folder of its own.")


def written_by(meta: Path) -> str | None:
    """What wrote a folder's meta.json, in words: "trainwise.Monitor" for a Monitor's, None
    when there is no such file."""
    try:
        text = meta.read_text()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("source") == MONITOR_SOURCE:
        return MONITOR_SOURCE
    if isinstance(data, dict) and {"config_tag", "stage_seconds"} <= data.keys():
        return "the results of a `trainwise run` (its meta.json says so)"
    return "a meta.json that no trainwise.Monitor wrote"
