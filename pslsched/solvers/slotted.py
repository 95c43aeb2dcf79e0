"""The slotted model of Tirana et al. (INFOCOM 2024), problem.md §5, shared by ``admm`` and ``milp-slotted``.

Every T1..T5 becomes ``ceil(value / slot_ms)`` slots, helper tasks at least one slot. Slot ``t`` covers
``[t * slot_ms, (t + 1) * slot_ms)``; a helper runs one task per slot, and tasks may be preempted at slot
boundaries. This module holds the conversion (:func:`to_slots`), the exact per-helper preemptive rule
(:func:`jackson`: largest tail first), per-helper slotted plans for a fixed assignment (:func:`plan_helper`), the
memory-constrained assignment program both solvers use (:func:`gap_assignment`, PuLP + HiGHS or CBC), and the
conversion of a slotted answer into a valid, non-preemptive schedule of the continuous model
(:func:`to_continuous`).

A slotted makespan is neither a lower nor an upper bound of the continuous optimum; the solvers report it apart,
in ``SolveResult.extra['slotted_makespan_ms']``.
"""

from __future__ import annotations

import heapq
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pulp

from pslsched.base.errors import InputError
from pslsched.core.backend_log import c_stdout_redirected, verbose
from pslsched.core.instance import Instance
from pslsched.core.schedule import Task
from pslsched.core.timing import earliest_schedule
from pslsched.solvers.assignment import HighsWithStart, highs_dual_bound, highs_status
from pslsched.solvers.baselines import balanced_assignment
from pslsched.solvers.list_scheduling import fcfs, list_schedule

DEFAULT_MAX_SLOTS = 200
BACKENDS = ("highs", "cbc")
_EPS = 1e-9

Segment = tuple[int, int]  # slots [start, end)


@dataclass(frozen=True)
class Slotted:
    """Integer slot counts of one instance for one ``slot_ms``: K x H matrices (-1 where the client does not fit
    the helper alone), ``chain`` = the five summed, ``local`` (K, -1 = no local option)."""

    slot_ms: float
    release: np.ndarray
    fwd: np.ndarray
    delay: np.ndarray
    bwd: np.ndarray
    tail: np.ndarray
    fits: np.ndarray
    local: np.ndarray

    @property
    def chain(self) -> np.ndarray:
        """K x H slotted chain T1+..+T5 (-1 where the pair is not usable)."""
        total = self.release + self.fwd + self.delay + self.bwd + self.tail
        return np.where(self.fits, total, -1)


def ceil_slots(value: np.ndarray, slot_ms: float, at_least_one: bool = False) -> np.ndarray:
    """``ceil(value / slot_ms)`` as ints, tolerant to float noise; NaN becomes -1."""
    arr = np.asarray(value, dtype=float)
    out = np.full(arr.shape, -1, dtype=np.int64)
    ok = ~np.isnan(arr)
    slots = np.ceil(arr[ok] / slot_ms - _EPS).astype(np.int64)
    out[ok] = np.maximum(slots, 1 if at_least_one else 0)
    return out


def to_slots(instance: Instance, slot_ms: float) -> Slotted:
    """The slotted version of ``instance`` for slots of ``slot_ms`` milliseconds."""
    if not (isinstance(slot_ms, (int, float)) and slot_ms > 0 and math.isfinite(slot_ms)):
        raise InputError("slot_ms", f"must be a positive number, got {slot_ms!r}")
    fits = np.array(instance.fits, dtype=bool)

    def mat(values: np.ndarray, at_least_one: bool = False) -> np.ndarray:
        return np.where(fits, ceil_slots(values, slot_ms, at_least_one), -1)

    local = np.full(instance.num_clients, -1, dtype=np.int64)
    if instance.local is not None:
        local = ceil_slots(instance.batches * instance.local, slot_ms)
    return Slotted(
        slot_ms=float(slot_ms),
        release=mat(instance.release),
        fwd=mat(instance.fwd, True),
        delay=mat(instance.delay),
        bwd=mat(instance.bwd, True),
        tail=mat(instance.tail),
        fits=fits,
        local=local,
    )


