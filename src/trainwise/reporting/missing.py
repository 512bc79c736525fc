"""The evidence files a report is built from, said missing rather than read as empty.

read_findings and read_history return [] for a missing file, which is right for a run that
stopped before writing them and false for a finished run whose file was deleted or not
copied: a report that counts 4 warnings in its verdict and shows none (audit s12 S9)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from trainwise.command_line import shell_word

FINDINGS_MISSING = "findings.json is missing: this report lacks the run's findings"
# the recipe's verdict ends "; 4 warnings to read in the report." (recipe_verdict.run_verdict)
_WARNING_COUNT = re.compile(r"; \d+ warnings? to read in the report\.$")


def missing_evidence(path: Path, meta: dict[str, Any]) -> list[str]:
    """One banner line per evidence file the run wrote (by what meta.json records) but the
    folder lacks; [] for a complete folder."""
    notes = []
    if not (path / "findings.json").exists():
        notes.append(f"{FINDINGS_MISSING} (its warnings, errors and their fixes). Copy "
                     "findings.json back from the original run folder and run "
                     f"`trainwise report {shell_word(path)}` again.")
    if trained(meta) and not (path / "history.jsonl").exists():
        notes.append("history.jsonl is missing: the run trained (meta.json records a train "
                     "stage) but this report lacks its curves and test result. Copy "
                     "history.jsonl back from the original run folder and run "
                     f"`trainwise report {shell_word(path)}` again.")
    return notes


def trained(meta: dict[str, Any]) -> bool:
    """Whether the train stage ran: the recipe times each stage it ran in stage_seconds."""
    return "train" in (meta.get("stage_seconds") or {})


def verdict_without_count(verdict: str, findings_missing: bool) -> str:
    """The recorded verdict, its warning count replaced when the warnings cannot be shown."""
    if not findings_missing:
        return verdict
    return _WARNING_COUNT.sub("; findings.json is missing, so its warnings are not shown.",
                              verdict)


def say_missing(notes: list[str]) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
