"""Sequential helpers (problem.md §1, SplitFed V2 as published) as the interleaved model of a merged instance.

On a ``sequential`` instance a helper that starts client j's forward of batch b runs nothing else until j's
backward of batch b is done: the helper is held for ``fwd + delay + bwd``. That is exactly the interleaved model
of the *merged* instance, where each step's helper work is one task of that length (forward = fwd + delay + bwd,
delay = backward = 0): a merged schedule's forward order, expanded into forward/backward pairs, is a sequential
schedule no longer than it, and every sequential schedule is such an expansion. So every solver and every lower
bound of the interleaved model serves the sequential one through ``merged_instance`` and ``expand``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule
from pslsched.core.timing import HelperTask, earliest_schedule


def merged_instance(instance: Instance) -> Instance:
    """The interleaved instance whose forward task is a sequential step's whole helper hold."""
    zero = np.where(np.isnan(instance.fwd), np.nan, 0.0)
    return dataclasses.replace(
        instance,
        fwd=instance.fwd + instance.delay + instance.bwd,
        delay=zero,
        bwd=zero,
        sequential=False,
    )


def sequential_orders(orders: list[list[HelperTask]]) -> list[list[HelperTask]]:
    """Each helper's order with every backward moved up to right after its forward (the forwards' order kept)."""
    out = []
    for order in orders:
        seq: list[HelperTask] = []
        for j, phase, b in order:
            if phase == "fwd":
                seq.extend([(j, "fwd", b), (j, "bwd", b)])
        out.append(seq)
    return out


def expand(instance: Instance, schedule: Schedule) -> Schedule:
    """The sequential schedule of ``instance`` with a merged schedule's assignment and forward order, each task
    as early as it can start (never later than in the merged schedule)."""
    assign = np.array(
        [
            -1 if schedule.assignment.get(c) is None else instance.helper_index[schedule.assignment[c]]
            for c in instance.clients
        ]
    )
    orders: list[list[HelperTask]] = [[] for _ in instance.helpers]
    for t in sorted(schedule.tasks, key=lambda t: (t.start, t.end)):
        if t.phase == "fwd":
            orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], "fwd", t.batch))
    tasks, completion = earliest_schedule(instance, assign, sequential_orders(orders))
    return dataclasses.replace(schedule, tasks=tasks, makespan=float(np.nanmax(completion)))


def sequential_result(instance: Instance, merged: SolveResult) -> SolveResult:
    """A solver's answer on ``merged_instance(instance)`` as the answer on the sequential ``instance`` (the merged
    lower bound is one of the sequential problem)."""
    if merged.schedule is None:
        return merged
    schedule = expand(instance, merged.schedule)
    status = merged.status
    if schedule.makespan <= merged.lower_bound * (1 + 1e-9):  # the expansion met the bound: proved
        status = "optimal"
    schedule = dataclasses.replace(schedule, status=status)
    return dataclasses.replace(merged, schedule=schedule, makespan=schedule.makespan, status=status)