def check_backend(name: object) -> str:
    """``"highs"`` or ``"cbc"`` (case-insensitive); an InputError otherwise."""
    backend = str(name).lower()
    if backend not in BACKENDS:
        raise InputError("backend", f"must be 'highs' or 'cbc', got {name!r}")
    return backend


def check_slottable(instance: Instance) -> str | None:
    """Why the slotted model cannot represent ``instance`` (None if it can): it has one batch per round."""
    if instance.batches != 1:
        return f"the slotted model has one batch per round (this instance has batches={instance.batches})"
    return None


def continuous_estimate(instance: Instance) -> float:
    """Makespan (ms) of a cheap continuous schedule: balanced assignment + FCFS, else a serial chain sum."""
    assignment = balanced_assignment(instance)
    if assignment is not None:
        _, completion = list_schedule(instance, assignment, fcfs)
        return float(np.max(completion))
    chain = instance.chain[instance.fits]
    return float(chain.sum()) if chain.size else 1.0


def default_slot_ms(instance: Instance, max_slots: int = DEFAULT_MAX_SLOTS) -> float:
    """A slot length whose horizon stays near ``max_slots``: the makespan of balanced assignment + FCFS divided by
    ``0.8 * max_slots`` (the rest absorbs the rounding up of every task), rounded up to two significant digits."""
    target = continuous_estimate(instance) / (0.8 * max_slots)
    if not (target > 0 and math.isfinite(target)):
        return 1.0
    unit = 10.0 ** (math.floor(math.log10(target)) - 1)
    return float(math.ceil(target / unit - _EPS) * unit)


def jackson(
    release: np.ndarray, length: np.ndarray, tail: np.ndarray, busy: np.ndarray | None = None
) -> list[list[int]]:
    """Preemptive single-machine schedule in integer slots: each free slot runs the released, unfinished job with
    the largest tail (ties: lowest index), which minimises ``max(end + tail)`` exactly (Jackson's rule).
    ``busy[t]`` marks slots already taken. Returns the slots each job uses, in increasing order."""
    n = len(release)
    order = sorted(range(n), key=lambda j: (int(release[j]), j))
    remaining = [int(x) for x in length]
    slots: list[list[int]] = [[] for _ in range(n)]
    heap: list[tuple[int, int]] = []
    nxt, done, t = 0, 0, 0
    nbusy = 0 if busy is None else len(busy)
    while done < n:
        if not heap:
            t = max(t, int(release[order[nxt]]))
        while nxt < n and release[order[nxt]] <= t:
            j = order[nxt]
            heapq.heappush(heap, (-int(tail[j]), j))
            nxt += 1
        if t < nbusy and busy[t]:
            t += 1
            continue
        j = heap[0][1]
        run = 1
        if t >= nbusy:  # no taken slot ahead: run j until it ends or the next release may preempt it
            stop = t + remaining[j]
            if nxt < n:
                stop = min(stop, int(release[order[nxt]]))
            run = max(stop - t, 1)
        slots[j].extend(range(t, t + run))
        remaining[j] -= run
        t += run
        if remaining[j] == 0:
            heapq.heappop(heap)
            done += 1
    return slots


def segments(used: list[int]) -> list[Segment]:
    """Sorted slot numbers as maximal runs ``[start, end)``."""
    out: list[Segment] = []
    for t in used:
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + 1)
        else:
            out.append((t, t + 1))
    return out


@dataclass
class HelperPlan:
    """The slotted schedule of one helper: each member's forward and backward slots as runs ``[start, end)``, and
    ``value`` = the largest slotted completion (backward end + tail slots) of its members, 0 when it has none."""

    helper: int
    fwd: dict[int, list[Segment]] = field(default_factory=dict)
    bwd: dict[int, list[Segment]] = field(default_factory=dict)
    value: int = 0


