"""Sweeps: a grid of solve / simulate / train runs on a local process pool or Ray (``sched sweep``).

A use-case of the application layer: every point is the command's typed request run by the same use-case
(``pslsched.app.solve|simulate|train``), so a point accepts and does exactly what the command does. From Python:
``run_sweep(parse_grid({...}), "out/dir")``.
"""

from pslsched.app.sweeps.grid import Grid, Point, load_grid, parse_grid
from pslsched.app.sweeps.sweep import SweepReport, run_sweep

__all__ = ["Grid", "Point", "SweepReport", "load_grid", "parse_grid", "run_sweep"]
