"""The report stage: figures from the run folder and one self-contained report.html."""

from trainwise.reporting.html import build_report
from trainwise.reporting.training_figures import history_figure

__all__ = ["build_report", "history_figure"]
