"""The one result type every stage returns: a Finding (check, audit, diagnosis, verdict)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

# The stages of the method, in order; a fix names one of these to go back to.
STAGES = ("setup", "data", "split", "model", "check", "tune", "train", "crossval", "evaluate",
          "report")


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """What a stage found: `message` says what happened, `fix` what to do and where."""

    stage: str
    severity: Severity
    code: str  # stable, machine-readable name, e.g. "loss_at_init_off"
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""
    step: int | None = None  # where in training it fired, for drawing it on the curves

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["severity"] = self.severity.value
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Finding:
        return cls(**{**row, "severity": Severity(row["severity"])})


def info(stage: str, code: str, message: str, **evidence: Any) -> Finding:
    return Finding(stage, Severity.INFO, code, message, evidence)


def warning(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    return Finding(stage, Severity.WARNING, code, message, evidence, fix)


def error(stage: str, code: str, message: str, fix: str, **evidence: Any) -> Finding:
    return Finding(stage, Severity.ERROR, code, message, evidence, fix)


def explained(finding: Finding, note: str, fix: str) -> Finding:
    """`finding` as an info: a problem a later stage settled or a setting explains, its
    message followed by `note` (why it is not a problem here) and `fix` replaced."""
    return replace(finding, severity=Severity.INFO, message=f"{finding.message} {note}", fix=fix)


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def worst(findings: Iterable[Finding]) -> Severity:
    levels = {f.severity for f in findings}
    for level in (Severity.ERROR, Severity.WARNING):
        if level in levels:
            return level
    return Severity.INFO


class TrainwiseError(Exception):
    """Base of every error we raise on purpose: the message says what, why and the fix."""

