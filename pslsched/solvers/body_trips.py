"""Plans where the bodies' trip between helpers costs time (problem.md §1, "The round": ``helper_up``/``down``).

Every strategy averages its bodies across the helpers it used, so a round on two helpers or more ends with each
body's trip to the aggregator and back, and a round on one helper does not. The solvers do not see the trip: the
front door plans the round without it, plans it again with every client on one helper that can hold them all, and
keeps whichever round, evaluated with the trips, is shorter. The round's bound without the trips bounds it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from pslsched.core.exchange import round_time
from pslsched.core.instance import Instance
from pslsched.core.reduction import assignment_and_orders
from pslsched.core.result import SolveResult
from pslsched.core.timing import completion_times

SINGLE_HELPERS = 3  # helpers tried alone (the fastest of those that hold every client)


def trips_charged(instance: Instance) -> bool:
    """The instance's exchange charges the bodies' trips."""
    ex = instance.exchange
    return ex is not None and ex.helper_up is not None


def without_trips(instance: Instance) -> Instance:
    """The same round with the bodies' trips free (what the solvers plan)."""
    ex = dataclasses.replace(instance.exchange, helper_up=None, helper_down=None)
    return dataclasses.replace(instance, exchange=ex)


def alone_on(instance: Instance, i: int) -> Instance:
    """Every client on helper i (or training locally where it may)."""
    mats = {}
    for name in ("release", "fwd", "delay", "bwd", "tail"):
        arr = np.array(getattr(instance, name))
        arr[:, np.arange(instance.num_helpers) != i] = np.nan
        mats[name] = arr
    return dataclasses.replace(without_trips(instance), **mats)


def single_helpers(instance: Instance) -> list[int]:
    """The helpers that can hold every client that cannot train locally, fastest first (at most
    ``SINGLE_HELPERS``)."""
    need = ~instance.can_local
    ok = [
        i
        for i in range(instance.num_helpers)
        if instance.reachable[need, i].all() and instance.demand[need].sum() <= instance.capacity[i] + 1e-9
    ]
    work = [float(np.nansum(instance.fwd[:, i] + instance.bwd[:, i])) for i in ok]
    return [i for _, i in sorted(zip(work, ok))][:SINGLE_HELPERS]


def with_trips(instance: Instance, answer: SolveResult) -> SolveResult:
    """``answer`` (planned without the trips) with its round evaluated with them."""
    if answer.schedule is None:
        return answer
    sch = answer.schedule
    assign, _ = assignment_and_orders(instance, sch)
    completion = completion_times(instance, sch.assignment, sch.tasks)
    rt = round_time(instance, assign, completion, sch.tasks)
    bound = min(answer.lower_bound, rt)
    status = answer.status
    if status == "optimal" and rt > bound * (1 + 1e-9):
        status = "feasible"
    elif status == "feasible" and rt <= bound * (1 + 1e-9):
        status = "optimal"
    schedule = dataclasses.replace(sch, round_time=rt, lower_bound=bound, status=status)
    return dataclasses.replace(answer, schedule=schedule, round_time=rt, lower_bound=bound, status=status)


def solve_with_trips(
    instance: Instance, run: Callable[[Instance, float | None], SolveResult], time_limit: float | None
) -> SolveResult:
    """The better of the round planned on every helper and on one helper alone, trips included; ``run(inst,
    limit)`` solves an instance without trips."""
    alone = single_helpers(instance)
    share = None if time_limit is None else time_limit / (1 + len(alone))
    best = with_trips(instance, run(without_trips(instance), share))
    bound = best.lower_bound
    for i in alone:
        other = with_trips(instance, run(alone_on(instance, i), share))
        if other.schedule is not None and (best.schedule is None or other.round_time < best.round_time):
            best = other
    if best.schedule is None:
        return best
    # the bound of the unrestricted round holds for every plan; a single helper's does not
    bound = min(bound, best.round_time)
    status = "optimal" if best.round_time <= bound * (1 + 1e-9) else "feasible"
    schedule = dataclasses.replace(best.schedule, lower_bound=bound, status=status)
    return dataclasses.replace(best, schedule=schedule, lower_bound=bound, status=status)
