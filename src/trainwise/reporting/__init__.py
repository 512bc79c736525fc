"""The report stage: figures from the run folder and one self-contained report.html."""

from trainwise.reporting.html import build_report

__all__ = ["build_report"]
