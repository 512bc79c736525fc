"""What `trainwise.report(x)` accepts: a run folder's path. A notebook's TrainState or Monitor
raised a bare `TypeError: expected str, bytes or os.PathLike object, not TrainState` (audit s16
N10); this says what report() takes and where the curves of the object in hand are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainwise.findings import TrainwiseError

GET_A_FOLDER = ("wrap your loop in trainwise.Monitor('runs/x') (it writes runs/x/report.html "
                "when it closes), or train with trainwise.run(...) (result.run_dir)")


def run_folder_argument(value: Any) -> str | Path:
    """`value` when it is a path (str or os.PathLike); else a TrainwiseError with the fix."""
    if isinstance(value, str | os.PathLike):
        return value
    kind = type(value).__name__
    raise TrainwiseError(f"trainwise.report() takes a run folder's path and got an object of "
                         f"type {kind}: it renders the files a run folder holds. {_hint(value)}")


def _hint(value: Any) -> str:
    kind = type(value).__name__
    if kind == "TrainState":  # by name: importing train.loop here loads torch and Fabric
        return ("fit() writes no run folder; its curves are one call away: state.plot() (a "
                f"matplotlib Figure). For a report.html, {GET_A_FOLDER}.")
    folder = getattr(getattr(value, "run", None), "path", None)
    if kind == "Monitor" and folder is not None:
        return f"This Monitor writes into {str(folder)!r}: trainwise.report({str(folder)!r})."
    if kind == "Monitor":
        return ("This Monitor keeps everything in memory (Monitor(None)): its curves are "
                "trainwise.reporting.history_figure(monitor.history). For a report.html, "
                "give it a folder: trainwise.Monitor('runs/x').")
    if isinstance(getattr(value, "path", None), Path):  # a RunResult: result.run_dir
        return f"Pass its folder: trainwise.report({str(value.path)!r})."
    return f"Expected a path such as 'runs/20260101-120000-mnist1d'; {GET_A_FOLDER}."
