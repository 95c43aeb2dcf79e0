"""Lower bounds on the makespan (problem.md §4) and the memory-feasibility check.

* ``chain``: a client cannot finish before its own chain (times the batches), on its best possible helper.
* ``load``: one model, solved as an LP (instant) and as an integer program with PuLP + HiGHS under a time limit:
  minimise ``M`` over memory-feasible assignments with, for every helper used, ``M >= rmin_i + B * load_i + tmin_i``
  (``rmin_i``/``tmin_i`` the smallest release/tail among clients helper ``i`` can hold), and for every client
  ``M >= B * chain`` on its helper (or ``B * local`` when it trains locally). It is at least as strong as
  problem.md's ``min release + L* + min tail`` and the chain bound together.
* ``jackson``: with the assignment fixed, the preemptive single-helper relaxation solved exactly by Jackson's rule.
  It bounds only schedules with that assignment, so it is reported apart and never as the global bound.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import pulp

from pslsched.core.backend_log import PulpHiGHS
from pslsched.core.instance import Instance

IP_PAIR_LIMIT = 40_000  # above this many (client, helper) pairs the PuLP models are skipped for a closed form


@dataclass
class BoundReport:
    """Lower bounds computed for an instance; ``best`` is the largest valid one."""

    chain: float
    load_lp: float | None = None
    load_ip: float | None = None
    ip_optimal: bool = False
    infeasible: str | None = None  # reason when no memory-feasible assignment exists
    runtime_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    ip_time_limit: float | None = None  # time the integer model was given (a cache hit for shorter requests)

    @property
    def best(self) -> float:
        values = [self.chain, self.load_lp, self.load_ip, *self.extra.values()]
        return max(v for v in values if v is not None)

    def as_dict(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"chain": self.chain, "load_lp": self.load_lp, "load_ip": self.load_ip}
        out.update(self.extra)
        out["best"] = self.best
        return out


_CACHE: weakref.WeakKeyDictionary[Instance, BoundReport] = weakref.WeakKeyDictionary()


def memory_infeasibility(instance: Instance) -> str | None:
    """A reason why no assignment can exist, found without search (a client that fits nowhere), else None."""
    alone = instance.fits.any(axis=1) | instance.can_local
    for j in np.flatnonzero(~alone):
        reach = np.flatnonzero(instance.reachable[j])
        if len(reach) == 0:
            return f"client {instance.clients[j]!r} cannot reach any helper and cannot train locally"
        cap = float(instance.capacity[reach].max())
        return (
            f"client {instance.clients[j]!r} needs {instance.demand[j]:.1f} MB but the largest helper it can reach "
            f"has {cap:.1f} MB"
        )
    return None


def chain_bound(instance: Instance) -> float:
    """max_j of B * (shortest chain over helpers that can hold j alone, or local time)."""
    chain = np.where(instance.fits, instance.chain, np.inf)
    best = chain.min(axis=1) if instance.num_helpers else np.full(instance.num_clients, np.inf)
    if instance.local is not None:
        best = np.minimum(best, np.where(instance.can_local, instance.local, np.inf))
    best = best[np.isfinite(best)]
    return float(instance.batches * best.max()) if len(best) else 0.0


def lower_bounds(instance: Instance, time_limit: float | None = 5.0, integer: bool = True) -> BoundReport:
    """Chain, LP and (time-limited) integer load bounds; cached per instance object."""
    cached = _CACHE.get(instance)
    if cached is not None and (
        cached.load_ip is not None
        or not integer
        or cached.infeasible
        or (
            cached.ip_time_limit is not None and time_limit is not None and cached.ip_time_limit >= time_limit
        )
    ):
        return cached
    t0 = time.perf_counter()
    report = BoundReport(chain=chain_bound(instance))
    report.infeasible = memory_infeasibility(instance)
    if report.infeasible is None:
        if int(instance.fits.sum()) <= IP_PAIR_LIMIT:
            lp_value, _, lp_status = _load_model(instance, integer=False, time_limit=time_limit)
            if lp_status == "infeasible":
                report.infeasible = "no fractional assignment fits the helpers' memory"
            else:
                report.load_lp = lp_value
            if integer and report.infeasible is None:
                report.ip_time_limit = time_limit
                ip_value, ip_bound, ip_status = _load_model(instance, integer=True, time_limit=time_limit)
                if ip_status == "infeasible":
                    report.infeasible = (
                        "no assignment of clients to helpers fits the helpers' memory (bin packing)"
                    )
                elif ip_bound is not None:
                    report.load_ip = ip_bound
                    report.ip_optimal = ip_status == "optimal"
        else:
            report.load_lp = _closed_form_load(instance)
            class_lp = _class_lp_load(instance, time_limit)
            if class_lp is not None:
                report.load_lp = max(report.load_lp, class_lp)
    report.runtime_s = time.perf_counter() - t0
    _CACHE[instance] = report
    return report


def _closed_form_load(instance: Instance) -> float:
    """Average-load bound for large instances: some helper carries at least the mean of the cheapest loads."""
    forced = ~instance.can_local & instance.fits.any(axis=1)
    if instance.num_helpers == 0 or not forced.any():
        return 0.0
    load = np.where(instance.fits, instance.load, np.inf)[forced].min(axis=1)
    rel = np.where(instance.fits, instance.release, np.inf)[forced].min()
    tail = np.where(instance.fits, instance.tail, np.inf)[forced].min()
    return float(rel + instance.batches * load.sum() / instance.num_helpers + tail)


def helper_classes(instance: Instance) -> list[np.ndarray]:
    """Groups of helpers that are interchangeable: equal T1..T5 columns and equal capacity."""
    groups: dict[bytes, list[int]] = {}
    for i in range(instance.num_helpers):
        cols = [
            np.nan_to_num(getattr(instance, m)[:, i], nan=-1.0)
            for m in ("release", "fwd", "delay", "bwd", "tail")
        ]
        key = np.concatenate([*cols, [instance.capacity[i]]]).tobytes()
        groups.setdefault(key, []).append(i)
    return [np.array(g) for g in groups.values()]


def _class_lp_load(instance: Instance, time_limit: float | None) -> float | None:
    """The load LP on classes of interchangeable helpers, for instances too large for the per-helper model.

    A class of n helpers gets n times one helper's memory, and its busiest helper carries at least the class's
    mean load, so any fractional per-helper solution maps to a class solution no larger: the value is a valid
    (if weaker) lower bound. Returns None when the helpers form too many classes for a quick LP.
    """
    classes = helper_classes(instance)
    k, nb = instance.num_clients, instance.batches
    fits = np.stack([instance.fits[:, c[0]] for c in classes], axis=1)
    if len(classes) == instance.num_helpers or int(fits.sum()) > 2 * IP_PAIR_LIMIT:
        return None
    prob = pulp.LpProblem("class_load_bound", pulp.LpMinimize)
    m = pulp.LpVariable("M", lowBound=0)
    prob += m
    x = {
        (j, c): pulp.LpVariable(f"x_{j}_{c}", 0, 1)
        for j in range(k)
        for c in range(len(classes))
        if fits[j, c]
    }
    y = {j: pulp.LpVariable(f"y_{j}", 0, 1) for j in range(k) if instance.can_local[j]}
    # Every helper's busy span is framed by the smallest release before it and the smallest tail after it; with
    # global minima that also holds for an unused class, as long as every client needs a helper.
    frame = 0.0
    if not instance.can_local.any():
        frame = float(np.where(instance.fits, instance.release, np.inf).min())
        frame += float(np.where(instance.fits, instance.tail, np.inf).min())
    per_client: dict[int, list] = {j: [] for j in range(k)}
    per_class: dict[int, list] = {c: [] for c in range(len(classes))}
    for (j, c), var in x.items():
        per_client[j].append((c, var))
        per_class[c].append((j, var))
    for j in range(k):  # (no per-client chain rows: they slow HiGHS down and the chain bound is kept apart)
        prob += pulp.lpSum([v for _, v in per_client[j]] + ([y[j]] if j in y else [])) == 1
        if j in y:
            prob += m >= nb * float(instance.local[j]) * y[j]
    for c, members in per_class.items():
        if not members:
            continue
        i, n = classes[c][0], len(classes[c])
        rows = [j for j, _ in members]
        del rows
        prob += m >= frame + pulp.lpSum(nb * float(instance.load[j, i]) / n * v for j, v in members)
        prob += pulp.lpSum(float(instance.demand[j]) * v for j, v in members) <= n * float(
            instance.capacity[i]
        )
    prob.solve(PulpHiGHS(msg=False, mip=False, timeLimit=time_limit, threads=1))
    model = getattr(prob, "solverModel", None)
    if pulp.LpStatus[prob.status] != "Optimal" or (model is not None and not _highs_optimal(model)):
        return None
    return float(pulp.value(m))


def _load_model(
    instance: Instance, integer: bool, time_limit: float | None
) -> tuple[float | None, float | None, str]:
    """Solve the combined load/chain model; returns (objective, proved bound, status)."""
    k, h, nb = instance.num_clients, instance.num_helpers, instance.batches
    fits = instance.fits
    cat = pulp.LpBinary if integer else pulp.LpContinuous
    prob = pulp.LpProblem("load_bound", pulp.LpMinimize)
    m = pulp.LpVariable("M", lowBound=0)
    pairs = [(j, i) for j in range(k) for i in range(h) if fits[j, i]]
    x = {(j, i): pulp.LpVariable(f"x_{j}_{i}", 0, 1, cat) for j, i in pairs}
    y = {j: pulp.LpVariable(f"y_{j}", 0, 1, cat) for j in range(k) if instance.can_local[j]}
    used = {i: pulp.LpVariable(f"u_{i}", 0, 1, cat) for i in range(h) if fits[:, i].any()}
    prob += m
    by_client: dict[int, list] = {j: [] for j in range(k)}
    by_helper: dict[int, list] = {i: [] for i in range(h)}
    for (j, i), var in x.items():
        by_client[j].append((i, var))
        by_helper[i].append((j, var))
    for j in range(k):
        terms = [var for _, var in by_client[j]] + ([y[j]] if j in y else [])
        prob += pulp.lpSum(terms) == 1
        chain = [(nb * float(instance.chain[j, i]), var) for i, var in by_client[j]]
        if j in y:
            chain.append((nb * float(instance.local[j]), y[j]))
        prob += m >= pulp.lpSum(c * v for c, v in chain)
    disaggregate = len(pairs) <= 5_000
    for i, u in used.items():
        members = by_helper[i]
        rows = [j for j, _ in members]
        rmin = float(instance.release[rows, i].min())
        tmin = float(instance.tail[rows, i].min())
        prob += m >= (rmin + tmin) * u + pulp.lpSum(nb * float(instance.load[j, i]) * v for j, v in members)
        prob += (
            pulp.lpSum(float(instance.demand[j]) * v for j, v in members) <= float(instance.capacity[i]) * u
        )
        if disaggregate:
            for _, v in members:
                prob += v <= u
    solver = PulpHiGHS(msg=False, mip=integer, timeLimit=time_limit, threads=1)
    prob.solve(solver)
    status = pulp.LpStatus[prob.status]
    if status == "Infeasible":
        return None, None, "infeasible"
    value = pulp.value(m)
    model = getattr(prob, "solverModel", None)
    # PuLP reports HiGHS's time limit as "Optimal": read HiGHS's own model status.
    proved = status == "Optimal" and value is not None and (model is None or _highs_optimal(model))
    bound = None
    if integer and model is not None:
        dual = float(model.getInfo().mip_dual_bound)
        if math.isfinite(dual):
            bound = dual
    if proved:  # a MIP "optimal" within HiGHS's gap tolerance: its dual bound is the safe value
        return float(value), float(value) if bound is None else min(bound, float(value)), "optimal"
    if not integer:
        return None, None, "limit"
    return (None if value is None else float(value)), bound, "limit"


def _highs_optimal(model) -> bool:
    import highspy

    return model.getModelStatus() == highspy.HighsModelStatus.kOptimal


def jackson_bound(instance: Instance, assignment: np.ndarray) -> float:
    """Preemptive single-helper relaxation with the assignment fixed (a bound for that assignment only).

    Each batch of a client is one job of length fwd + bwd with a release date (its earliest head-forward end)
    and a delivery time (its tail plus the chains of its later batches); Jackson's rule — run the released job
    with the largest delivery time, preempting on each release — solves this relaxation exactly.
    """
    nb = instance.batches
    best = 0.0
    for j in np.flatnonzero(assignment < 0):
        best = max(best, nb * float(instance.local[j]))
    for i in range(instance.num_helpers):
        members = np.flatnonzero(assignment == i)
        if len(members) == 0:
            continue
        jobs = []
        for j in members:
            chain = float(instance.chain[j, i])
            for b in range(nb):
                jobs.append(
                    (
                        float(instance.release[j, i]) + b * chain,
                        float(instance.load[j, i]),
                        float(instance.tail[j, i]) + (nb - 1 - b) * chain,
                    )
                )
        best = max(best, _jackson(jobs))
    return best


def _jackson(jobs: list[tuple[float, float, float]]) -> float:
    import heapq

    jobs.sort()
    heap: list[tuple[float, float]] = []  # (-delivery, remaining)
    t, n, value = 0.0, 0, 0.0
    while n < len(jobs) or heap:
        if not heap:
            t = max(t, jobs[n][0])
        while n < len(jobs) and jobs[n][0] <= t:
            heapq.heappush(heap, (-jobs[n][2], jobs[n][1]))
            n += 1
        neg_q, rem = heapq.heappop(heap)
        horizon = jobs[n][0] if n < len(jobs) else math.inf
        run = min(rem, horizon - t)
        t += run
        if run < rem:
            heapq.heappush(heap, (neg_q, rem - run))
        else:
            value = max(value, t - neg_q)
    return value
