"""Every algorithm that turns an Instance into a SolveResult, behind one registry.

Importing this package registers all solvers.
"""

from solvers import baselines  # noqa: F401, I001  (registers random, greedy)
from solvers import equid  # noqa: F401  (registers equid, ed-fcfs)
from solvers import cpsat  # noqa: F401  (registers cpsat)
from solvers import milp  # noqa: F401  (registers milp)
from solvers import lns  # noqa: F401  (registers lns)
from solvers import auto  # noqa: F401  (registers auto)
from solvers import milp_slotted  # noqa: F401  (registers milp-slotted)
from solvers import admm  # noqa: F401  (registers admm)
from solvers import benders  # noqa: F401  (registers benders)
from solvers.registry import available_solvers, get_solver, register, solve

__all__ = ["available_solvers", "get_solver", "register", "solve"]
