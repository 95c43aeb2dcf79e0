"""Lower bounds on the makespan (problem.md §4) and the memory-feasibility check.

* ``chain``: a client cannot finish before its own chain (times the batches), on its best possible helper.
* ``load``: one model, solved as an LP (instant) and as an integer program with HiGHS (built directly from numpy
  arrays through ``highspy``: PuLP took 1.8 s to build the large LP, this 0.2 s) under a time limit:
  minimise ``M`` over memory-feasible assignments with, for every helper used, ``M >= rmin_i + B * load_i + tmin_i``
  (``rmin_i``/``tmin_i`` the smallest release/tail among clients helper ``i`` can hold), and for every client
  ``M >= B * chain`` on its helper (or ``B * local`` when it trains locally). It is at least as strong as
  problem.md's ``min release + L* + min tail`` and the chain bound together.
* ``load_frame`` (up to ``FRAME_PAIR_LIMIT`` pairs, in what the budget leaves after ``load``): the same model with
  each helper framed by the least release and tail of the clients it holds (problem.md §4).
* ``jackson``: with the assignment fixed, the preemptive single-helper relaxation solved exactly by Jackson's rule.
  It bounds only schedules with that assignment, so it is reported apart and never as the global bound.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.linear_model import INF, MIN_SOLVE_S, LinearModel, add_frame_chains, frame_columns

IP_PAIR_LIMIT = 40_000  # above this many (client, helper) pairs: a closed form and the class LP instead
FRAME_PAIR_LIMIT = 5_000  # up to this many pairs, also the framed integer model (2 more columns a pair)
BOUND_REL_GAP = 1e-6  # the framed model is solved this close (HiGHS's default 1e-4 leaves proofs short)


@dataclass
class BoundReport:
    """Lower bounds computed for an instance; ``best`` is the largest valid one."""

    chain: float
    load_lp: float | None = None
    load_ip: float | None = None
    infeasible: str | None = None  # reason when no memory-feasible assignment exists
    runtime_s: float = 0.0  # seconds spent on this instance's bounds, over every call
    extra: dict[str, float] = field(default_factory=dict)
    ip_time_limit: float | None = None  # the largest budget given to the integer model (None: no limit)
    integer_tried: bool = False  # the integer model was asked for (or, the instance large, does not apply)
    complete: bool = False  # more time would not add anything (proved, infeasible, or every model solved)
    solved: set[str] = field(default_factory=set)  # the integer models solved to optimality

    @property
    def best(self) -> float:
        values = [self.chain, self.load_lp, self.load_ip, *self.extra.values()]
        return max(v for v in values if v is not None)

    @property
    def ip_optimal(self) -> bool:
        """Whether the plain integer model was solved to the end."""
        return "load_ip" in self.solved

    @property
    def settled(self) -> float:
        """The largest bound that does not depend on how long its model ran: the chain, the LP and the integer
        models solved to the end (a one-worker search steered by it reproduces itself)."""
        values = [self.chain, self.load_lp, self.load_ip if self.ip_optimal else None]
        values += [v for name, v in self.extra.items() if name in self.solved]
        return max(v for v in values if v is not None)

    def as_dict(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"chain": self.chain, "load_lp": self.load_lp, "load_ip": self.load_ip}
        out.update(self.extra)
        out["best"] = self.best
        return out

    def covers(self, time_limit: float | None, integer: bool) -> bool:
        """Whether a request for ``time_limit`` (and the integer model when ``integer``) would add nothing."""
        if self.complete or self.infeasible:
            return True
        if not integer:
            return self.load_lp is not None
        if not self.integer_tried:
            return False
        return self.ip_time_limit is None or (time_limit is not None and self.ip_time_limit >= time_limit)


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
    """Chain, LP and integer load bounds, all within ``time_limit`` seconds in total (model building included;
    None: no limit). Cached per instance object: a request the cached report covers returns it at once, a longer
    one resumes from it (the LP is kept, the integer model re-run) and never returns a weaker bound."""
    cached = _CACHE.get(instance)
    if cached is not None and cached.covers(time_limit, integer):
        return cached
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    report = cached or BoundReport(chain=chain_bound(instance), infeasible=memory_infeasibility(instance))
    if report.infeasible is not None:
        report.complete = True
    elif int(instance.fits.sum()) <= IP_PAIR_LIMIT:
        _per_helper_bounds(instance, report, integer, deadline, time_limit)
    else:
        closed = _closed_form_load(instance)
        class_lp, done = _class_lp(instance, deadline)
        report.load_lp = max(v for v in (report.load_lp, closed, class_lp) if v is not None)
        report.integer_tried, report.complete = True, done
    report.runtime_s += time.perf_counter() - t0
    _CACHE[instance] = report
    return report


def _left(deadline: float | None) -> float:
    """Seconds left before ``deadline`` (inf without one)."""
    return INF if deadline is None else deadline - time.perf_counter()


def _per_helper_bounds(
    instance: Instance, report: BoundReport, integer: bool, deadline: float | None, budget: float | None
) -> None:
    """The load LP (unless cached) and, when ``integer``, the integer model in what is left of the budget."""
    if report.load_lp is None and _left(deadline) > MIN_SOLVE_S:
        lp_value, _, lp_status = _load_model(instance, integer=False, time_limit=_left(deadline))
        if lp_status == "infeasible":
            report.infeasible, report.complete = "no fractional assignment fits the helpers' memory", True
            return
        report.load_lp = lp_value
    if not integer:
        return
    largest = None if budget is None or report.ip_time_limit is None else max(report.ip_time_limit, budget)
    report.ip_time_limit = largest if report.integer_tried else budget  # the largest asked (None: no limit)
    report.integer_tried = True
    framed = 0 < int(instance.fits.sum()) <= FRAME_PAIR_LIMIT
    for model in ("load_ip", "load_frame") if framed else ("load_ip",):
        if _left(deadline) <= MIN_SOLVE_S or model in report.solved:
            continue
        _, bound, status = _load_model(
            instance, integer=True, time_limit=_left(deadline), framed=model == "load_frame"
        )
        if status == "infeasible":
            report.infeasible = "no assignment of clients to helpers fits the helpers' memory (bin packing)"
            report.load_ip, report.complete = None, True
            report.extra.pop("load_frame", None)
            return
        if bound is None:
            continue
        if model == "load_ip":
            report.load_ip = bound if report.load_ip is None else max(report.load_ip, bound)
        else:
            report.extra[model] = max(bound, report.extra.get(model, bound))
        if status == "optimal":
            report.solved.add(model)
    report.complete = {"load_ip", "load_frame"} <= report.solved or (not framed and report.ip_optimal)


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
    names = ("release", "fwd", "delay", "bwd", "tail")
    stacked = np.concatenate([np.nan_to_num(getattr(instance, m), nan=-1.0) for m in names])
    groups: dict[bytes, list[int]] = {}
    for i in range(instance.num_helpers):
        key = np.append(stacked[:, i], instance.capacity[i]).tobytes()
        groups.setdefault(key, []).append(i)
    return [np.array(g) for g in groups.values()]


def _class_lp_load(instance: Instance, time_limit: float | None) -> float | None:
    """The load LP on classes of interchangeable helpers, for instances too large for the per-helper model.

    A class of n helpers gets n times one helper's memory, and its busiest helper carries at least the class's
    mean load, so any fractional per-helper solution maps to a class solution no larger: a valid (if weaker)
    bound. None when the helpers form too many classes for a quick LP, or it is not solved in ``time_limit``."""
    return _class_lp(instance, None if time_limit is None else time.perf_counter() + time_limit)[0]


def _class_lp(instance: Instance, deadline: float | None) -> tuple[float | None, bool]:
    """:func:`_class_lp_load` by ``deadline``: (value or None, whether more time could not change it)."""
    classes = helper_classes(instance)
    k, nb, n_cls = instance.num_clients, instance.batches, len(classes)
    fits = np.stack([instance.fits[:, c[0]] for c in classes], axis=1)
    if n_cls == instance.num_helpers or int(fits.sum()) > 2 * IP_PAIR_LIMIT:
        return None, True
    if _left(deadline) <= MIN_SOLVE_S:
        return None, False
    # Every helper's busy span is framed by the smallest release before it and the smallest tail after it; with
    # global minima that also holds for an unused class, as long as every client needs a helper.
    frame = 0.0
    if not instance.can_local.any():
        frame = float(np.where(instance.fits, instance.release, np.inf).min())
        frame += float(np.where(instance.fits, instance.tail, np.inf).min())
    pj, pc = np.nonzero(fits)
    first = np.array([c[0] for c in classes])
    size = np.array([len(c) for c in classes], dtype=float)
    lj = np.flatnonzero(instance.can_local)
    lp = LinearModel(1 + len(pj) + len(lj))
    x, y = 1 + np.arange(len(pj)), 1 + len(pj) + np.arange(len(lj))
    # one option per client (no per-client chain rows: they slow HiGHS down and the chain bound is kept apart)
    lp.add(np.concatenate([pj, lj]), np.concatenate([x, y]), 1.0, np.ones(k), np.ones(k), k)
    if len(lj):  # M >= B * local[j] * y[j]
        lp.add_m(np.arange(len(lj)))
        lp.add(np.arange(len(lj)), y, -nb * instance.local[lj], np.zeros(len(lj)), None, len(lj))
    used = np.flatnonzero(np.bincount(pc, minlength=n_cls) > 0)
    row_of = np.full(n_cls, -1)
    row_of[used] = np.arange(len(used))
    lp.add_m(row_of[used])  # M >= frame + sum B * load / n * x over the class
    loads = -nb * instance.load[pj, first[pc]] / size[pc]
    lp.add(row_of[pc], x, loads, np.full(len(used), frame), None, len(used))
    cap = size[used] * instance.capacity[first[used]]
    lp.add(row_of[pc], x, instance.demand[pj], np.full(len(used), -INF), cap, len(used))
    status, value, *_ = lp.solve(integer=None, time_limit=_left(deadline))
    if status != "optimal":
        return None, status == "infeasible"
    return float(value), True


def _load_model(
    instance: Instance, integer: bool, time_limit: float | None, framed: bool = False
) -> tuple[float | None, float | None, str]:
    """Solve the combined load/chain model; returns (objective, proved bound, status). ``framed``: each helper's
    span framed by the least release and tail of the clients it holds (not of every client it could hold)."""
    k, nb, fits = instance.num_clients, instance.batches, instance.fits
    pj, pi = np.nonzero(fits)
    lj = np.flatnonzero(instance.can_local)
    ui = np.flatnonzero(fits.any(axis=0))
    n_p, n_l = len(pj), len(lj)
    x, y, u = 1 + np.arange(n_p), 1 + n_p + np.arange(n_l), 1 + n_p + n_l + np.arange(len(ui))
    helper_u = np.full(instance.num_helpers, -1)
    helper_u[ui] = np.arange(len(ui))
    model = LinearModel(1 + n_p + n_l + len(ui) + (2 * n_p if framed else 0))
    # one option per client
    model.add(np.concatenate([pj, lj]), np.concatenate([x, y]), 1.0, np.ones(k), np.ones(k), k)
    # M >= B * (chain on its helper, or local time)
    model.add_m(np.arange(k))
    chains = np.concatenate([-nb * instance.chain[pj, pi], -nb * instance.local[lj] if n_l else np.zeros(0)])
    model.add(np.concatenate([pj, lj]), np.concatenate([x, y]), chains, np.zeros(k), None, k)
    # M >= (rmin_i + tmin_i) * u_i + B * load_i for every helper used; memory; (small models) x <= u
    rmin = np.where(fits, instance.release, np.inf).min(axis=0)[ui]
    tmin = np.where(fits, instance.tail, np.inf).min(axis=0)[ui]
    rows = np.arange(len(ui))
    model.add_m(rows)
    model.add(rows, u, -(rmin + tmin), None, None, 0)
    if framed:
        first_w = 1 + n_p + n_l + len(ui)
        for n, times in enumerate((instance.release[pj, pi], instance.tail[pj, pi])):
            w_rows, w_cols, steps = frame_columns(pi, times, helper_u, first_w + n * n_p)
            model.add(w_rows, w_cols, -steps, None, None, 0)
    model.add(helper_u[pi], x, -nb * instance.load[pj, pi], np.zeros(len(ui)), None, len(ui))
    model.add(rows, u, -instance.capacity[ui], None, None, 0)
    model.add(helper_u[pi], x, instance.demand[pj], None, np.zeros(len(ui)), len(ui))
    if n_p <= 5_000:
        rows_p = np.arange(n_p)
        model.add(rows_p, x, 1.0, None, None, 0)
        model.add(rows_p, u[helper_u[pi]], -1.0, None, np.zeros(n_p), n_p)
    if framed:
        for n, times in enumerate((instance.release[pj, pi], instance.tail[pj, pi])):
            add_frame_chains(model, pi, times, helper_u, u, x, first_w + n * n_p)
    binaries = np.arange(1, model.num_cols) if integer else None
    # presolve does not reduce the large models: without it their root cut rounds (the bound) come ~0.3 s sooner
    # (1000 x 20); the small ones it solves outright
    status, value, dual, _ = model.solve(
        binaries,
        INF if time_limit is None else time_limit,
        n_p <= 5_000,
        rel_gap=BOUND_REL_GAP if framed and integer else None,
    )
    if status == "infeasible":
        return None, None, "infeasible"
    if status == "optimal":  # a MIP "optimal" within HiGHS's gap tolerance: its dual bound is the safe value
        return value, value if dual is None else min(dual, value), "optimal"
    return None, (dual if integer else None), "limit"


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