def plan_from_slots(sl: Slotted, i: int, fwd: dict[int, list[int]], bwd: dict[int, list[int]]) -> HelperPlan:
    """A HelperPlan from each member's forward and backward slot numbers on helper ``i``."""
    plan = HelperPlan(i)
    for j in fwd:
        plan.fwd[j] = segments(sorted(fwd[j]))
        plan.bwd[j] = segments(sorted(bwd[j]))
        if plan.bwd[j]:
            plan.value = max(plan.value, plan.bwd[j][-1][1] + int(sl.tail[j, i]))
    return plan


def plan_helper(sl: Slotted, i: int, members: list[int]) -> HelperPlan:
    """Tirana et al.'s per-helper step, each stage exact: forwards by Jackson's rule (tail = delay + bwd + tail
    slots), then the backwards in the remaining slots by Jackson's rule (release = forward end + delay, tail = T5)."""
    if not members:
        return HelperPlan(i)
    idx = np.asarray(members, dtype=int)
    f_used = jackson(sl.release[idx, i], sl.fwd[idx, i], sl.delay[idx, i] + sl.bwd[idx, i] + sl.tail[idx, i])
    f_end = np.array([u[-1] + 1 for u in f_used])
    busy = np.zeros(int(f_end.max()), dtype=bool)
    for u in f_used:
        busy[u] = True
    b_used = jackson(f_end + sl.delay[idx, i], sl.bwd[idx, i], sl.tail[idx, i], busy)
    return plan_from_slots(
        sl, i, {int(j): f_used[p] for p, j in enumerate(idx)}, {int(j): b_used[p] for p, j in enumerate(idx)}
    )


def plan_all(sl: Slotted, assignment: np.ndarray, num_helpers: int) -> list[HelperPlan]:
    """One :func:`plan_helper` per helper for a fixed assignment (-1 = local)."""
    assignment = np.asarray(assignment, dtype=int)
    return [plan_helper(sl, i, [int(j) for j in np.flatnonzero(assignment == i)]) for i in range(num_helpers)]


def slotted_makespan(sl: Slotted, assignment: np.ndarray, plans: list[HelperPlan]) -> int:
    """The slotted makespan in slots: the largest helper plan value and local completion."""
    local = [int(sl.local[j]) for j in np.flatnonzero(np.asarray(assignment) < 0)]
    return int(max([p.value for p in plans] + local + [0]))


def to_continuous(
    instance: Instance, assignment: np.ndarray, plans: list[HelperPlan]
) -> tuple[list[Task], np.ndarray]:
    """A valid non-preemptive continuous schedule: the slotted assignment, and on each helper its tasks in the
    order they complete in the slotted plan, started as early as possible with exact float lengths."""
    orders = []
    for plan in plans:
        ends = [(segs[-1][1], j, "fwd") for j, segs in plan.fwd.items()]
        ends += [(segs[-1][1], j, "bwd") for j, segs in plan.bwd.items()]
        orders.append([(j, phase, 0) for _, j, phase in sorted(ends)])
    return earliest_schedule(instance, np.asarray(assignment, dtype=int), orders)


def shortest_chain(instance: Instance) -> np.ndarray:
    """Each client on the helper (it fits alone) with its shortest chain T1+..+T5, ties to the lowest index;
    -1 (local) for a client that fits no helper. Memory between clients is not checked."""
    chain = np.where(instance.fits, instance.chain, np.inf)
    best = np.argmin(chain, axis=1)
    return np.where(instance.fits.any(axis=1), best, -1).astype(int)


def memory_ok(instance: Instance, assignment: np.ndarray) -> bool:
    """Every client on a helper it fits (or local where allowed) and every helper within its memory."""
    assignment = np.asarray(assignment, dtype=int)
    for j, i in enumerate(assignment):
        if (i < 0 and not instance.can_local[j]) or (i >= 0 and not instance.fits[j, i]):
            return False
    used = np.zeros(instance.num_helpers)
    np.add.at(used, assignment[assignment >= 0], instance.demand[assignment >= 0])
    return bool((used <= instance.capacity + 1e-9).all())


