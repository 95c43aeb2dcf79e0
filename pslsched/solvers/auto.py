"""``auto`` (the default of ``sched solve``): chains the solvers by instance size within one time limit.

Everything shares the one limit (kept within 5%, the answer's packaging included):

0. The lower bounds, once, with their share of the limit (:func:`pslsched.solvers.base.bound_time`); every part
   finds them cached.
1. The heuristics, by ``HEURISTIC_SHARE`` of the limit: the constructive starts of :mod:`pslsched.solvers.start`,
   then EquiD and ED-FCFS (one min-max-load IP for both, at most 10% of the limit), ``greedy`` and ``random``, each
   assignment also re-sequenced by the best list-scheduling rule per helper. A step that would not end in time is
   skipped (on 10,000 clients only the constructive starts run): ``extra["ran"]`` lists what ran.
2. By the size ``n`` of the CP-SAT model (optional intervals ``2 * B * #(client, helper) pairs that fit``):
   * ``n <= SMALL_INTERVALS`` (e.g. 20 clients on 3 helpers): ``cpsat`` (8 workers) for the rest of the time,
     warm-started from the best schedule so far; it usually proves optimality (``benders`` is not chained: on the
     benchmark it proved nothing that 8-worker CP-SAT did not, and splitting the time cost CP-SAT proofs);
   * ``n <= MAX_INTERVALS`` (medium, e.g. 100 clients on 5 helpers): ``lns`` for half the remaining time, then
     ``cpsat`` warm-started from LNS's schedule for the rest (CP-SAT also supplies a proved bound);
   * larger (thousands of clients): ``lns`` alone;
   * whatever the size, with less than a second left after the heuristics (short limits): ``lns`` alone.
   Each part gets what is left less the re-timing of its answer; a CP-SAT worker that overruns is stopped and
   its late answer ignored (:mod:`pslsched.solvers.cpsat`).
3. The answer is the shortest schedule any of them produced (so never worse than a heuristic it ran), with the
   largest lower bound any of them proved. Default time limit when None: 30 s. Options passed on: ``workers``
   (CP-SAT threads, default 8), ``progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, Task
from pslsched.core.timing import HelperTask, earliest_schedule
from pslsched.solvers.assignment import min_max_load_assignment
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.baselines import balanced_assignment, random_assignment
from pslsched.solvers.cpsat_client import DEFAULT_WORKERS, MAX_INTERVALS, count_intervals
from pslsched.solvers.list_scheduling import Rule, equid_rule, fcfs, list_schedule
from pslsched.solvers.registry import solve
from pslsched.solvers.start import Start, best_start, evaluate

SUMMARY = "picks and chains heuristics, cpsat and lns by instance size within the time limit"
DEFAULT_TIME_LIMIT = 30.0
SMALL_INTERVALS = 600
HEURISTICS = ("greedy", "random", "ed-fcfs", "equid")
MIN_SEARCH_S = 0.05  # below this much time left, the heuristics' best is the answer
CPSAT_STARTUP_S = 1.0  # CP-SAT runs in a child process that needs most of a second before it searches
HEURISTIC_SHARE = 0.4  # the bounds and the heuristics end by this share of the limit (they skip steps to)


def start_from_schedule(instance: Instance, schedule: Schedule, name: str) -> Start:
    """A schedule in index form (assignment, per-helper orders by start time)."""
    assignment = np.array(
        [
            instance.helper_index[h] if h is not None else -1
            for h in map(schedule.assignment.get, instance.clients)
        ],
        dtype=int,
    )
    orders = orders_of(instance, schedule.tasks)
    _, completion = earliest_schedule(instance, assignment, orders)
    return Start(assignment, orders, float(completion.max()), name)


def orders_of(instance: Instance, tasks: Sequence[Task]) -> list[list[HelperTask]]:
    """Per-helper task orders (by start time) of a list of tasks."""
    orders: list[list[HelperTask]] = [[] for _ in range(instance.num_helpers)]
    phase_rank = {"fwd": 0, "bwd": 1}
    for t in sorted(tasks, key=lambda t: (t.start, t.end, t.batch, phase_rank[t.phase])):
        orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], t.phase, t.batch))
    return orders


def search_plan(left: float, intervals: int) -> list[tuple[str, float | None]]:
    """Which searches follow the heuristics, with their budgets (None: whatever is left), by size and time."""
    if left < CPSAT_STARTUP_S:  # too short for CP-SAT's child process: LNS improves in moments
        return [("lns", None)]
    if intervals <= SMALL_INTERVALS:
        return [("cpsat", left)]
    if intervals <= MAX_INTERVALS:
        return [("lns", left / 2), ("cpsat", None)]
    return [("lns", None)]


class _Heuristics:
    """The heuristics' phase under one deadline: each step (an assignment, then a list schedule or the rules) is
    skipped when the slowest step so far would not end before the deadline."""

    def __init__(self, run: SolverRun, deadline: float, consider: Callable[[Start | None], None]):
        self.run, self.deadline, self.consider = run, deadline, consider
        self.step_s = run.reserve() / 2  # a first guess (one re-timing); then the slowest step measured
        self.ran: dict[str, float | None] = {}
        self.seen: set[bytes] = set()

    def fits(self) -> bool:
        """Whether a step as slow as the slowest so far would end before the deadline."""
        return time.perf_counter() + self.step_s <= self.deadline

    def timed(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, its duration counted in the slowest step."""
        t0 = time.perf_counter()
        out = fn()
        self.step_s = max(self.step_s, time.perf_counter() - t0)
        return out

    def rule(self, name: str, assignment: np.ndarray | None, rule: Rule) -> None:
        """``rule`` on every helper of ``assignment`` (as the heuristic ``name``), then the best rules on it."""
        if assignment is None:
            self.ran[name] = None
            return
        tasks, completion = self.timed(lambda: list_schedule(self.run.instance, assignment, rule))
        self.ran[name] = float(np.nanmax(completion))
        orders = orders_of(self.run.instance, tasks)
        self.consider(Start(assignment, orders, self.ran[name], name))
        if assignment.tobytes() not in self.seen and self.fits():
            self.seen.add(assignment.tobytes())
            self.consider(self.timed(lambda: evaluate(self.run.instance, assignment, f"{name}+rules")))

    def run_all(self, ip_time: float) -> None:
        """The constructive starts, then EquiD and ED-FCFS (one IP), greedy and random, while time allows."""
        instance, seed = self.run.instance, self.run.seed
        self.consider(best_start(instance, ip_time=0.0, deadline=self.deadline - self.step_s))
        ip_left = self.deadline - time.perf_counter() - 2 * self.step_s
        if self.fits() and ip_left > 0:
            assignment, _ = min_max_load_assignment(instance, time_limit=min(ip_time, ip_left))
            for name, rule in (("equid", equid_rule), ("ed-fcfs", fcfs)):
                if self.fits():
                    self.rule(name, assignment, rule)
        if self.fits():
            self.rule("greedy", balanced_assignment(instance), fcfs)
        if self.fits():
            self.rule("random", random_assignment(instance, np.random.default_rng(seed)), fcfs)


