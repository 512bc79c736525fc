"""The one result type every stage returns: a Finding (check, audit, diagnosis, verdict)."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

# The stages of the method, in order; a fix names one of these to go back to.
STAGES = ("setup", "data", "split", "model", "check", "tune", "train", "crossval", "evaluate",
          "report")


class Severity(str, Enum):
    """info < warning < error. A str, so `severity == "error"` and JSON stay as they were;
    ordered by rank, not str's alphabet, which put error < info < warning and made the
    natural notebook filter `f.severity >= Severity.WARNING` drop every error (user audit
    s16 N7). A plain string that names a severity compares by its rank too."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    def _compare(self, other: object, compare: Callable[[int, int], bool]) -> Any:
        if not isinstance(other, str):
            return NotImplemented  # another type: Python raises its TypeError
        name = str.__str__(other)  # the value of a Severity, the text of a str
        if name not in _RANK:  # not left to str's alphabet, which would answer quietly
            raise TypeError(f"cannot order {self!r} and {other!r}: a severity compares with "
                            f"another Severity or one of {', '.join(map(repr, _RANK))}. "
                            "Compare f.severity with Severity.WARNING, say.")
        return compare(_RANK[self.value], _RANK[name])

    def __lt__(self, other: object) -> Any:
        return self._compare(other, operator.lt)

    def __le__(self, other: object) -> Any:
        return self._compare(other, operator.le)

    def __gt__(self, other: object) -> Any:
        return self._compare(other, operator.gt)

    def __ge__(self, other: object) -> Any:
        return self._compare(other, operator.ge)


_RANK = {"info": 0, "warning": 1, "error": 2}


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

    def __str__(self) -> str:
        """One finding with its code: "warning [check] code: message" and "  fix: ..." below
        (the command line's lines leave the code out); print(finding) was the dataclass
        dump, the fix after ~1 kB of evidence (user audit s16 N15). repr() keeps every
        field."""
        where = "" if self.step is None else f" at step {self.step}"
        line = f"{self.severity.value} [{self.stage}] {self.code}{where}: {self.message}"
        return f"{line}\n  fix: {self.fix}" if self.fix else line


class Findings(list[Finding]):
    """A list of findings, as the verbs return them: a plain list (==, +, slicing, JSON
    all as before) that a notebook shows as a table (severity, stage, code, message, fix)
    instead of one line of dataclass dumps (1,796 characters for a check's 5, user audit
    s16 N15). print() gives one Finding per line, as the command line does."""

    def __str__(self) -> str:
        return "\n".join(map(str, self)) if self else "no findings"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's text view
        printer.text("Findings([...])" if cycle else str(self))

    def _repr_html_(self) -> str:  # Jupyter's view
        from trainwise.findings_html import findings_table

        return findings_table(self)

    def to_frame(self) -> Any:
        """The findings as a pandas DataFrame, one row each (evidence as a dict column)."""
        import pandas as pd

        columns = ["severity", "stage", "code", "message", "fix", "step", "evidence"]
        return pd.DataFrame([f.to_dict() for f in self], columns=columns)


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
    return max((f.severity for f in findings), default=Severity.INFO)


def rank(severity: Severity) -> int:
    """0 for info, 1 warning, 2 error: Severity's own order, as a number (-rank sorts errors
    first)."""
    return _RANK[severity.value]


def tally(findings: Iterable[Finding], plural: bool = False) -> str:
    """"1 error, 2 warning(s), 3 info", errors first; "" for none."""
    counts = Counter(f.severity.value for f in findings)
    return ", ".join(f"{counts[s]} {s}{'s' if plural and counts[s] > 1 and s != 'info' else ''}"
                     for s in sorted(_RANK, key=_RANK.get, reverse=True) if counts[s])


class TrainwiseError(Exception):
    """Base of every error we raise on purpose: the message says what, why and the fix."""



# The words a Python call's findings say their fixes in (one switch for diagnose, find_lr and
# tune_lr; review s16 VN6): "api", the call's own arguments and torch calls (fit's max_epochs=,
# TuneConfig(...)); "config", `trainwise run`'s config keys and stages (train.max_epochs).
FIX_TERMS = ("api", "config")


def check_fix_terms(fix_terms: str) -> None:
    """Refuse an unknown value: any other was silently taken as the Python wording."""
    if fix_terms not in FIX_TERMS:
        raise TrainwiseError(f"fix_terms={fix_terms!r}: expected \"api\" (fixes name this "
                             "call's arguments and torch calls) or \"config\" (the config keys "
                             "and stages of `trainwise run`, as the recipe asks).")
