"""Sweeps: a grid of solve / simulate / train runs on a local process pool or Ray (``sched sweep``)."""

from splitsched.sweep.grid import Grid, Point, load_grid, parse_grid
from splitsched.sweep.sweep import SweepReport, run_sweep

__all__ = ["Grid", "Point", "SweepReport", "load_grid", "parse_grid", "run_sweep"]