@register_run("auto", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_auto(run: SolverRun, options: dict) -> SolveResult:
    """Best schedule of the chain described in the module docstring."""
    instance, limit, seed = run.instance, run.time_limit, run.seed
    workers = int(options.get("workers", DEFAULT_WORKERS))
    run.options = {"seed": seed, "workers": workers, **options}
    # the bounds once (their share of the limit), shared with every part through the cache
    bounds, refused = run.preflight()
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

    heuristics = _Heuristics(run, run.started + HEURISTIC_SHARE * limit - 2 * run.reserve(), consider)
    heuristics.run_all(ip_time=max(0.2, min(10.0, 0.1 * limit)))
    n = count_intervals(instance)
    exact = None
    # a part's answer is re-timed here once more, and the whole answer packaged: two re-timings kept
    left = run.search_left() - run.reserve()
    if best and left > MIN_SEARCH_S:
        for name, budget in search_plan(left, n):
            left = run.search_left() - run.reserve()
            budget = left if budget is None else min(budget, left)
            if budget <= MIN_SEARCH_S:
                break
            extra = {"hint": (best[0].assignment, best[0].orders)} if name == "cpsat" else {"start": best[0]}
            res = solve(instance, name, time_limit=budget, seed=seed, workers=workers, **extra)
            results.append(res)
            heuristics.ran[name] = res.makespan
            if name == "cpsat":
                exact = res
            if res.schedule is not None:
                consider(start_from_schedule(instance, res.schedule, name))
    if not best:
        return run.no_schedule("no solver found a schedule")
    if not (exact is not None and exact.status == "optimal"):
        run.resume_bounds()  # time the parts left over (they stalled) goes to the bound
    chosen = best[0]
    tasks, completion = earliest_schedule(instance, chosen.assignment, chosen.orders)
    makespan = float(completion.max())
    proved = exact is not None and exact.status == "optimal" and makespan <= exact.makespan
    run.options = {k: v for k, v in run.options.items() if k not in ("hint", "start")}
    extra = {"chosen": chosen.name, "ran": heuristics.ran, "intervals": n}
    dual = min(max(bound_values()), makespan)
    return run.finish(chosen.assignment, tasks, completion, dual=dual, proved=proved, extra=extra)
