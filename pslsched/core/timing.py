"""Turning an assignment and per-helper task orders into the earliest timed schedule, and completion times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.schedule import Task

# A helper-side step: (client index, phase "fwd"/"bwd", batch index).
HelperTask = tuple[int, str, int]


def local_completion(instance: Instance, j: int) -> float:
    """Completion time of client j training all its batches locally."""
    assert instance.local is not None
    return float(instance.batches * instance.local[j])


def earliest_schedule(
    instance: Instance, assignment: Sequence[int], orders: Sequence[Sequence[HelperTask]]
) -> tuple[list[Task], np.ndarray]:
    """Start every task as early as the model allows, keeping each helper's order ``orders[i]``.

    ``assignment[j]`` is a helper index or -1 for local training. Returns the tasks and the K completion times.
    Raises ValueError if the orders are not consistent (a missing task, or a batch before its predecessor).

    A backward of length 0 that follows its forward without delay (a merged sequential instance,
    ``pslsched.core.sequential``) runs right after its forward wherever the order puts it: it holds the helper for
    no time, so that is never later for anyone (CP-SAT, too, places zero-length intervals freely).

    With ``instance.local_head`` a client's next batch follows its own head update (forward end + delay + tail),
    not the helper's backward, and it completes when both its last head update and every backward are done.
    """
    if instance.instant_backward:
        orders = [_instant_backwards_first(instance, i, order) for i, order in enumerate(orders)]
    k, nb = instance.num_clients, instance.batches
    local_head = instance.local_head
    assign = np.asarray(assignment, dtype=int)
    completion = np.full(k, np.nan)
    fwd_end = np.full((k, nb), np.nan)
    ready_fwd = np.full((k, nb), np.nan)
    for j in range(k):
        i = assign[j]
        if i < 0:
            completion[j] = local_completion(instance, j)
        else:
            ready_fwd[j, 0] = instance.release[j, i]
    tasks: list[Task] = []
    pos = [0] * len(orders)
    helper_free = [0.0] * len(orders)
    expected = int((assign >= 0).sum()) * 2 * nb
    if sum(len(o) for o in orders) != expected:
        raise ValueError(f"orders hold {sum(len(o) for o in orders)} tasks, expected {expected}")
    pending = list(range(len(orders)))
    while pending:
        progressed = False
        still = []
        for i in pending:
            order = orders[i]
            while pos[i] < len(order):
                j, phase, b = order[pos[i]]
                if assign[j] != i:
                    raise ValueError(f"helper {i} holds a task of client {j}, assigned to {assign[j]}")
                if phase == "fwd":
                    ready = ready_fwd[j, b]
                    length = instance.fwd[j, i]
                else:
                    ready = fwd_end[j, b] + instance.delay[j, i] if not np.isnan(fwd_end[j, b]) else np.nan
                    length = instance.bwd[j, i]
                if np.isnan(ready):
                    break
                start = max(ready, helper_free[i])
                end = start + length
                helper_free[i] = end
                tasks.append(
                    Task(instance.clients[j], instance.helpers[i], phase, float(start), float(end), b)
                )
                if phase == "fwd":
                    fwd_end[j, b] = end
                    if local_head:
                        head_done = end + instance.delay[j, i] + instance.tail[j, i]
                        if b + 1 < nb:
                            ready_fwd[j, b + 1] = head_done + instance.release[j, i]
                        else:
                            completion[j] = np.fmax(completion[j], head_done)
                elif local_head:
                    completion[j] = np.fmax(completion[j], end)
                else:
                    done = end + instance.tail[j, i]
                    if b + 1 < nb:
                        ready_fwd[j, b + 1] = done + instance.release[j, i]
                    else:
                        completion[j] = done
                pos[i] += 1
                progressed = True
            if pos[i] < len(order):
                still.append(i)
        if still and not progressed:
            raise ValueError(
                "task orders are cyclic: a backward or later batch is ordered before its predecessor"
            )
        pending = still
    return tasks, completion


def _instant_backwards_first(instance: Instance, i: int, order: Sequence[HelperTask]) -> list[HelperTask]:
    instant = (instance.bwd[:, i] == 0) & (instance.delay[:, i] == 0)
    out: list[HelperTask] = []
    for task in order:
        j, phase, _ = task
        if not (0 <= j < len(instant) and instant[j]):
            out.append(task)
        elif phase == "fwd":
            out.extend([task, (j, "bwd", task[2])])
    return out


def completion_times(
    instance: Instance, assignment: dict[str, str | None], tasks: Sequence[Task]
) -> np.ndarray:
    """Completion time C[j] of every client from timed tasks (NaN where a client's last task is missing)."""
    k = instance.num_clients
    completion = np.full(k, np.nan)
    last = instance.batches - 1
    if instance.local_head:
        return _local_head_completion(instance, assignment, tasks)
    for t in tasks:
        if t.phase == "bwd" and t.batch == last:
            j = instance.client_index[t.client]
            i = instance.helper_index[t.helper]
            completion[j] = t.end + instance.tail[j, i]
    for name, helper in assignment.items():
        j = instance.client_index.get(name)
        if helper is None and j is not None and instance.can_local[j]:
            completion[j] = local_completion(instance, j)
    return completion


def _local_head_completion(
    instance: Instance, assignment: dict[str, str | None], tasks: Sequence[Task]
) -> np.ndarray:
    """C[j] of a ``local_head`` instance: its last head update or its latest backward, whichever ends later (NaN
    where a task is missing)."""
    k, nb = instance.num_clients, instance.batches
    head_done, bwd_end = np.full(k, np.nan), np.full(k, -np.inf)
    bwd_count = np.zeros(k, dtype=int)
    for t in tasks:
        j, i = instance.client_index[t.client], instance.helper_index[t.helper]
        if t.phase == "fwd" and t.batch == nb - 1:
            head_done[j] = t.end + instance.delay[j, i] + instance.tail[j, i]
        elif t.phase == "bwd":
            bwd_end[j] = max(bwd_end[j], t.end)
            bwd_count[j] += 1
    completion = np.where(bwd_count == nb, np.fmax(head_done, bwd_end), np.nan)
    for name, helper in assignment.items():
        j = instance.client_index.get(name)
        if helper is None and j is not None and instance.can_local[j]:
            completion[j] = local_completion(instance, j)
    return completion


def makespan_of(instance: Instance, assignment: dict[str, str | None], tasks: Sequence[Task]) -> float:
    """max_j C[j] recomputed from the instance (NaN if some client never completes)."""
    c = completion_times(instance, assignment, tasks)
    return float(np.nan) if np.isnan(c).any() else float(c.max())
