"""Fast per-helper sequencing for a fixed assignment: several non-idling priority rules, best one per helper.

Helpers are independent once the assignment is fixed, so a helper's finish time (the largest completion among its
clients) can be evaluated on its own, and the best of several rules can be kept helper by helper. The rules:

* ``fcfs``: earliest ready first (Tirana et al.);
* ``equid``: forwards first, largest ``delay[j][i]``; else backward with largest ``tail[j][i]`` (EquiD);
* ``schrage``: largest remaining time after the task first (Schrage's rule for heads and tails): a forward task's
  tail is ``delay + bwd + tail``, a backward's ``tail``, plus the chains of the client's later batches;
* ``schrage-fwd``: forwards before backwards, each by Schrage's key.

The evaluation returns only the order and the finish time (no Task objects), so LNS can call it many times.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.timing import HelperTask

RULE_NAMES = ("schrage", "equid", "schrage-fwd", "fcfs")


class HelperData:
    """Per-helper columns of the instance as Python lists (fast scalar access in the inner loop)."""

    def __init__(self, instance: Instance, i: int):
        self.release = np.nan_to_num(instance.release[:, i]).tolist()
        self.fwd = np.nan_to_num(instance.fwd[:, i]).tolist()
        self.delay = np.nan_to_num(instance.delay[:, i]).tolist()
        self.bwd = np.nan_to_num(instance.bwd[:, i]).tolist()
        self.tail = np.nan_to_num(instance.tail[:, i]).tolist()
        self.chain = np.nan_to_num(instance.chain[:, i]).tolist()
        self.batches = instance.batches


# A task's priority on one helper from (phase 0=fwd/1=bwd, client, batch, ready time, insertion sequence); smallest first.
Priority = Callable[[int, int, int, float, int], tuple]


def rule_priority(rule: str, d: HelperData) -> Priority:
    """The priority of the named rule on the helper of ``d`` (any other name is ``schrage-fwd``)."""
    if rule == "fcfs":
        return lambda phase, j, b, ready, seq: (ready, seq)
    if rule == "equid":
        return lambda phase, j, b, ready, seq: (phase, -(d.delay[j] if phase == 0 else d.tail[j]), ready, seq)

    def remaining(phase: int, j: int, b: int) -> float:
        later = (d.batches - 1 - b) * d.chain[j]
        return (d.delay[j] + d.bwd[j] + d.tail[j] if phase == 0 else d.tail[j]) + later

    if rule == "schrage":
        return lambda phase, j, b, ready, seq: (-remaining(phase, j, b), ready, seq)
    return lambda phase, j, b, ready, seq: (phase, -remaining(phase, j, b), ready, seq)


def run_helper(
    d: HelperData, members: Sequence[int], priority: Priority, times: list[tuple[float, float]] | None = None
) -> tuple[float, list[HelperTask]]:
    """Non-idling list schedule of ``members`` on one helper: whenever the helper is free, the ready task of
    smallest ``priority`` runs. Returns (finish time, order); each task's (start, end) goes to ``times`` if given."""
    nb = d.batches
    pending: list[tuple[float, int, int, int, int]] = []  # (ready, seq, phase, j, batch)
    seq = 0
    for j in members:
        pending.append((d.release[j], seq, 0, j, 0))
        seq += 1
    heapq.heapify(pending)
    ready_q: list = []
    order: list[HelperTask] = []
    t = 0.0
    finish = 0.0
    while pending or ready_q:
        if not ready_q and pending[0][0] > t:
            t = pending[0][0]
        while pending and pending[0][0] <= t:
            ready, s, phase, j, b = heapq.heappop(pending)
            heapq.heappush(ready_q, (priority(phase, j, b, ready, s), phase, j, b))
        _, phase, j, b = heapq.heappop(ready_q)
        start = t
        if phase == 0:
            t += d.fwd[j]
            heapq.heappush(pending, (t + d.delay[j], seq, 1, j, b))
            order.append((j, "fwd", b))
        else:
            t += d.bwd[j]
            done = t + d.tail[j]
            if b + 1 < nb:
                heapq.heappush(pending, (done + d.release[j], seq, 0, j, b + 1))
            elif done > finish:
                finish = done
            order.append((j, "bwd", b))
        if times is not None:
            times.append((start, t))
        seq += 1
    return finish, order


def run_rule(d: HelperData, members: Sequence[int], rule: str) -> tuple[float, list[HelperTask]]:
    """Non-idling list schedule of ``members`` on one helper with the named ``rule``; returns (finish time, order)."""
    return run_helper(d, members, rule_priority(rule, d))


def best_rule(
    d: HelperData, members: Sequence[int], rules: Sequence[str] = RULE_NAMES
) -> tuple[float, list[HelperTask], str]:
    """The rule with the earliest finish on this helper (ties: the first in ``rules``)."""
    best = (float("inf"), [], "")
    if not len(members):
        return 0.0, [], rules[0]
    for rule in rules:
        value, order = run_rule(d, members, rule)
        if value < best[0]:
            best = (value, order, rule)
    return best


def sequence_all(
    instance: Instance, assignment: np.ndarray, rules: Sequence[str] = RULE_NAMES
) -> tuple[list[list[HelperTask]], np.ndarray]:
    """Best-rule order on every helper; returns (orders, per-helper finish times)."""
    orders: list[list[HelperTask]] = []
    finish = np.zeros(instance.num_helpers)
    for i in range(instance.num_helpers):
        members = np.flatnonzero(assignment == i).tolist()
        value, order, _ = best_rule(HelperData(instance, i), members, rules)
        orders.append(order)
        finish[i] = value
    return orders, finish


def order_finish(d: HelperData, order: Sequence[HelperTask]) -> float:
    """Finish time of one helper running ``order`` with every task as early as possible."""
    fwd_end: dict[tuple[int, int], float] = {}
    done: dict[int, float] = {}
    t = 0.0
    finish = 0.0
    for j, phase, b in order:
        if phase == "fwd":
            ready = d.release[j] + (done[j] if b > 0 else 0.0)
            t = max(t, ready) + d.fwd[j]
            fwd_end[j, b] = t
        else:
            t = max(t, fwd_end[j, b] + d.delay[j]) + d.bwd[j]
            done[j] = t + d.tail[j]
            if b == d.batches - 1:
                finish = max(finish, done[j])
    return finish
