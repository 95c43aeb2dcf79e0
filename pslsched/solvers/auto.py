"""``auto`` (the default of ``sched solve``): chains the solvers by instance size within one time limit.

1. Always: the published heuristics ``greedy``, ``random``, ``ed-fcfs`` and ``equid`` (their IP gets at most 10%
   of the limit), each of their assignments re-sequenced by the best list-scheduling rule per helper, and the
   constructive start of :mod:`pslsched.solvers.start`.
2. By the size ``n`` of the CP-SAT model (optional intervals ``2 * B * #(client, helper) pairs that fit``):
   * ``n <= SMALL_INTERVALS`` (e.g. 20 clients on 3 helpers): ``cpsat`` (8 workers) for the rest of the time,
     warm-started from the best schedule so far; it usually proves optimality (``benders`` is not chained: on the
     benchmark it proved nothing that 8-worker CP-SAT did not, and splitting the time cost CP-SAT proofs);
   * ``n <= MAX_INTERVALS`` (medium, e.g. 100 clients on 5 helpers): ``lns`` for half the remaining time, then
     ``cpsat`` warm-started from LNS's schedule for the rest (CP-SAT also supplies a proved bound);
   * larger (thousands of clients): ``lns`` alone;
   * whatever the size, with less than a second left after the heuristics (short limits): ``lns`` alone.
3. The answer is the shortest schedule any of them produced (so never worse than a heuristic it ran), with the
   largest lower bound any of them proved. Default time limit when None: 30 s. Options passed on: ``workers``
   (CP-SAT threads, default 8), ``progress``.
"""

from __future__ import annotations

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule
from pslsched.core.timing import earliest_schedule
from pslsched.solvers.base import SolverRun, bound_time, register_run
from pslsched.solvers.cpsat_client import DEFAULT_WORKERS, MAX_INTERVALS, count_intervals
from pslsched.solvers.registry import solve
from pslsched.solvers.start import Start, best_start, evaluate

SUMMARY = "picks and chains heuristics, cpsat and lns by instance size within the time limit"
DEFAULT_TIME_LIMIT = 30.0
SMALL_INTERVALS = 600
HEURISTICS = ("greedy", "random", "ed-fcfs", "equid")
MIN_SEARCH_S = 0.05  # below this much time left, the heuristics' best is the answer
CPSAT_STARTUP_S = 1.0  # CP-SAT runs in a child process that needs most of a second before it searches


def start_from_schedule(instance: Instance, schedule: Schedule, name: str) -> Start:
    """A schedule in index form (assignment, per-helper orders by start time)."""
    assignment = np.array(
        [
            instance.helper_index[h] if h is not None else -1
            for h in map(schedule.assignment.get, instance.clients)
        ],
        dtype=int,
    )
    orders: list[list] = [[] for _ in range(instance.num_helpers)]
    phase_rank = {"fwd": 0, "bwd": 1}
    for t in sorted(schedule.tasks, key=lambda t: (t.start, t.end, t.batch, phase_rank[t.phase])):
        orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], t.phase, t.batch))
    _, completion = earliest_schedule(instance, assignment, orders)
    return Start(assignment, orders, float(completion.max()), name)


def search_plan(left: float, intervals: int) -> list[tuple[str, float | None]]:
    """Which searches follow the heuristics, with their budgets (None: whatever is left), by size and time."""
    if left < CPSAT_STARTUP_S:  # too short for CP-SAT's child process: LNS improves in moments
        return [("lns", None)]
    if intervals <= SMALL_INTERVALS:
        return [("cpsat", left)]
    if intervals <= MAX_INTERVALS:
        return [("lns", left / 2), ("cpsat", None)]
    return [("lns", None)]


@register_run("auto", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_auto(run: SolverRun, options: dict) -> SolveResult:
    """Best schedule of the chain described in the module docstring."""
    instance, limit, seed = run.instance, run.time_limit, run.seed
    workers = int(options.get("workers", DEFAULT_WORKERS))
    run.options = {"seed": seed, "workers": workers, **options}
    # A quick first bound (memory infeasibility, chain, what the IP reaches in moments): the full bound is computed
    # once, when the answer is packaged, so the search keeps its time on large instances.
    bounds, refused = run.preflight(bound_limit=min(0.5, bound_time(limit)))
    if refused is not None:
        return refused
    results: list[SolveResult] = []
    best: list[Start] = []

    def consider(start: Start | None) -> None:
        if start is not None and (not best or start.makespan < best[0].makespan):
            best[:] = [start]
            run.record(start.makespan, max(bound_values()))

    def bound_values() -> list[float]:
        return [bounds.best] + [r.lower_bound for r in results]

    for name in HEURISTICS:
        res = solve(instance, name, time_limit=max(0.2, min(10.0, 0.1 * limit)), seed=seed)
        results.append(res)
        if res.schedule is not None:
            start = start_from_schedule(instance, res.schedule, name)
            consider(start)
            # the same assignment, each helper sequenced by the best of the rules (EquiD's and FCFS among them)
            consider(evaluate(instance, start.assignment, f"{name}+rules"))
    consider(best_start(instance, ip_time=0.0))
    n = count_intervals(instance)
    exact = None
    if best and run.left() > MIN_SEARCH_S:
        for name, budget in search_plan(run.left(), n):
            budget = run.left() if budget is None else budget
            if budget <= MIN_SEARCH_S:
                break
            extra = {"hint": (best[0].assignment, best[0].orders)} if name == "cpsat" else {"start": best[0]}
            res = solve(instance, name, time_limit=budget, seed=seed, workers=workers, **extra)
            results.append(res)
            if name == "cpsat":
                exact = res
            if res.schedule is not None:
                consider(start_from_schedule(instance, res.schedule, name))
    if not best:
        return run.no_schedule("no solver found a schedule")
    chosen = best[0]
    tasks, completion = earliest_schedule(instance, chosen.assignment, chosen.orders)
    makespan = float(completion.max())
    proved = exact is not None and exact.status == "optimal" and makespan <= exact.makespan
    run.options = {k: v for k, v in run.options.items() if k not in ("hint", "start")}
    extra = {"chosen": chosen.name, "ran": {r.solver: r.makespan for r in results}, "intervals": n}
    dual = min(max(bound_values()), makespan)
    return run.finish(chosen.assignment, tasks, completion, dual=dual, proved=proved, extra=extra)
