"""How many clients a testbed's helpers can hold: the hint an infeasible plan gets (how far to scale, what to raise)."""

from __future__ import annotations

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.testbed import Testbed, build, scale_clients


def packs(instance: Instance) -> bool:
    """A memory-feasible assignment exists by first fit: clients by demand, largest first, each on the reachable
    helper with the most room left it fits in (or local where it may train locally)."""
    room = np.array(instance.capacity, dtype=float)
    for j in np.argsort(-instance.demand, kind="stable"):
        if instance.can_local[j]:
            continue
        ok = np.flatnonzero(instance.reachable[j] & (room >= instance.demand[j]))
        if len(ok) == 0:
            return False
        i = ok[np.argmax(room[ok])]
        room[i] -= instance.demand[j]
    return True


def most_clients(testbed: Testbed) -> int:
    """The most clients the testbed holds when scaled in its groups' proportions (``sched train --clients``), as far
    as first fit packs them: a binary search below its own count (0 when not even one client fits)."""
    low, high = (
        0,
        sum(g.count for g in testbed.clients),
    )  # low packs; high does not (the testbed itself failed)
    while high - low > 1:
        mid = (low + high) // 2
        if packs(build(scale_clients(testbed, mid)).instance):
            low = mid
        else:
            high = mid
    return low


def capacity_hint(testbed: Testbed | None, instance: Instance) -> str | None:
    """What to do when the helpers' memory cannot hold the testbed's clients (None when first fit packs them)."""
    if testbed is None or packs(instance):
        return None
    need, have = float(instance.demand.sum()), float(instance.capacity.sum())
    most = most_clients(testbed)
    held = f"its helpers hold {most} of these clients" if most else "its helpers cannot hold even one client"
    return (
        f"{instance.num_clients} clients' bodies need {need:,.0f} MB and the helpers have {have:,.0f} MB; {held} "
        "(first fit): ask for fewer --clients, or give the testbed's helpers more memory_mb or a larger count"
    )
