"""The list-scheduling engine: with the assignment fixed, each helper runs the ready task a rule picks.

Helpers never idle while a task is ready (non-delay schedules). A forward task of batch b is ready at its
release (batch 0) or at the previous batch's completion + release; its backward task at forward end + delay.
Helpers are independent once the assignment is fixed, so each is simulated on its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.schedule import Task
from pslsched.core.timing import local_completion

# A rule maps (phase 0=fwd/1=bwd, client j, helper i, ready time, insertion sequence) to a sort key; smallest first.
Rule = Callable[[Instance, int, int, int, float, int], tuple]


def fcfs(instance: Instance, phase: int, j: int, i: int, ready: float, seq: int) -> tuple:
    """First come, first served: earliest ready time, ties to the earliest inserted."""
    return (ready, seq)


def equid_rule(instance: Instance, phase: int, j: int, i: int, ready: float, seq: int) -> tuple:
    """EquiD's rule on pair-dependent times: forwards before backwards; a forward with the largest delay
    ``delay[j][i]`` first, a backward with the largest tail ``tail[j][i]`` first."""
    key = instance.delay[j, i] if phase == 0 else instance.tail[j, i]
    return (phase, -key, ready, seq)


RULES: dict[str, Rule] = {"fcfs": fcfs, "equid": equid_rule}


def list_schedule(
    instance: Instance, assignment: np.ndarray, rule: Rule = fcfs
) -> tuple[list[Task], np.ndarray]:
    """Schedule every helper with ``rule``; returns tasks and the K completion times.

    ``assignment[j]`` is a helper index, or -1 for a client training locally.
    """
    assignment = np.asarray(assignment, dtype=int)
    k, nb = instance.num_clients, instance.batches
    completion = np.full(k, np.nan)
    tasks: list[Task] = []
    for j in np.flatnonzero(assignment < 0):
        completion[j] = local_completion(instance, int(j))
    for i in range(instance.num_helpers):
        members = np.flatnonzero(assignment == i)
        if len(members):
            _run_helper(instance, i, members, nb, rule, tasks, completion)
    return tasks, completion


def _run_helper(instance, i, members, nb, rule, tasks, completion) -> None:
    release, fwd, delay = instance.release[:, i], instance.fwd[:, i], instance.delay[:, i]
    bwd, tail = instance.bwd[:, i], instance.tail[:, i]
    helper, clients = instance.helpers[i], instance.clients
    seq = 0
    pending: list[tuple[float, int, int, int, int]] = []  # (ready, seq, phase, j, batch)
    for j in members:
        pending.append((float(release[j]), seq, 0, int(j), 0))
        seq += 1
    heapq.heapify(pending)
    ready_q: list[tuple[tuple, float, int, int, int]] = []
    t = 0.0
    while pending or ready_q:
        if not ready_q and pending[0][0] > t:
            t = pending[0][0]
        while pending and pending[0][0] <= t:
            ready, s, phase, j, b = heapq.heappop(pending)
            heapq.heappush(ready_q, (rule(instance, phase, j, i, ready, s), ready, phase, j, b))
        _, ready, phase, j, b = heapq.heappop(ready_q)
        start = t
        if phase == 0:
            end = start + fwd[j]
            tasks.append(Task(clients[j], helper, "fwd", float(start), float(end), b))
            heapq.heappush(pending, (float(end + delay[j]), seq, 1, j, b))
        else:
            end = start + bwd[j]
            tasks.append(Task(clients[j], helper, "bwd", float(start), float(end), b))
            done = end + tail[j]
            if b + 1 < nb:
                heapq.heappush(pending, (float(done + release[j]), seq, 0, j, b + 1))
            else:
                completion[j] = done
        seq += 1
        t = end
