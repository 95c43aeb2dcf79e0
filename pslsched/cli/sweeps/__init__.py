"""Sweeps: a grid of solve / simulate / train runs on a local process pool or Ray (``sched sweep``).

Part of the CLI layer (sweeps sit above everything, like the CLI): every point runs through its command's own
parser and functions (``pslsched.cli.solve|simulate|train``), so a point accepts and does exactly what the command
does. From Python: ``run_sweep(parse_grid({...}), "out/dir")``.
"""

from pslsched.cli.sweeps.grid import Grid, Point, load_grid, parse_grid
from pslsched.cli.sweeps.sweep import SweepReport, run_sweep

__all__ = ["Grid", "Point", "SweepReport", "load_grid", "parse_grid", "run_sweep"]