def start_assignments(instance: Instance) -> list[np.ndarray]:
    """Memory-feasible simple assignments: shortest chain (when it fits in memory) and balanced-greedy."""
    out = []
    for candidate in (shortest_chain(instance), balanced_assignment(instance)):
        if candidate is not None and memory_ok(instance, candidate):
            if not any(np.array_equal(candidate, c) for c in out):
                out.append(np.asarray(candidate, dtype=int))
    return out


def column_costs(instance: Instance, helper_cost: np.ndarray, local_cost: np.ndarray) -> np.ndarray:
    """K x (H + 1) costs for :func:`gap_assignment`: helper columns where the client fits alone, last column =
    local training where allowed; ``inf`` elsewhere."""
    helpers = np.where(instance.fits, np.asarray(helper_cost, dtype=float), np.inf)
    local = np.where(instance.can_local, np.asarray(local_cost, dtype=float), np.inf)
    return np.column_stack([helpers, local])


def gap_assignment(
    instance: Instance, cost: np.ndarray, *, time_limit: float, backend: str = "highs"
) -> tuple[np.ndarray | None, str]:
    """Minimum-cost assignment with memory (a generalised assignment problem) over the K x (H + 1) ``cost``
    (last column = local, ``inf`` = forbidden), with PuLP. Returns (assignment with -1 = local, or None; status)."""
    k, h = instance.num_clients, instance.num_helpers
    prob = pulp.LpProblem("slotted_assignment", pulp.LpMinimize)
    y = {
        (j, c): pulp.LpVariable(f"y_{j}_{c}", cat=pulp.LpBinary)
        for j in range(k)
        for c in range(h + 1)
        if math.isfinite(cost[j, c])
    }
    prob += pulp.lpSum(float(cost[j, c]) * v for (j, c), v in y.items())
    for j in range(k):
        options = [y[j, c] for c in range(h + 1) if (j, c) in y]
        if not options:
            return None, "infeasible"
        prob += pulp.lpSum(options) == 1
    for i in range(h):
        members = [j for j in range(k) if (j, i) in y]
        if members:
            prob += pulp.lpSum(float(instance.demand[j]) * y[j, i] for j in members) <= float(
                instance.capacity[i]
            )
    status = run_model(prob, backend, time_limit)
    if status not in ("optimal", "feasible"):
        return None, status
    assignment = np.full(k, -1, dtype=int)
    for (j, c), v in y.items():
        if (v.varValue or 0) > 0.5 and c < h:
            assignment[j] = c
    return assignment, status


def run_model(prob: pulp.LpProblem, backend: str, time_limit: float, warm: bool = False) -> str:
    """Solve ``prob`` single-threaded with HiGHS (in-process) or CBC within ``time_limit`` seconds; ``warm``
    hands the variables' initial values over as a MIP start. Returns optimal, feasible, infeasible or none."""
    limit = max(0.1, float(time_limit))
    if backend == "highs":  # PuLP's building and reading back inside the limit (see HighsWithStart)
        deadline = time.perf_counter() + limit
        prob.solve(
            HighsWithStart(msg=False, timeLimit=limit, threads=1, gapRel=0.0, deadline=deadline, warm=warm)
        )
        return highs_status(prob)
    # PuLP 3 deprecates its bundled CBC (the one installed here); CBC's log (only when verbose) to stderr
    with warnings.catch_warnings(), c_stdout_redirected():
        warnings.simplefilter("ignore", DeprecationWarning)
        prob.solve(pulp.PULP_CBC_CMD(msg=verbose(), timeLimit=limit, threads=1, warmStart=warm, gapRel=0.0))
    if prob.status == pulp.LpStatusInfeasible:
        return "infeasible"
    if prob.status == pulp.LpStatusOptimal and prob.sol_status == pulp.LpSolutionOptimal:
        return "optimal"
    return (
        "feasible" if prob.sol_status in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal) else "none"
    )


def highs_bound(prob: pulp.LpProblem) -> float | None:
    """HiGHS's proved bound of the last solve of ``prob`` (None without one)."""
    return highs_dual_bound(prob)
