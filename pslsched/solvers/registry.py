"""One interface for every solver: ``solve(instance, *, time_limit=None, seed=0, **options) -> SolveResult``.

The solvers live in ``SOLVERS``, a :class:`pslsched.base.registry.Registry`: an unknown name is an ``InputError`` on
``--solver`` that lists the known ones (exit 2 on the command line). ``register`` takes a callable with that
signature; the bundled solvers are written as bodies over a run (:func:`pslsched.solvers.base.register_run`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from pslsched.base.limits import capped
from pslsched.base.registry import Entry, Registry
from pslsched.core.instance import Instance
from pslsched.core.local_head import published, result_for
from pslsched.core.reduction import answer_for, is_extended, solver_view
from pslsched.core.result import SolveResult
from pslsched.core.sequential import merged_instance, sequential_result
from pslsched.core.stepped import one_step, ungated
from pslsched.core.stepped import result_for as stepped_result
from pslsched.solvers.body_trips import solve_with_trips, trips_charged

SolverFn = Callable[..., SolveResult]

SOLVERS: Registry[SolverFn] = Registry("solver", "--solver")


def register(name: str, summary: str) -> Callable[[SolverFn], SolverFn]:
    """Decorator: register ``fn(instance, *, time_limit=None, seed=0, **options)`` as solver ``name`` (unique)."""
    return SOLVERS.register(name, summary)


def available_solvers() -> dict[str, Entry[SolverFn]]:
    """Registered solvers by name (each entry has ``.name``, ``.fn`` and ``.summary``)."""
    return {entry.name: entry for entry in SOLVERS.entries()}


def get_solver(name: str) -> SolverFn:
    """The solver registered under ``name``; an ``InputError`` on ``--solver`` naming the known ones otherwise."""
    return SOLVERS.get(name)


def solve(
    instance: Instance, solver: str = "greedy", *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    """Run the solver registered as ``solver`` on ``instance`` (a ``sequential`` one through its merged instance,
    which every solver and bound of the interleaved model serves; an exchange or a shared body through the
    published-model instance they reduce to, ``pslsched.core.reduction``)."""
    fn = get_solver(solver)
    time_limit = capped("time_limit", time_limit)  # PSLSCHED_CAP (quick runs); unchanged without it
    if trips_charged(instance):  # the bodies' trip between helpers: planned with and without it
        return solve_with_trips(
            instance, lambda x, limit: solve(x, solver, time_limit=limit, seed=seed, **options), time_limit
        )
    if instance.step_barrier or instance.gated:  # one step planned, repeated behind the barriers, re-timed
        step = one_step(instance) if instance.step_barrier else ungated(instance)
        answer = solve(step, solver, time_limit=time_limit, seed=seed, **options)
        return stepped_result(instance, step, answer)
    if instance.local_head:  # planned under the published model's stronger constraints, then re-timed
        # the bound's own relaxation takes at most a fifth of the limit
        share = None if time_limit is None else 0.2 * time_limit
        rest = None if time_limit is None else time_limit - share
        answer = solve(published(instance), solver, time_limit=rest, seed=seed, **options)
        return result_for(instance, answer, time_limit=share)
    started = time.perf_counter()  # the reduction and the re-timing of its answer count against the limit
    if is_extended(instance):
        view = solver_view(instance)
        inner = solve(view, solver, time_limit=_rest(time_limit, started, instance), seed=seed, **options)
        return _timed(answer_for(instance, view, inner), started)
    if instance.sequential:
        merged = merged_instance(instance)
        answer = fn(merged, time_limit=_rest(time_limit, started, instance), seed=seed, **options)
        return _timed(sequential_result(instance, answer), started)
    return fn(instance, time_limit=time_limit, seed=seed, **options)


PACKING_S_PER_TASK = 1.5e-5  # re-timing a plan and packaging its answer: ~0.23 s for 20,000 tasks (measured)


def packing_time(instance: Instance) -> float:
    """Seconds to keep for re-timing a plan of ``instance`` and packaging the answer (schedule, tasks)."""
    return PACKING_S_PER_TASK * 2 * instance.num_clients * instance.batches


def _rest(time_limit: float | None, started: float, instance: Instance) -> float | None:
    """What is left of ``time_limit`` for the solver once the reduction (since ``started``) and the re-timing
    of its answer are paid for (at least a hundredth of the limit, so that it still answers)."""
    if time_limit is None:
        return None
    spent = time.perf_counter() - started + packing_time(instance)
    return max(0.01 * time_limit, time_limit - spent)


def _timed(result: SolveResult, started: float) -> SolveResult:
    """``result`` with the time actually spent since ``started`` (the reduction and re-timing included)."""
    runtime = max(result.runtime_s, time.perf_counter() - started)
    schedule = None if result.schedule is None else dataclasses.replace(result.schedule, runtime_s=runtime)
    return dataclasses.replace(result, runtime_s=runtime, schedule=schedule)
