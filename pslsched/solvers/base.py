"""What every bundled solver shares: one run's clock and time budget, its opening checks and its answer.

A bundled solver is a body ``fn(run, options) -> SolveResult`` registered with :func:`register_run`. The
registered callable has the public signature ``(instance, *, time_limit=None, seed=0, **options)``: it starts the
clock, fixes the time limit (the solver's default when None) and hands the body a :class:`SolverRun`. The run holds
the common opening (:meth:`SolverRun.preflight`: refuse a model that is too large, prove memory infeasibility from
the bounds) and the common ending (:meth:`SolverRun.finish` and :meth:`SolverRun.no_schedule`: the lower bound,
the status, the trajectory and the schedule, packaged as a SolveResult).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pslsched.core.bounds import BoundReport, lower_bounds
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, Task
from pslsched.core.timing import HelperTask, earliest_schedule
from pslsched.solvers.registry import SolverFn, packing_time, register

OPTIMAL_REL_TOL = 1e-9

DEFAULT_BOUND_TIME_S = 5.0
RESUME_FACTOR = 2.0  # a resumed integer bound gets at most this many times its first budget

TrajectoryPoint = tuple[float, float | None, float]  # (elapsed s, makespan ms, lower bound ms)


def bound_time(time_limit: float | None) -> float:
    """The lower bounds' whole budget (models built and solved): a fifth of the solver's limit, at most 5 s, at
    least 0.2 s (half the limit below 0.4 s)."""
    if time_limit is None:
        return DEFAULT_BOUND_TIME_S
    return max(min(0.2, time_limit / 2), min(DEFAULT_BOUND_TIME_S, time_limit / 5))


def assignment_names(instance: Instance, assignment: np.ndarray) -> dict[str, str | None]:
    """Index assignment (-1 = local) to the name mapping of the schedule JSON."""
    return {c: (instance.helpers[i] if i >= 0 else None) for c, i in zip(instance.clients, assignment)}


@dataclass
class SolverRun:
    """One call of a solver: the instance, the solver's name, the seed, the time limit (None = the solver has none)
    and the clock; ``options`` are the settings the answer reports, ``trajectory`` its anytime points so far."""

    instance: Instance
    solver: str
    seed: int
    time_limit: float | None
    progress: Callable[[float, float | None, float], None] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    trajectory: list[TrajectoryPoint] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since the solver was called."""
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds left of the time limit (negative once it has passed; inf without a limit)."""
        return math.inf if self.time_limit is None else float(self.time_limit) - self.elapsed()

    def reserve(self) -> float:
        """Seconds to keep at the end for re-timing the plan and packaging the answer."""
        return packing_time(self.instance)

    def search_left(self) -> float:
        """Seconds left for searching: the time limit less the elapsed time and :meth:`reserve`."""
        return self.left() - self.reserve()

    def record(self, makespan: float, bound: float, *, notify: bool = True) -> TrajectoryPoint:
        """Add an anytime point (now, ``makespan``, ``bound``); tell ``progress`` unless ``notify`` is False."""
        point = (self.elapsed(), makespan, bound)
        self.trajectory.append(point)
        if notify and callable(self.progress):
            self.progress(*point)
        return point

    def bounds(self, time_limit: float | None = None) -> BoundReport:
        """The instance's lower bounds within ``time_limit`` s (default: :func:`bound_time` of the solver's limit),
        never more than the search has left (computed once: later calls find them cached)."""
        budget = bound_time(self.time_limit) if time_limit is None else time_limit
        if self.time_limit is not None:
            budget = max(0.0, min(budget, self.search_left()))
        return lower_bounds(self.instance, time_limit=budget)

    def resume_bounds(self) -> None:
        """A search that ended early spends some of the time it left on the bounds: the integer model is run again
        with up to ``RESUME_FACTOR`` times its first budget (kept only where stronger; nothing when the time left
        is too short to help, or the bounds are already complete)."""
        if self.time_limit is None:
            return
        first = bound_time(self.time_limit)
        left = 0.8 * self.search_left()  # HiGHS may overrun a little, and nothing follows to absorb it
        if left > 1.5 * first:
            self.bounds(time_limit=min(left, RESUME_FACTOR * first))

    def preflight(
        self, too_large: str | None = None, *, bound_limit: float | None = None
    ) -> tuple[BoundReport | None, SolveResult | None]:
        """The common opening: ``(None, answer)`` when the instance is refused (``too_large`` says why, status
        ``unknown``) or memory-infeasible (status ``infeasible``), else ``(bounds, None)``."""
        if too_large:
            return None, self.no_schedule(too_large)
        bounds = self.bounds(bound_limit)
        if bounds.infeasible:
            return None, self.no_schedule()
        return bounds, None

    def no_schedule(self, reason: str = "") -> SolveResult:
        """An answer without a schedule: ``infeasible`` when the bounds prove it, else ``unknown``."""
        bounds = self.bounds()
        return SolveResult(
            solver=self.solver,
            status="infeasible" if bounds.infeasible else "unknown",
            schedule=None,
            makespan=None,
            lower_bound=bounds.best,
            runtime_s=self.elapsed(),
            bounds=bounds.as_dict(),
            options=self.options,
            message=bounds.infeasible or reason or "no schedule found",
        )

    def finish(
        self,
        assignment: np.ndarray,
        tasks: Sequence[Task],
        completion: np.ndarray,
        *,
        dual: float | None = None,
        proved: bool = False,
        extra: dict[str, Any] | None = None,
        message: str = "",
    ) -> SolveResult:
        """A feasible answer: the lower bound (the bounds and the solver's own ``dual``, capped by the makespan),
        the status (``optimal`` when ``proved`` or the bound meets the makespan) and the schedule."""
        lb_values = self.bounds().as_dict()
        if dual is not None:
            lb_values[f"{self.solver}_dual"] = dual
        makespan = float(np.max(completion))
        lb = min(max(v for v in lb_values.values() if v is not None), makespan)
        lb_values["best"] = lb
        options = dict(self.options)
        progress = options.pop("progress", None)
        answer = {
            "solver": self.solver,
            "status": "optimal" if proved or makespan <= lb * (1 + OPTIMAL_REL_TOL) else "feasible",
            "makespan": makespan,
            "lower_bound": lb,
            "runtime_s": self.elapsed(),
        }
        if callable(progress):
            progress(answer["runtime_s"], makespan, lb)
        schedule = Schedule(
            instance=self.instance.name,
            assignment=assignment_names(self.instance, assignment),
            tasks=sorted(tasks, key=lambda t: (t.helper, t.start)),
            **answer,
        )
        return SolveResult(
            schedule=schedule,
            bounds=lb_values,
            trajectory=self.trajectory or [(answer["runtime_s"], makespan, lb)],
            options=options,
            message=message,
            extra=extra or {},
            **answer,
        )

    def finish_orders(
        self, assignment: np.ndarray, orders: Sequence[Sequence[HelperTask]], **answer: Any
    ) -> SolveResult:
        """:meth:`finish` for an assignment and per-helper orders, every task as early as possible."""
        tasks, completion = earliest_schedule(self.instance, assignment, orders)
        return self.finish(assignment, tasks, completion, **answer)


RunBody = Callable[[SolverRun, dict[str, Any]], SolveResult]


def register_run(
    name: str, summary: str, *, default_limit: float | None = None
) -> Callable[[RunBody], SolverFn]:
    """Decorator: register ``body(run, options)`` as solver ``name``.

    The registered (and returned) callable is ``solver(instance, *, time_limit=None, seed=0, **options)``; it
    starts a :class:`SolverRun` (time limit ``default_limit`` when ``time_limit`` is None) and calls the body.
    """

    def deco(body: RunBody) -> SolverFn:
        def solver(
            instance: Instance, *, time_limit: float | None = None, seed: int = 0, **options: Any
        ) -> SolveResult:
            limit = default_limit if time_limit is None else float(time_limit)
            run = SolverRun(instance, name, seed, limit, options.get("progress"))
            return body(run, options)

        solver.__name__, solver.__qualname__ = body.__name__, body.__qualname__
        solver.__doc__, solver.__module__ = body.__doc__, body.__module__
        return register(name, summary)(solver)

    return deco
