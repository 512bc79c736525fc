"""The report's "Reproduce and use" box: the command that made the run (meta.json's
`command`), the command that reruns it, and how to score new rows with it, or why
`trainwise predict` cannot (audit s12 S16: a reviewer reading only report.html could not
tell how the model is served)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainwise.command_line import shell_word
from trainwise.findings import Finding
from trainwise.prediction import unsaved_encoding
from trainwise.preprocessing import FILE_NAME, Preprocessing
from trainwise.user_model_record import recorded_rebuildable


def reproduce(path: Path, meta: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    """{command, resumed, rerun, rerun_by_name, rebuildable, predict, note} for the template;
    empty values are left out."""
    box: dict[str, Any] = {"command": meta.get("command") or "", "resumed": resumes(meta)}
    own = own_module(meta, findings)
    if (path / "config.toml").is_file():
        box.update(_rerun(path / "config.toml", meta, own))
    if own is not None:
        box["rebuildable"] = own["rebuildable"]
    if not (path / "checkpoints" / "best.pt").is_file():
        box["note"] = ("This run holds no trained model (no checkpoints/best.pt), so there is "
                       "nothing to score new rows with: train one with the rerun command.")
        return box
    if own is not None:
        box["note"] = ("This run trained a module you passed: score new rows in Python with "
                       f"trainwise.predict(\"{path}\", x, model=net), net built as before; "
                       "`trainwise predict` on the command line cannot rebuild it from this "
                       "run folder.")
        return box
    new_file = "new.csv" if (meta.get("data") or {}).get("columns") else "new.npz"
    box["predict"] = f"trainwise predict {shell_word(path)} {new_file}"
    note = _unscorable(path, meta, findings)
    if note:
        box["note"] = note
    return box


def resumes(meta: dict[str, Any]) -> list[dict[str, str]]:
    """{command, when} per --resume after the command that made the run, e.g. 'trainwise run
    --resume DIR' and 'from step 377 (2026-11-28T03:27:01)'. A run older than audit s13 P16
    recorded no command with its resumes (its `command` is then the last resume's)."""
    lines = []
    for resume in meta.get("resumed") or []:
        step = resume.get("from_step")
        when = (f"from step {step}" if step is not None else
                "restarted from the data stage (no training checkpoint)")
        lines.append({"command": resume.get("command") or "",
                      "when": when + (f" ({resume['at']})" if resume.get("at") else "")})
    return lines


def own_module(meta: dict[str, Any], findings: list[Finding]) -> dict[str, Any] | None:
    """{class, rebuildable} for a run of a module you passed (trainwise.run(model=net)), else
    None: meta.json's user_model, config model.user_class, or (a run older than both) the
    model stage's user_model finding, whose class is not recorded. `rebuildable` is what the
    run recorded: nothing is imported, since importing the module a folder names runs its
    code (audit s16 S1: `trainwise report` of a received folder ran it)."""
    model = ((meta.get("config") or {}).get("model") or {})
    record = meta.get("user_model") if isinstance(meta.get("user_model"), dict) else {}
    named = record.get("class") or model.get("user_class") or ""
    if not named and not any(f.code == "user_model" for f in findings):
        return None
    return {"class": named, "rebuildable": recorded_rebuildable(record)}


def _rerun(config: Path, meta: dict[str, Any], own: dict[str, Any] | None) -> dict[str, str]:
    """The command line reruns config.toml unless it was written by a run of your own module:
    that config is refused without the module (user_model_record.refuse_lost_user_model),
    unless its model.name names a class (review s12 VA2: the box offered the refused
    command)."""
    name = str(((meta.get("config") or {}).get("model") or {}).get("name", ""))
    if own is None or ":" in name:
        return {"rerun": f"trainwise run {shell_word(config)}"}
    box = {"rerun": f"trainwise.run(\"{config}\", model=net)"}
    if own["rebuildable"]:
        box["rerun_by_name"] = (f"trainwise run {shell_word(config)} --set "
                                f"'model.name=\"{own['class']}\"'")
    return box


def _unscorable(path: Path, meta: dict[str, Any], findings: list[Finding]) -> str:
    """Why `trainwise predict` refuses this run's rows, by predict's own rule
    (prediction.unsaved_encoding), or '' when it scores them."""
    if not (path / FILE_NAME).is_file():
        return (f"`trainwise predict` cannot score new rows yet: this run folder holds no "
                f"{FILE_NAME} (how the run normalised and encoded its rows). Write it without "
                f"retraining: trainwise run --resume {shell_word(path)}.")
    source = ((meta.get("config") or {}).get("data") or {}).get("source", "")
    why, arrays_ok = unsaved_encoding(Preprocessing.load(path), source, findings)
    if not why:
        return ""
    resume = "" if arrays_ok else (f" Write the vocabulary without retraining: trainwise run "
                                   f"--resume {shell_word(path)}, then predict.")
    return f"`trainwise predict` cannot score this run's table yet: {why}.{resume}"
