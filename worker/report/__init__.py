"""The engagement report: analysis (pandas), charts (matplotlib), a self-contained HTML page.

`build_report()` is the entry point (CLI `chirpbase report`, the demo, the console's charts).
pandas and matplotlib are imported only when a report is built: the worker never pays for them.
"""

from worker.report.analysis import ReportError, parse_since
from worker.report.build import Report, build_report

__all__ = ["Report", "ReportError", "build_report", "parse_since"]
