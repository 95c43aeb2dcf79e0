"""psl-sched: plan and simulate parallel split learning.

One package, layered bottom to top (docs/architecture.md; a test reads the imports and enforces the direction):

- ``pslsched.base``: errors, documented limits, the registry pattern and its spec grammar;
- ``pslsched.models``: the split-model zoo and the anchors' architectures;
- ``pslsched.profiles``: per-layer cost tables, importing, measuring and calibrating them;
- ``pslsched.core``: Instance, Schedule, JSON I/O, the validator, timing, lower bounds, testbed.yaml, codecs' sizes;
- ``pslsched.solvers``: every algorithm that turns an Instance into a plan, behind one registry;
- ``pslsched.simulator``: executing a plan in simulated time (SimPy);
- ``pslsched.training``: real PyTorch split training on the simulator's clock;
- ``pslsched.app``: the use-cases (solve, simulate, train, compare, sweep) over one experiment description;
- ``pslsched.cli``: the ``sched`` command.

Start with ``pslsched.app``; nothing is imported here, so ``import pslsched.core`` stays light.
"""

__version__ = "0.1.0"
