"""Self-contained, offline, interactive HTML reports (plotly) of schedules, comparisons, simulations, training runs and sweeps.

Each function returns the page as a string (plotly.js embedded once, no network needed); ``write_report`` writes
it atomically::

    from pslsched.app.report import schedule_report, write_report
    write_report("out/report.html", schedule_report(instance, schedule, "greedy on the default testbed"))

No torch: the training page takes the run's per-round table and its simulation record.
"""

from __future__ import annotations

from pslsched.app.report.page import write_report
from pslsched.app.report.planning import compare_report, schedule_report
from pslsched.app.report.runs import simulation_report, training_report
from pslsched.app.report.sweep import sweep_report

__all__ = [
    "compare_report",
    "schedule_report",
    "simulation_report",
    "sweep_report",
    "training_report",
    "write_report",
]
