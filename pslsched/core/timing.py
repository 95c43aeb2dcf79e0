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
    ``gated`` and ``step_barrier`` instances (SGLR, synchronous PSL): see ``_Steps``.
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
    steps = (
        _Steps(instance, assign, ready_fwd, completion) if instance.gated or instance.step_barrier else None
    )
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
                elif steps is not None:
                    steps.backward_done(j, b, i, end)
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


class _Steps:
    """When clients are done with a step on a ``gated`` or ``step_barrier`` instance (problem.md §1).

    Gated: helper i's clients get the cut-a gradient of step b (and start their tail) once every one of them has
    finished that step's backward. Step barrier: step b + 1 starts for everyone once every client is done with
    step b (a local trainer's step takes ``local[j]`` from the step's start)."""

    def __init__(
        self, instance: Instance, assign: np.ndarray, ready_fwd: np.ndarray, completion: np.ndarray
    ) -> None:
        self.inst, self.assign, self.ready_fwd, self.completion = instance, assign, ready_fwd, completion
        nb, h = instance.batches, instance.num_helpers
        split = assign >= 0
        self.members = [np.flatnonzero(assign == i) for i in range(h)]
        self.gate_left = np.array([[len(m) for m in self.members]] * nb, dtype=int)
        self.gate_end = np.full((nb, h), -np.inf)
        self.step_left = np.full(nb, int(split.sum()))
        self.step_end = np.full(nb, -np.inf)
        self.local = np.flatnonzero(~split)
        local_step = instance.local[self.local].max() if len(self.local) else 0.0
        self.local_step = float(local_step)
        if instance.step_barrier:
            self.completion[self.local] = np.nan
            if not split.any():  # nobody waits for a helper: each step is the slowest local trainer's
                for b in range(nb):
                    self._close(b, 0.0)

    def backward_done(self, j: int, b: int, i: int, end: float) -> None:
        if not self.inst.gated:
            self._client_done(j, b, end + self.inst.tail[j, i])
            return
        self.gate_left[b, i] -= 1
        self.gate_end[b, i] = max(self.gate_end[b, i], end)
        if self.gate_left[b, i] == 0:
            for m in self.members[i]:
                self._client_done(int(m), b, self.gate_end[b, i] + self.inst.tail[m, i])

    def _client_done(self, j: int, b: int, done: float) -> None:
        inst, i = self.inst, self.assign[j]
        if not inst.step_barrier:
            if b + 1 < inst.batches:
                self.ready_fwd[j, b + 1] = done + inst.release[j, i]
            else:
                self.completion[j] = done
            return
        if b == inst.batches - 1:
            self.completion[j] = done
        self.step_end[b] = max(self.step_end[b], done)
        self.step_left[b] -= 1
        if self.step_left[b] == 0:
            self._close(b, self.step_end[b])

    def _close(self, b: int, done: float) -> None:
        """Step b is done for every split client at ``done``: the barrier opens after the local trainers too."""
        inst = self.inst
        start = 0.0 if b == 0 else self.step_end[b - 1]
        end = max(done, start + self.local_step) if len(self.local) else done
        self.step_end[b] = end
        if b + 1 < inst.batches:
            split = np.flatnonzero(self.assign >= 0)
            self.ready_fwd[split, b + 1] = end + inst.release[split, self.assign[split]]
        elif len(self.local):
            self.completion[self.local] = start + inst.local[self.local]


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
    if instance.gated or instance.step_barrier:
        return step_times(instance, assignment, tasks)[0][:, -1]
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


def step_times(
    instance: Instance, assignment: dict[str, str | None], tasks: Sequence[Task]
) -> tuple[np.ndarray, np.ndarray]:
    """From timed tasks: when each client is done with each step (K x B), and the time its release in each step
    counts from (0 in step 0; the previous step's end for it, or everyone's under a step barrier). NaN where a
    task is missing."""
    k, nb = instance.num_clients, instance.batches
    assign = np.array(
        [-1 if assignment.get(c) is None else instance.helper_index[assignment[c]] for c in instance.clients]
    )
    bwd_end = np.full((k, nb), np.nan)
    for t in tasks:
        if t.phase == "bwd" and 0 <= t.batch < nb:
            bwd_end[instance.client_index[t.client], t.batch] = t.end
    done = np.full((k, nb), np.nan)
    split = np.flatnonzero(assign >= 0)
    ends = bwd_end[split]
    if instance.gated:  # the gradient comes back once every client of the helper is through the step
        gate = {i: bwd_end[assign == i].max(axis=0) for i in np.unique(assign[split])}
        ends = np.array([gate[i] for i in assign[split]]).reshape(len(split), nb)
    done[split] = ends + instance.tail[split, assign[split]][:, None]
    base = np.zeros((k, nb))
    local = np.flatnonzero(assign < 0)
    if instance.step_barrier:
        for b in range(nb):
            if len(local):
                done[local, b] = base[local, b] + instance.local[local]
            end = float(np.max(done[:, b]))  # the local trainers' steps included
            if b + 1 < nb:
                base[:, b + 1] = end
    else:
        base[:, 1:] = done[:, :-1]
        if len(local):
            done[local, -1] = nb * instance.local[local]
    return done, base


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
