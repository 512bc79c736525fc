"""The report's "Reproduce and use" box: the command that made the run (meta.json's
`command`), the command that reruns it, and how to score new rows with it, or why
`trainwise predict` cannot (audit s12 S16: a reviewer reading only report.html could not
tell how the model is served)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainwise.findings import Finding

# column treatments (data/column_table.py) whose encoding preprocess.npz does not keep, so
# predict refuses the table (README: "cannot be scored")
_UNSAVED = {"read as words": "its free text was read as words",
            "date, as": "a date column became features"}


def reproduce(path: Path, meta: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    """{command, rerun, predict, note} for the template; empty values are left out."""
    box: dict[str, Any] = {"command": meta.get("command") or ""}
    if (path / "config.toml").is_file():
        box["rerun"] = f"trainwise run {path / 'config.toml'}"
    if not (path / "checkpoints" / "best.pt").is_file():
        box["note"] = ("This run holds no trained model (no checkpoints/best.pt), so there is "
                       "nothing to score new rows with: train one with the rerun command.")
        return box
    if any(f.code == "user_model" for f in findings):
        box["note"] = ("This run trained a module you passed: score new rows in Python with "
                       f"trainwise.predict(\"{path}\", x, model=net), net built as before; "
                       "`trainwise predict` on the command line cannot rebuild it.")
        return box
    new_file = "new.csv" if (meta.get("data") or {}).get("columns") else "new.npz"
    box["predict"] = f"trainwise predict {path} {new_file}"
    unsaved = _unsaved_encodings(meta)
    if unsaved:
        box["note"] = (f"`trainwise predict` cannot score this run's table yet: {unsaved} "
                       "(an encoding preprocess.npz does not keep).")
    return box


def _unsaved_encodings(meta: dict[str, Any]) -> str:
    found = []
    for row in (meta.get("data") or {}).get("columns") or []:
        for start, why in _UNSAVED.items():
            if str(row.get("treatment", "")).startswith(start) and why not in found:
                found.append(why)
    return " and ".join(found)
