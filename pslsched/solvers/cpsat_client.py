"""Running the CP-SAT model in a worker process.

OR-Tools (9.15) and highspy (used by PuLP for the bounds and the IPs) each ship their own, incompatible
``libhighs.so.1``; the dynamic loader shares one library per soname, so whichever is imported second fails to load.
The project's processes use HiGHS in-process, so CP-SAT runs in a child process that imports OR-Tools first
(:func:`pslsched.solvers.cpsat_worker.serve`); requests and answers are pickled over pipes. A :class:`CpWorker` can serve
several solves (LNS uses one for all its neighbourhoods); :func:`run_cpsat` starts one for a single solve.
Starting a worker costs about half a second.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pslsched.core.backend_log import verbose
from pslsched.core.instance import Instance
from pslsched.core.timing import HelperTask

MAX_INTERVALS = 60_000  # optional interval variables; larger models are refused (use lns)
# CP-SAT's default portfolio: 8 differently-configured searches (LP-based, core-based, no-LP, quick restarts,
# LNS, ...) sharing bounds. Even time-sliced on 2 cores it proves optima that 1 or 2 workers do not reach within a
# minute (benchmarks/RESULTS.md); runs are then not reproducible step for step (use workers=1 for that).
DEFAULT_WORKERS = 8
CLOSE_GRACE_S = 0.02  # an idle worker not gone this long after its input is closed is killed

_BOOT = "from ortools.sat.python import cp_model; from pslsched.solvers.cpsat_worker import serve; serve()"


@dataclass
class CpOutcome:
    """What one CP-SAT run found: the best exactly re-timed solution (if any) and a valid bound in ms."""

    status: str  # optimal | feasible | infeasible | unknown
    assignment: np.ndarray | None = None
    orders: list[list[HelperTask]] | None = None
    makespan: float | None = None
    bound: float | None = None
    resolution_ms: float = 0.0
    trajectory: list[tuple[float, float | None, float]] = field(default_factory=list)
    message: str = ""
    cuts: np.ndarray | None = None  # with candidate cuts (``sources``): each client's, as an index


def count_intervals(instance: Instance) -> int:
    """Number of optional interval variables the full model would create."""
    return int(instance.fits.sum()) * 2 * instance.batches


def serial_upper_bound(instance: Instance) -> float:
    """A makespan every memory-feasible assignment reaches: all clients served one after another."""
    chain = np.where(instance.fits, instance.chain, -np.inf).max(axis=1, initial=0.0)
    local = np.nan_to_num(instance.local, nan=0.0) if instance.local is not None else np.zeros(1)
    return float(instance.batches * (np.maximum(chain, 0.0).sum() + local.max()) + 1.0)


def mixed_serial_upper_bound(sources: Sequence[Instance]) -> float:
    """A makespan every memory-feasible choice of cut and helper per client reaches: served one after another."""
    chain = np.max([np.where(x.fits, x.chain, -np.inf).max(axis=1, initial=0.0) for x in sources], axis=0)
    local = np.max([np.nan_to_num(x.local, nan=0.0) if x.local is not None else np.zeros(1) for x in sources])
    nb = sources[0].batches
    return float(nb * (np.maximum(chain, 0.0).sum() + local) + 1.0)


MAX_ROW_SUM = 2**61  # CP-SAT refuses linear constraints whose terms could overflow int64


def memory_row(demands: Sequence[float], capacity: float) -> tuple[list[int], int, bool] | None:
    """Integer form ``(coefficients, cap, exact)`` of ``sum(demands[k] * x[k]) <= capacity`` over Booleans x, or
    None when every set fits.

    Exact (the same sets fit) when the demands, as the dyadic rationals floats are, have a common grid whose
    multiples fit in 64 bits: the left side is a multiple of the grid, so the capacity is floored onto it. Otherwise
    a relaxation (demands rounded down, the capacity up: every set that fits still fits, a few more may), with
    ``exact`` False: a solution of such a row must then be checked against the float constraint."""
    fr = [Fraction(float(d)) for d in demands]
    cap = Fraction(float(capacity))
    if sum(fr, Fraction(0)) <= cap:
        return None
    den = math.lcm(*(f.denominator for f in fr))
    nums = [f.numerator * (den // f.denominator) for f in fr]
    g = math.gcd(*nums)
    if g > 0:
        coefs = [n // g for n in nums]
        if sum(coefs) < MAX_ROW_SUM:
            return coefs, math.floor(cap * den / g), True
    scale = Fraction(2) ** (MAX_ROW_SUM.bit_length() - 1 - math.ceil(math.log2(float(sum(fr)) + 1.0)) - 1)
    return [math.floor(f * scale) for f in fr], math.ceil(cap * scale), False


def fits_memory(instance: Instance, assignment: np.ndarray) -> bool:
    """Whether an assignment respects every helper's memory, in exact rational arithmetic."""
    for i in range(instance.num_helpers):
        members = np.flatnonzero(assignment == i)
        used = sum((Fraction(float(instance.demand[j])) for j in members), Fraction(0))
        if used > Fraction(float(instance.capacity[i])):
            return False
    return True


class CpWorker:
    """A child process running CP-SAT solves one after another (use as a context manager)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.expired = False

    def solve(
        self,
        instance: Instance,
        *,
        progress: Callable[[float, float, float], None] | None = None,
        t0: float | None = None,
        deadline: float | None = None,
        **kwargs,
    ) -> CpOutcome:
        """Run :func:`pslsched.solvers.cpsat_model.run_cpsat` in the worker; ``progress`` is called in this process.
        ``deadline`` (a ``time.perf_counter()`` instant): a worker still busy then is stopped and its late answer
        ignored (status ``unknown``; the worker cannot serve again)."""
        t0 = time.perf_counter() if t0 is None else t0
        watchdog = None
        if deadline is not None:
            watchdog = threading.Timer(max(0.0, deadline - time.perf_counter()), self._expire)
            watchdog.daemon = True
            watchdog.start()
        kwargs["elapsed0"] = time.perf_counter() - t0
        kwargs["sent_at"] = time.time()  # the worker deducts its start-up time from the time limit
        kwargs["progress"] = progress is not None
        kwargs.setdefault("log", verbose())  # CP-SAT's search log, to the worker's stderr (shared with ours)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            pickle.dump((instance, kwargs), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
            while True:
                msg = pickle.load(self.proc.stdout)
                if msg[0] == "progress":
                    if progress is not None:
                        progress(*msg[1:])
                    continue
                if msg[0] == "done":
                    return msg[1]
                return CpOutcome("unknown", message=f"CP-SAT worker failed: {msg[1]}")
        except (EOFError, BrokenPipeError, OSError, pickle.UnpicklingError) as exc:
            if self.expired:
                return CpOutcome("unknown", message="CP-SAT did not answer by the deadline (stopped)")
            return CpOutcome("unknown", message=f"CP-SAT worker exited ({type(exc).__name__})")
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _expire(self) -> None:
        """The deadline passed: stop the worker (the pending read then ends)."""
        self.expired = True
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        """Stop the worker process (idle between solves: after a moment's grace it is killed, since its orderly exit
        takes ~0.1 s that would count against the caller's time limit)."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=CLOSE_GRACE_S)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> CpWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_cpsat(instance: Instance, **kwargs) -> CpOutcome:
    """One CP-SAT solve in a fresh worker (arguments as :func:`pslsched.solvers.cpsat_model.run_cpsat`)."""
    with CpWorker() as worker:
        return worker.solve(instance, **kwargs)
