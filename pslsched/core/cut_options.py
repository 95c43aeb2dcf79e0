"""Per-client cut options (problem.md §1, "the cut as a decision"): one instance per candidate cut, composed.

The instances of one testbed at different global cuts have the same clients, helpers and links; row j of the
instance at cut c is client j at cut c. ``compose`` takes each client's row from its chosen cut's instance, and
``envelope`` the least of every entry over the candidates: every composition's times and demands are at least the
envelope's, and a round never gets shorter when a duration grows, so a lower bound on the envelope bounds every
per-client choice.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.core.exchange import Exchange
from pslsched.core.instance import MATRICES, Instance


def _rows(arrays: list[np.ndarray | None], choice: np.ndarray) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    stack = np.stack([np.asarray(a, dtype=float) for a in arrays])
    return stack[choice, np.arange(len(choice))]


def compose(instances: list[Instance], choice: np.ndarray) -> Instance:
    """The instance where client j runs at the cut of ``instances[choice[j]]`` (a body per client)."""
    choice = np.asarray(choice, dtype=int)
    base = instances[0]
    fields = {m: _rows([getattr(x, m) for x in instances], choice) for m in MATRICES}
    fields["demand"] = _rows([x.demand for x in instances], choice)
    fields["local"] = _rows([x.local for x in instances], choice) if base.local is not None else None
    if base.exchange is not None:
        exs = [x.exchange for x in instances]
        fields["exchange"] = Exchange(
            up=_rows([e.up for e in exs], choice),
            down=_rows([e.down for e in exs], choice),
            aggregate_ms=base.exchange.aggregate_ms,
            local_up=_rows([e.local_up for e in exs], choice),
            local_down=_rows([e.local_down for e in exs], choice),
            # a helper sends one body per cut chosen (in parallel): the largest of them sets the time
            **_helper_parts([exs[c] for c in np.unique(choice)], np.fmax),
        )
    return dataclasses.replace(base, **fields)


def _helper_parts(exs: list[Exchange], combine) -> dict:
    if any(e.helper_up is None for e in exs):
        return {}
    return {
        "helper_up": combine.reduce(np.stack([e.helper_up for e in exs]), axis=0),
        "helper_down": combine.reduce(np.stack([e.helper_down for e in exs]), axis=0),
    }


def envelope(instances: list[Instance]) -> Instance:
    """The entry-wise least instance over the candidates (NaN only where no candidate reaches the pair)."""
    base = instances[0]

    def least(arrays):
        if any(a is None for a in arrays):
            return None
        return np.fmin.reduce(np.stack([np.asarray(a, dtype=float) for a in arrays]), axis=0)

    fields = {m: least([getattr(x, m) for x in instances]) for m in MATRICES}
    fields["demand"] = least([x.demand for x in instances])
    fields["local"] = least([x.local for x in instances]) if base.local is not None else None
    if base.exchange is not None:
        exs = [x.exchange for x in instances]
        fields["exchange"] = Exchange(
            up=least([e.up for e in exs]),
            down=least([e.down for e in exs]),
            aggregate_ms=base.exchange.aggregate_ms,
            local_up=least([e.local_up for e in exs]),
            local_down=least([e.local_down for e in exs]),
            **_helper_parts(exs, np.fmin),
        )
    return dataclasses.replace(base, name=f"{base.name}-envelope", **fields)


def options_bound(instances: list[Instance], time_limit: float | None = 5.0) -> float:
    """A lower bound on the round over every per-client choice among ``instances``' cuts: the load/chain LP of
    §4 with one variable per (client, cut, helper) option, solved on the instances the solvers see (exchange
    folded, shared body reduced), plus the averaging and the least downloads; where the LP is not solved in
    ``time_limit``, the envelope's bound (weaker)."""
    if not instances:
        return 0.0
    import pulp

    from pslsched.core.backend_log import PulpHiGHS
    from pslsched.core.bounds import _highs_optimal, lower_bounds
    from pslsched.core.exchange import round_bound
    from pslsched.core.reduction import solver_view

    def fallback() -> float:
        report = lower_bounds(solver_view(envelope(instances)), time_limit=time_limit, integer=False)
        return round_bound(envelope(instances), report.best)

    if instances[0].local_head:  # the published LP bounds nothing here: the local head's own bounds
        from pslsched.core.local_head import makespan_bound, relaxation

        least = envelope(instances)
        best = makespan_bound(least, time_limit)  # (chains and relaxation of the entry-wise least instance)
        relaxed = [relaxation(x) for x in instances]  # each cut's relaxation, mixed per (batch-)client
        if all(r is not None for r in relaxed):
            best = max(best, options_bound(relaxed, time_limit))
        return round_bound(least, best)

    views = [solver_view(x) for x in instances]
    base = views[0]
    k, h, nb = base.num_clients, base.num_helpers, base.batches
    prob = pulp.LpProblem("options_bound", pulp.LpMinimize)
    m = pulp.LpVariable("M", lowBound=0)
    prob += m
    x = {
        (j, c, i): pulp.LpVariable(f"x_{j}_{c}_{i}", 0, 1)
        for c, v in enumerate(views)
        for j in range(k)
        for i in range(h)
        if v.fits[j, i]
    }
    y = {j: pulp.LpVariable(f"y_{j}", 0, 1) for j in range(k) if base.can_local[j]}
    used = {i: pulp.LpVariable(f"u_{i}", 0, 1) for i in range(h)}
    by_client: dict[int, list] = {j: [] for j in range(k)}
    by_helper: dict[int, list] = {i: [] for i in range(h)}
    for (j, c, i), var in x.items():
        by_client[j].append((c, i, var))
        by_helper[i].append((j, c, var))
    for j in range(k):
        if not by_client[j] and j not in y:
            return fallback()  # no option at all: the solvers report the infeasibility
        prob += pulp.lpSum([v for *_, v in by_client[j]] + ([y[j]] if j in y else [])) == 1
        chain = [(nb * float(views[c].chain[j, i]), v) for c, i, v in by_client[j]]
        if j in y:
            chain += [(nb * float(min(v.local[j] for v in views)), y[j])]
        prob += m >= pulp.lpSum(w * v for w, v in chain)
    for i, members in by_helper.items():
        if not members:
            continue
        rmin = min(float(views[c].release[j, i]) for j, c, _ in members)
        tmin = min(float(views[c].tail[j, i]) for j, c, _ in members)
        u = used[i]
        prob += m >= (rmin + tmin) * u + pulp.lpSum(
            nb * float(views[c].load[j, i]) * v for j, c, v in members
        )
        prob += (
            pulp.lpSum(float(views[c].demand[j]) * v for j, c, v in members) <= float(base.capacity[i]) * u
        )
        if len(x) <= 5_000:  # the disaggregated rows help the LP but slow HiGHS on large ones
            for *_, v in members:
                prob += v <= u
    prob.solve(PulpHiGHS(msg=False, mip=False, timeLimit=time_limit, threads=1))
    model = getattr(prob, "solverModel", None)
    if pulp.LpStatus[prob.status] != "Optimal" or (model is not None and not _highs_optimal(model)):
        return fallback()
    return round_bound(envelope(instances), float(pulp.value(m)) * (1 - 1e-9))
