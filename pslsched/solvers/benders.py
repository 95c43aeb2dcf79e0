"""``benders``: logic-based Benders decomposition; proves optimality where one CP-SAT model stalls.

The problem splits into *which helper serves whom* (a small integer program) and *in what order a helper serves its
clients* (one single-machine sequencing problem with time lags per helper). CP-SAT on the joint model often finds
the optimum of a 10-20 client instance quickly but cannot close the proof: its relaxation of the helper sequencing
is weak. Here each part goes to the tool that is good at it:

* **Master** (PuLP + HiGHS, re-solved each round): binaries ``x[j, i]`` (client j on helper i) and ``y[j]`` (local
  training), memory per helper, and the valid inequalities of problem.md §4 in assignment form: the chain of each
  client, ``min release + B * load + min tail`` per used helper, ``B * local[j]``; minimise the makespan ``C``. Its
  optimum (HiGHS's proved dual bound) is a lower bound on the instance.
* **Subproblems** (CP-SAT with the assignment fixed, in one worker process): the exact finish ``v(i, S)`` of helper
  ``i`` serving client set ``S``, cached per set. The largest ``v`` over helpers (and local clients) is the makespan
  of a real schedule, which updates the incumbent.
* **Cuts**: serving more clients never lets a helper finish earlier (removing a client from a schedule keeps it
  feasible), so ``C >= v(i, S) * (sum_{j in S} x[j, i] - |S| + 1)`` is valid. A violated cut is first
  *strengthened*: clients are dropped from ``S`` while the smaller set still finishes after the master's ``C``
  (each drop is one cached subproblem), so one cut removes many assignments at once.

It stops when the master's bound meets the incumbent (optimal, up to HiGHS's 1e-6 relative tolerance, as ``milp``),
or at the time limit with both numbers. A subproblem CP-SAT cannot finish in time contributes its proved bound to
the cut and its schedule to the incumbent. Options: ``start`` (a :class:`pslsched.solvers.start.Start` to begin from),
``progress``. Default time limit: 30 s. Meant for small instances (the master has one binary per fitting pair;
models above ``MAX_PAIRS`` pairs are refused: use ``auto``/``lns``).
"""

from __future__ import annotations

import time

import numpy as np
import pulp

from pslsched.core.bounds import jackson_bound
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.timing import HelperTask, earliest_schedule
from pslsched.solvers.assignment import HighsWithStart, highs_dual_bound, highs_status
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.cpsat_client import CpWorker
from pslsched.solvers.lns import sub_instance
from pslsched.solvers.sequencing import HelperData, best_rule
from pslsched.solvers.start import Start, best_start

SUMMARY = "logic-based Benders: assignment IP (HiGHS) + exact helper sequencing (CP-SAT); proves optima"
DEFAULT_TIME_LIMIT = 30.0
MAX_PAIRS = 2_000
SUB_TIME_LIMIT = 5.0
LIMIT_SLACK = 0.03  # the search stops this share of the limit early
PROOF_RTOL = 1e-6
# CP-SAT's portfolio (reduced-cost, core, no-LP, quick-restart workers side by side) closes single-helper
# sequencing proofs in milliseconds where any one search strategy alone can stall for seconds.
SUB_WORKERS = 8


class _Helpers:
    """Exact single-helper finishes ``v(i, S)``, cached: (lower bound, finish of the best order, that order)."""

    def __init__(self, instance: Instance, worker: CpWorker, seed: int, workers: int):
        self.instance, self.worker, self.seed, self.workers = instance, worker, seed, workers
        self.cache: dict[tuple[int, tuple[int, ...]], tuple[float, float, list[HelperTask]]] = {}
        self.data = [HelperData(instance, i) for i in range(instance.num_helpers)]
        self.solves = 0

    def value(
        self, i: int, members: tuple[int, ...], deadline: float
    ) -> tuple[float, float, list[HelperTask]]:
        key = (i, members)
        if key in self.cache:
            return self.cache[key]
        inst = self.instance
        rule_value, order, _ = best_rule(self.data[i], list(members))
        sub = sub_instance(inst, list(members), [i])
        pos = {j: k for k, j in enumerate(members)}
        fixed = np.zeros(len(members), dtype=int)
        lower = jackson_bound(sub, fixed)
        lower = max(lower, float(inst.batches * inst.chain[list(members), i].max()))
        result = (min(lower, rule_value), rule_value, order)
        remaining = deadline - time.perf_counter()
        if rule_value > lower * (1 + 1e-12) and remaining > 0.05:
            out = self.worker.solve(
                sub,
                hint=(fixed, [[(pos[j], ph, b) for j, ph, b in order]]),
                fixed=fixed,
                time_limit=min(remaining, SUB_TIME_LIMIT),
                workers=self.workers,
                seed=self.seed,
                lower_ms=lower,
                deadline=deadline + LIMIT_SLACK,  # a late answer is ignored
            )
            self.solves += 1
            if out.bound is not None:
                lower = max(lower, min(out.bound, rule_value))
            if out.orders is not None and out.makespan is not None and out.makespan < rule_value:
                order = [(members[q], ph, b) for q, ph, b in out.orders[0]]
                rule_value = out.makespan
            result = (min(lower, rule_value), rule_value, order)
        if result[0] >= result[1] * (1 - 1e-12) or remaining > 0.05:
            self.cache[key] = result  # proved, or the best CP-SAT could do with a full budget
        return result


