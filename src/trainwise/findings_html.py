"""A list of findings as the HTML table a notebook cell shows (Findings._repr_html_)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from trainwise.findings import tally

if TYPE_CHECKING:
    from trainwise.findings import Finding

# the command line's colours (console._SEVERITY_STYLE: red, yellow, cyan), as backgrounds
# light enough to read black text on in Jupyter's light and dark themes alike
_COLOURS = {"error": "#f8d0d0", "warning": "#fbecc0", "info": "#dcebf5"}
_CELL = "text-align:left;vertical-align:top;padding:2px 6px"


def findings_table(findings: Sequence[Finding]) -> str:
    """A caption counting them by severity, then a row per finding in the order given (stage
    order: what to fix first comes first); evidence stays in the objects and findings.json."""
    counted = tally(findings)
    header = "".join(f"<th style='{_CELL}'>{name}</th>"
                     for name in ("severity", "stage", "code", "message", "fix"))
    rows = "".join(_row(f) for f in findings)
    return (f"<table><caption style='text-align:left'>{len(findings)} finding"
            f"{'' if len(findings) == 1 else 's'}{f': {counted}' if counted else ''}</caption>"
            f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")


def _row(finding: Finding) -> str:
    severity = finding.severity.value
    colour = _COLOURS.get(severity, "")
    code = finding.code + ("" if finding.step is None else f" (step {finding.step})")
    cells = [f"<td style='{_CELL};background:{colour};color:#000'><b>{severity}</b></td>"]
    cells += [f"<td style='{_CELL}'>{escape(text)}</td>"
              for text in (finding.stage, code, finding.message, finding.fix)]
    return f"<tr>{''.join(cells)}</tr>"
