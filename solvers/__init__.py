"""Every algorithm that turns an Instance into a SolveResult, behind one registry.

Importing this package registers all solvers.
"""

from solvers import baselines  # noqa: F401  (registers random, greedy)
from solvers.registry import available_solvers, get_solver, register, solve

__all__ = ["available_solvers", "get_solver", "register", "solve"]