class _Master:
    """The assignment integer program with its cuts (PuLP + HiGHS)."""

    def __init__(self, instance: Instance, seed: int):
        self.instance, self.seed = instance, seed
        k, h, nb = instance.num_clients, instance.num_helpers, instance.batches
        prob = self.prob = pulp.LpProblem("benders_master", pulp.LpMinimize)
        cmax = self.cmax = pulp.LpVariable("C", lowBound=0)
        fits = instance.fits
        self.x = {
            (j, i): pulp.LpVariable(f"x_{j}_{i}", cat=pulp.LpBinary)
            for j in range(k)
            for i in range(h)
            if fits[j, i]
        }
        self.used: dict[int, pulp.LpVariable] = {}
        self.y = {j: pulp.LpVariable(f"y_{j}", cat=pulp.LpBinary) for j in range(k) if instance.can_local[j]}
        prob += cmax
        for j in range(k):
            prob += (
                pulp.lpSum(
                    [self.x[j, i] for i in range(h) if fits[j, i]] + ([self.y[j]] if j in self.y else [])
                )
                == 1
            )
            if j in self.y:
                prob += cmax >= nb * float(instance.local[j]) * self.y[j]
        for (j, i), var in self.x.items():
            prob += cmax >= nb * float(instance.chain[j, i]) * var
        for i in range(h):
            rows = [j for j in range(k) if fits[j, i]]
            if not rows:
                continue
            used = self.used[i] = pulp.LpVariable(f"u_{i}", cat=pulp.LpBinary)
            head = float(instance.release[rows, i].min() + instance.tail[rows, i].min())
            for j in rows:
                prob += used >= self.x[j, i]
            prob += cmax >= head * used + pulp.lpSum(
                nb * float(instance.load[j, i]) * self.x[j, i] for j in rows
            )
            demand = [float(instance.demand[j]) for j in rows]
            if sum(demand) > float(instance.capacity[i]):
                prob += pulp.lpSum(d * self.x[j, i] for d, j in zip(demand, rows)) <= float(
                    instance.capacity[i]
                )
        self.cuts = 0

    def add_cut(self, i: int, members: tuple[int, ...], value: float) -> None:
        """``C >= value`` whenever every client of ``members`` is on helper ``i``."""
        self.prob += self.cmax >= value * (pulp.lpSum(self.x[j, i] for j in members) - (len(members) - 1))
        self.cuts += 1

    def solve(
        self, time_limit: float, start: np.ndarray | None, start_value: float
    ) -> tuple[float | None, np.ndarray | None]:
        """(proved lower bound, best assignment found); the assignment is None when HiGHS found none."""
        if start is not None:
            for (j, i), var in self.x.items():
                var.setInitialValue(int(start[j] == i))
            for j, var in self.y.items():
                var.setInitialValue(int(start[j] < 0))
            for i, var in self.used.items():
                var.setInitialValue(int(np.any(start == i)))
            self.cmax.setInitialValue(start_value)
        solver = HighsWithStart(
            msg=False,
            timeLimit=max(0.05, time_limit),
            deadline=time.perf_counter() + time_limit,
            threads=1,
            gapRel=0.0,
            random_seed=self.seed,
            mip_feasibility_tolerance=1e-9,
        )
        self.prob.solve(solver)
        status = highs_status(self.prob)
        bound = highs_dual_bound(self.prob)
        if status == "optimal":
            bound = float(self.cmax.varValue or 0.0) if bound is None else bound
        if status not in ("optimal", "feasible"):
            return bound, None
        assignment = np.full(self.instance.num_clients, -1, dtype=int)
        for (j, i), var in self.x.items():
            if (var.varValue or 0.0) > 0.5:
                assignment[j] = i
        return bound, assignment


