"""What the solvers see of an extended instance (problem.md §1): the published model, planned exactly.

Two extensions reduce to the published model without changing any solver:

* the round-end exchange (``pslsched.core.exchange``): with one batch per round the upload is folded into the tail,
  so the solved makespan is ``max_j (C_j + up_j)``, and the download and averaging are added to the answer;
* a shared body per helper (``Instance.body_memory``): helper i's clients share ``capacity - body_memory``;
  a helper whose body does not fit serves nobody.

``solver_view`` builds the reduced instance, ``answer_for`` turns a solver's answer on it back into the answer
on the given instance: the same assignment and per-helper orders, re-timed, with the round time and its bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from pslsched.core.exchange import folded, folds_exactly, round_bound, round_time
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule
from pslsched.core.timing import HelperTask, earliest_schedule


def is_extended(instance: Instance) -> bool:
    """The instance has an exchange or a shared body (the solvers plan its reduction)."""
    return instance.exchange is not None or instance.body_memory is not None


def solver_view(instance: Instance) -> Instance:
    """The published-model instance whose optimal plans are the given instance's optimal plans (one batch per
    round; with more the exchange is added to a planned makespan)."""
    out = folded(instance)
    if out.body_memory is not None:
        free = out.capacity - out.body_memory
        dead = free < 0
        mats = {}
        if dead.any():  # the body alone does not fit: the helper can serve nobody
            for name in ("release", "fwd", "delay", "bwd", "tail"):
                arr = np.array(getattr(out, name))
                arr[:, dead] = np.nan
                mats[name] = arr
        out = dataclasses.replace(out, capacity=np.maximum(free, 0.0), body_memory=None, **mats)
    return out


def assignment_and_orders(
    instance: Instance, schedule: Schedule
) -> tuple[np.ndarray, list[list[HelperTask]]]:
    """A schedule's helper indices (-1 = local) and per-helper task orders (by start time)."""
    assign = np.array(
        [
            -1 if schedule.assignment.get(c) is None else instance.helper_index[schedule.assignment[c]]
            for c in instance.clients
        ]
    )
    orders: list[list[HelperTask]] = [[] for _ in instance.helpers]
    for t in sorted(schedule.tasks, key=lambda t: (t.start, t.end, t.phase == "bwd")):
        orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], t.phase, t.batch))
    return assign, orders


def answer_for(instance: Instance, view: Instance, result: SolveResult) -> SolveResult:
    """A solver's answer on ``solver_view(instance)`` as the answer on ``instance``: re-timed, with the makespan,
    the round time (``round_time``, where there is an exchange) and the bound on the round."""
    if result.schedule is None:
        return dataclasses.replace(result, lower_bound=round_bound(instance, result.lower_bound))
    assign, orders = assignment_and_orders(view, result.schedule)

    def status(met: bool) -> str:
        if result.status == "feasible" and met:
            return "optimal"
        if result.status == "optimal" and not met and not folds_exactly(instance):
            return "feasible"  # what was proved optimal is the folded makespan, not the round
        return result.status

    return retimed(instance, result, assign, orders, round_bound(instance, result.lower_bound), status)


def retimed(
    instance: Instance,
    answer: SolveResult,
    assign: np.ndarray,
    orders: list[list[HelperTask]],
    bound: float,
    status: Callable[[bool], str],
) -> SolveResult:
    """``answer`` with its assignment and per-helper ``orders`` re-timed on ``instance``: the makespan, the round
    time (where there is an exchange), ``bound`` (at most the round) and ``status(round meets the bound)``."""
    tasks, completion = earliest_schedule(instance, assign, orders)
    makespan = float(np.nanmax(completion))
    rt = round_time(instance, assign, completion, tasks)
    bound = min(bound, rt)
    state = status(rt <= bound * (1 + 1e-9))
    round_or_none = rt if instance.exchange is not None else None
    schedule = dataclasses.replace(
        answer.schedule,
        tasks=tasks,
        makespan=makespan,
        status=state,
        lower_bound=bound,
        round_time=round_or_none,
    )
    return dataclasses.replace(
        answer,
        schedule=schedule,
        makespan=makespan,
        lower_bound=bound,
        status=state,
        round_time=round_or_none,
    )
