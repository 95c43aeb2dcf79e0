"""Helper task orders: read off a schedule, and applied to a round whose batch counts differ from the plan's.

A schedule is made for ``B`` batches per client (the instance's ``batches``). A round plan (``RoundPlan``) may give
clients other counts (a training epoch over each client's own data, a sampler's per-step shares). Under the
``static`` policy the schedule is then a template:

- clients that run at their own pace (``sync=False``): the planned order is repeated cycle after cycle; cycle ``c``
  runs steps ``cB .. cB+B-1`` in the planned order of batches ``0 .. B-1``, and a task whose client has no samples
  in that step is left out. With every count equal to the plan's this is exactly the schedule.
- synchronous steps (``sync=True``, a barrier after every step): step ``t`` runs the planned order of batch
  ``t mod B`` among the clients that take part in it.

Both keep each client's tasks in chain order on its one helper, so a static dispatcher never deadlocks.
"""

from __future__ import annotations

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule

Order = list[tuple[int, str, int]]  # (client index, phase, batch)


def orders_from_schedule(instance: Instance, schedule: Schedule) -> tuple[np.ndarray, list[Order]]:
    """Assignment indices (-1 = local) and each helper's task order (by planned start) of a schedule."""
    assign = np.array(
        [
            -1 if schedule.assignment.get(c) is None else instance.helper_index[schedule.assignment[c]]
            for c in instance.clients
        ]
    )
    orders: list[Order] = [[] for _ in instance.helpers]
    for t in sorted(schedule.tasks, key=lambda t: (t.start, t.end)):
        orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], t.phase, t.batch))
    return assign, orders


def orders_for_plan(orders: list[Order], batches: int, samples: np.ndarray, sync: bool) -> list[Order]:
    """Each helper's order for a round whose steps x clients sample counts are ``samples`` (0 = no task)."""
    steps = samples.shape[0]
    out: list[Order] = []
    for order in orders:
        seq: Order = []
        if sync:
            # each step's participants in the template's order, without scanning the whole order per step
            # (K x steps at 10,000 clients): positions per template batch, participants read off the column
            where: dict[int, dict[int, list[tuple[int, str]]]] = {}
            count: dict[int, int] = {}
            for j, ph, b in order:
                pos = count.get(b, 0)
                count[b] = pos + 1
                where.setdefault(b, {}).setdefault(j, []).append((pos, ph))
            members = np.array(sorted({j for j, _, _ in order}), dtype=int)
            for t in range(steps):
                index = where.get(t % batches)
                if not index or not len(members):
                    continue
                part = members[samples[t, members] > 0]
                rows = sorted((pos, int(j), ph) for j in part for pos, ph in index.get(int(j), ()))
                seq.extend((j, ph, t) for _, j, ph in rows)
        else:
            for c in range(-(-steps // batches)):
                for j, ph, b in order:
                    t = c * batches + b
                    if t < steps and samples[t, j] > 0:
                        seq.append((j, ph, t))
        out.append(seq)
    return out