def _strengthen(
    helpers: _Helpers, i: int, members: tuple[int, ...], theta: float, deadline: float
) -> tuple[tuple[int, ...], float]:
    """Drop clients (smallest load first) while the remaining set still finishes after ``theta``."""
    inst = helpers.instance
    keep = list(members)
    value = helpers.value(i, members, deadline)[0]
    for j in sorted(members, key=lambda c: float(inst.load[c, i])):
        if len(keep) == 1 or time.perf_counter() >= deadline:
            break
        trial = tuple(c for c in keep if c != j)
        lower = helpers.value(i, trial, deadline)[0]
        if lower > theta * (1 + PROOF_RTOL):
            keep, value = list(trial), lower
    return tuple(keep), value


@register_run("benders", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_benders(run: SolverRun, options: dict) -> SolveResult:
    """Master IP over assignments, CP-SAT per helper, strengthened no-good cuts (see the module docstring)."""
    instance, limit, seed = run.instance, run.time_limit, run.seed
    # the search ends a little early (a master or subproblem solve in progress, the worker's exit, the re-timing)
    deadline = run.started + (1 - LIMIT_SLACK) * limit - run.reserve()
    run.options = {"seed": seed}
    pairs = int(instance.fits.sum())
    too_large = f"too large for benders ({pairs} client-helper pairs > {MAX_PAIRS}); use auto or lns"
    bounds, refused = run.preflight(too_large if pairs > MAX_PAIRS else None)
    if refused is not None:
        return refused
    start = options.get("start")
    if not isinstance(start, Start):
        start = best_start(instance, ip_time=min(2.0, limit / 10), deadline=run.started + limit / 4)
    if start is None:
        return run.no_schedule("no constructive start")
    best = (start.makespan, start.assignment.copy(), [list(o) for o in start.orders])
    lower = bounds.best
    run.record(best[0], lower, notify=False)
    nb = instance.batches
    local_time = np.zeros(instance.num_clients)
    if instance.local is not None:
        local_time = np.where(instance.can_local, nb * np.nan_to_num(instance.local, nan=0.0), 0.0)
    master = _Master(instance, seed)
    rounds = 0
    with CpWorker() as worker:
        helpers = _Helpers(instance, worker, seed, int(options.get("sub_workers", SUB_WORKERS)))
        while time.perf_counter() < deadline and best[0] > lower * (1 + PROOF_RTOL):
            rounds += 1
            bound, assignment = master.solve(deadline - time.perf_counter(), best[1], best[0])
            if bound is not None and bound > lower:
                lower = min(bound, best[0])
            if assignment is None or best[0] <= lower * (1 + PROOF_RTOL):
                break
            theta = float(master.cmax.varValue or 0.0)
            orders: list[list[HelperTask]] = [[] for _ in range(instance.num_helpers)]
            value = float(local_time[assignment < 0].max(initial=0.0))
            violated = []
            for i in range(instance.num_helpers):
                members = tuple(int(j) for j in np.flatnonzero(assignment == i))
                if not members:
                    continue
                low, fin, order = helpers.value(i, members, deadline)
                orders[i] = order
                value = max(value, fin)
                if low > theta * (1 + PROOF_RTOL):
                    violated.append((i, members, low))
            if value < best[0]:
                best = (value, assignment.copy(), orders)
            for i, members, low in violated:
                master.add_cut(i, members, low)
                small, small_value = _strengthen(helpers, i, members, theta, deadline)
                if small != members:
                    master.add_cut(i, small, small_value)
            run.record(best[0], lower)
            if not violated:
                break  # the master's answer is achieved (up to unproved subproblems): nothing left to cut
    _, assignment, orders = best
    tasks, completion = earliest_schedule(instance, assignment, orders)
    makespan = float(completion.max())
    extra = {"rounds": rounds, "cuts": master.cuts, "subproblems": helpers.solves, "start": start.name}
    proved = makespan <= lower * (1 + PROOF_RTOL)
    return run.finish(assignment, tasks, completion, dual=min(lower, makespan), proved=proved, extra=extra)
