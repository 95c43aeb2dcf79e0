"""EquiD and ED-FCFS (Ganian, Mc Inerney, Tsigkari, INFOCOM 2026), generalised to pair-dependent times.

Both use the min-max-load assignment (:func:`pslsched.solvers.assignment.min_max_load_assignment`). EquiD then runs, on each
helper, the non-idling rule "a released forward task with the largest delay ``delay[j][i]`` first, else the ready
backward task with the largest tail ``tail[j][i]``" (:func:`pslsched.solvers.list_scheduling.equid_rule`); the paper's
delays and tails depend on the client only, ours on the pair, which is the same rule read on the chosen helper.
ED-FCFS runs FCFS on the same assignment. With ``B > 1`` batches a later batch's forward task is released when the
previous batch completes; local clients train locally and take no helper time.
"""

from __future__ import annotations

import time

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.solvers.assignment import min_max_load_assignment
from pslsched.solvers.base import bound_time, finish, no_schedule
from pslsched.solvers.list_scheduling import equid_rule, fcfs, list_schedule
from pslsched.solvers.registry import register


def _solve(instance: Instance, name: str, rule, time_limit: float | None, seed: int, options) -> SolveResult:
    t0 = time.perf_counter()
    opts = {"seed": seed, **options}
    ip_limit = 10.0 if time_limit is None else max(0.2, time_limit - bound_time(time_limit))
    assignment, how = min_max_load_assignment(instance, time_limit=ip_limit)
    if assignment is None:
        reason = (
            "no memory-feasible assignment exists"
            if how == "infeasible"
            else "the load assignment found no room for some client"
        )
        return no_schedule(instance, name, t0, time_limit=time_limit, options=opts, reason=reason)
    tasks, completion = list_schedule(instance, assignment, rule)
    return finish(
        instance,
        name,
        assignment,
        tasks,
        completion,
        t0,
        time_limit=time_limit,
        options=opts,
        extra={"assignment": how},
    )


@register("equid", "min-max-load assignment + EquiD's rule (largest delay / largest tail first)")
def solve_equid(
    instance: Instance, *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    """EquiD: min-max-load assignment, then the EquiD priority rule on each helper."""
    return _solve(instance, "equid", equid_rule, time_limit, seed, options)


@register("ed-fcfs", "min-max-load assignment + FCFS (EquiD's baseline ED-FCFS)")
def solve_ed_fcfs(
    instance: Instance, *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    """ED-FCFS: EquiD's assignment, FCFS on each helper."""
    return _solve(instance, "ed-fcfs", fcfs, time_limit, seed, options)
