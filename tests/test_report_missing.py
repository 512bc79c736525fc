"""A report rebuilt from a run folder missing findings.json or history.jsonl says so (audit
s12 S9): not a verdict counting warnings it cannot show, nor "no training history" for a run
that trained."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from trainwise.reporting import build_report

VERDICT = "Test accuracy 94.5%; 4 warnings to read in the report."


def _folder(tmp_path: Path, trained: bool) -> Path:
    seconds = {"data": 0.5, "train": 0.4, "evaluate": 0.1} if trained else {"data": 0.5}
    (tmp_path / "meta.json").write_text(json.dumps({
        "name": "t", "verdict": VERDICT, "stage_seconds": seconds,
        "data": {"task": "classification"}}))
    return tmp_path


def _text(run: Path) -> str:
    text = build_report(run).read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def test_a_missing_findings_json_is_said_and_its_warnings_are_not_counted(tmp_path,
                                                                          capsys) -> None:
    run = _folder(tmp_path, trained=False)
    text = _text(run)
    assert "findings.json is missing: this report lacks the run's findings" in text
    assert "4 warnings" not in text and "0 warnings" not in text
    assert "Test accuracy 94.5%; findings.json is missing, so its warnings are not shown." \
        in text
    assert "findings.json is missing" in capsys.readouterr().err


def test_a_trained_run_without_history_says_the_file_is_missing(tmp_path, capsys) -> None:
    run = _folder(tmp_path, trained=True)
    (run / "findings.json").write_text("[]")
    text = _text(run)
    assert "No training history in this run" not in text
    assert "history.jsonl is missing" in text and "findings.json is missing" not in text
    assert "history.jsonl is missing" in capsys.readouterr().err


def test_a_run_that_never_trained_has_no_training_history_and_no_banner(tmp_path,
                                                                        capsys) -> None:
    run = _folder(tmp_path, trained=False)
    (run / "findings.json").write_text("[]")
    text = _text(run)
    assert "No training history in this run" in text
    assert "is missing" not in text and capsys.readouterr().err == ""
