"""Helpers shared by solvers: packaging an answer as a SolveResult with its lower bound."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pslsched.core.bounds import BoundReport, lower_bounds
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, Task

OPTIMAL_REL_TOL = 1e-9

DEFAULT_BOUND_TIME_S = 5.0


def bound_time(time_limit: float | None) -> float:
    """Time given to the integer load bound: a fifth of the solver's limit, at most 5 s."""
    return DEFAULT_BOUND_TIME_S if time_limit is None else max(0.2, min(DEFAULT_BOUND_TIME_S, time_limit / 5))


def assignment_names(instance: Instance, assignment: np.ndarray) -> dict[str, str | None]:
    """Index assignment (-1 = local) to the name mapping of the schedule JSON."""
    return {c: (instance.helpers[i] if i >= 0 else None) for c, i in zip(instance.clients, assignment)}


def finish(
    instance: Instance,
    solver: str,
    assignment: np.ndarray,
    tasks: Sequence[Task],
    completion: np.ndarray,
    started: float,
    *,
    time_limit: float | None = None,
    options: dict[str, Any] | None = None,
    extra_bound: float | None = None,
    proved_optimal: bool = False,
    trajectory: list | None = None,
    extra: dict[str, Any] | None = None,
) -> SolveResult:
    """A feasible answer: computes the lower bound, the status and the schedule."""
    bounds = lower_bounds(instance, time_limit=bound_time(time_limit))
    lb_values = bounds.as_dict()
    if extra_bound is not None:
        lb_values[f"{solver}_dual"] = extra_bound
    makespan = float(np.max(completion))
    lb = min(max(v for v in lb_values.values() if v is not None), makespan)
    lb_values["best"] = lb
    optimal = proved_optimal or makespan <= lb * (1 + OPTIMAL_REL_TOL)
    status = "optimal" if optimal else "feasible"
    runtime = time.perf_counter() - started
    options = dict(options or {})
    progress = options.pop("progress", None)
    if callable(progress):
        progress(runtime, makespan, lb)
    ordered = sorted(tasks, key=lambda t: (t.helper, t.start))
    schedule = Schedule(
        instance=instance.name,
        solver=solver,
        status=status,
        makespan=makespan,
        lower_bound=lb,
        runtime_s=runtime,
        assignment=assignment_names(instance, assignment),
        tasks=list(ordered),
    )
    return SolveResult(
        solver=solver,
        status=status,
        schedule=schedule,
        makespan=makespan,
        lower_bound=lb,
        runtime_s=runtime,
        bounds=lb_values,
        trajectory=trajectory or [(runtime, makespan, lb)],
        options=options,
        extra=extra or {},
    )


def no_schedule(
    instance: Instance,
    solver: str,
    started: float,
    *,
    time_limit: float | None = None,
    options: dict[str, Any] | None = None,
    reason: str = "",
) -> SolveResult:
    """An answer without a schedule: ``infeasible`` when the bounds prove it, else ``unknown``."""
    bounds = lower_bounds(instance, time_limit=bound_time(time_limit))
    status = "infeasible" if bounds.infeasible else "unknown"
    message = bounds.infeasible or reason or "no schedule found"
    runtime = time.perf_counter() - started
    return SolveResult(
        solver=solver,
        status=status,
        schedule=None,
        makespan=None,
        lower_bound=bounds.best,
        runtime_s=runtime,
        bounds=bounds.as_dict(),
        options=options or {},
        message=message,
    )


def preflight(
    instance: Instance,
    solver: str,
    started: float,
    *,
    time_limit: float,
    options: dict[str, Any],
    too_large: str | None = None,
) -> tuple[BoundReport | None, SolveResult | None]:
    """The common start of the exact solvers: ``(None, answer)`` when the instance is too large for them
    (``too_large`` says why, status ``unknown``) or memory-infeasible (status ``infeasible``), else ``(bounds, None)``."""
    if too_large:
        return None, no_schedule(
            instance, solver, started, time_limit=time_limit, options=options, reason=too_large
        )
    bounds = lower_bounds(instance, time_limit=bound_time(time_limit))
    if bounds.infeasible:
        return None, no_schedule(instance, solver, started, time_limit=time_limit, options=options)
    return bounds, None
