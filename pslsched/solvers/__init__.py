"""Every algorithm that turns an Instance into a SolveResult, behind one registry (``SOLVERS``).

Importing this package registers all solvers.
"""

from pslsched.solvers import baselines  # noqa: F401, I001  (registers random, greedy)
from pslsched.solvers import equid  # noqa: F401  (registers equid, ed-fcfs)
from pslsched.solvers import cpsat  # noqa: F401  (registers cpsat)
from pslsched.solvers import milp  # noqa: F401  (registers milp)
from pslsched.solvers import lns  # noqa: F401  (registers lns)
from pslsched.solvers import auto  # noqa: F401  (registers auto)
from pslsched.solvers import milp_slotted  # noqa: F401  (registers milp-slotted)
from pslsched.solvers import admm  # noqa: F401  (registers admm)
from pslsched.solvers import benders  # noqa: F401  (registers benders)
from pslsched.solvers.registry import SOLVERS, available_solvers, get_solver, register, solve

__all__ = ["SOLVERS", "available_solvers", "get_solver", "register", "solve"]
