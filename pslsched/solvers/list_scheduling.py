"""The list-scheduling engine: with the assignment fixed, each helper runs the ready task a rule picks.

Helpers never idle while a task is ready (non-delay schedules). A forward task of batch b is ready at its
release (batch 0) or at the previous batch's completion + release; its backward task at forward end + delay.
Helpers are independent once the assignment is fixed, so each is simulated on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.schedule import Task
from pslsched.core.timing import local_completion
from pslsched.solvers.sequencing import HelperData, run_helper

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
    completion = np.full(instance.num_clients, np.nan)
    tasks: list[Task] = []
    for j in np.flatnonzero(assignment < 0):
        completion[j] = local_completion(instance, int(j))
    for i in range(instance.num_helpers):
        members = np.flatnonzero(assignment == i).tolist()
        if members:
            _run_helper(instance, i, members, rule, tasks, completion)
    return tasks, completion


def _run_helper(
    instance: Instance, i: int, members: list[int], rule: Rule, tasks: list[Task], completion: np.ndarray
) -> None:
    """Helper ``i`` running ``rule`` over ``members``: its tasks appended to ``tasks``, their completions set."""
    d = HelperData(instance, i)
    times: list[tuple[float, float]] = []
    _, order = run_helper(
        d, members, lambda phase, j, b, ready, seq: rule(instance, phase, j, i, ready, seq), times
    )
    helper, clients = instance.helpers[i], instance.clients
    for (j, phase, b), (start, end) in zip(order, times):
        tasks.append(Task(clients[j], helper, phase, start, end, b))
        if phase == "bwd" and b == instance.batches - 1:
            completion[j] = end + d.tail[j]
