"""``auto`` (the default of ``sched solve``): a portfolio of the heuristics, CP-SAT and LNS within one time limit.

Everything shares the one limit (kept within 5%, the answer's packaging included), and the parts share what they
find (issue 25, item 1: never worse than one of them run alone with the same limit and workers):

0. CP-SAT's child process is started first (when the model has at most ``MAX_INTERVALS`` optional intervals and the
   limit is at least ``MIN_CPSAT_LIMIT``), so that its start-up (~0.5 s, OR-Tools' import) overlaps the bounds and
   the heuristics; then the lower bounds, once, with their share of the limit
   (:func:`pslsched.solvers.base.bound_time`); every part finds them cached.
1. The heuristics, by ``HEURISTIC_SHARE`` of the limit: the constructive starts of :mod:`pslsched.solvers.start`,
   then EquiD and ED-FCFS (one min-max-load IP for both, at most 10% of the limit), ``greedy`` and ``random``, each
   assignment also re-sequenced by the best list-scheduling rule per helper. A step that would not end in time is
   skipped (on 10,000 clients only the constructive starts run): ``extra["ran"]`` lists what ran.
2. CP-SAT and LNS side by side, both from the heuristics' best: CP-SAT (``workers`` threads) on the whole model in
   its process, hinted with that schedule and given the best bound (it stops when it meets it), until the end of
   the limit; LNS (:func:`pslsched.solvers.lns.improve`, its own one-worker CP-SAT for the neighbourhoods) in this
   process until its stop rules or the end. Each gets about the time it would have alone (CP-SAT more: its
   start-up is hidden), so on two or more cores the portfolio is never worse than either part alone, up to the
   noise of a time limit (benchmarks/portfolio.py); on one core they share it. While LNS searches, CP-SAT's
   process runs at a lower priority (``BACKGROUND_NICE``: 8 CP-SAT threads on 2 cores would leave LNS a ninth of
   the machine), back to normal once LNS ends (where the system allows it). A part that meets the bound stops
   the other: LNS stops when CP-SAT has proved the optimum or its schedule meets the bound, CP-SAT is stopped
   when LNS's does.
3. The answer is the shortest schedule any of them produced (ties go to CP-SAT's proved one, so that a one-worker
   run that proves the optimum reproduces itself), with the largest lower bound any of them proved. Default time
   limit when None: 30 s. Options passed on: ``workers`` (CP-SAT threads, default 8), ``progress``. ``extra``:
   ``chosen`` (which part's schedule), ``ran`` (each part's makespan), ``intervals``, ``lns`` (LNS's counters).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, Task
from pslsched.core.timing import HelperTask, earliest_schedule
from pslsched.solvers.assignment import min_max_load_assignment
from pslsched.solvers.base import OPTIMAL_REL_TOL, SolverRun, register_run
from pslsched.solvers.baselines import balanced_assignment, random_assignment
from pslsched.solvers.cpsat_client import DEFAULT_WORKERS, MAX_INTERVALS, CpOutcome, CpWorker, count_intervals
from pslsched.solvers.list_scheduling import Rule, equid_rule, fcfs, list_schedule
from pslsched.solvers.lns import improve
from pslsched.solvers.start import Hint, Start, best_start, evaluate

SUMMARY = "portfolio: heuristics, then cpsat and lns side by side sharing starts and bounds, within the limit"
DEFAULT_TIME_LIMIT = 30.0
HEURISTICS = ("greedy", "random", "ed-fcfs", "equid")
MIN_SEARCH_S = 0.05  # below this much time left, the heuristics' best is the answer
MIN_CPSAT_LIMIT = 0.3  # below this limit CP-SAT's child process cannot start in time: LNS alone
HEURISTIC_SHARE = 0.4  # the bounds and the heuristics end by this share of the limit (they skip steps to)
CPSAT_SLACK = 0.02  # CP-SAT is asked to end this share of the limit early; stopped 4% later (as ``cpsat``)
LNS_SLACK = 0.03  # LNS ends this share of the limit early (as ``lns``)
JOIN_GRACE_S = 0.05  # CP-SAT's answer is awaited this long after its watchdog's deadline
# CP-SAT's process runs at this lower priority while LNS searches here: with 8 CP-SAT threads on 2 cores, LNS would
# otherwise get a ninth of the machine (the portfolio then lost to LNS alone); the idle CPU still goes to CP-SAT
BACKGROUND_NICE = 10


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


def start_from_orders(
    instance: Instance, assignment: np.ndarray, orders: list[list[HelperTask]], name: str
) -> Start:
    """An assignment and per-helper orders, re-timed (every task as early as possible)."""
    _, completion = earliest_schedule(instance, assignment, orders)
    return Start(assignment, orders, float(completion.max()), name)


def orders_of(instance: Instance, tasks: Sequence[Task]) -> list[list[HelperTask]]:
    """Per-helper task orders (by start time) of a list of tasks."""
    orders: list[list[HelperTask]] = [[] for _ in range(instance.num_helpers)]
    phase_rank = {"fwd": 0, "bwd": 1}
    for t in sorted(tasks, key=lambda t: (t.start, t.end, t.batch, phase_rank[t.phase])):
        orders[instance.helper_index[t.helper]].append((instance.client_index[t.client], t.phase, t.batch))
    return orders


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

    def run_all(self, ip_time: float, then: Callable[[], None] = lambda: None) -> None:
        """The constructive starts, then EquiD and ED-FCFS (one IP), ``then()``, greedy and random, while time
        allows."""
        instance, seed = self.run.instance, self.run.seed
        self.consider(best_start(instance, ip_time=0.0, deadline=self.deadline - self.step_s))
        ip_left = self.deadline - time.perf_counter() - 2 * self.step_s
        if self.fits() and ip_left > 0:
            assignment, _ = min_max_load_assignment(instance, time_limit=min(ip_time, ip_left))
            for name, rule in (("equid", equid_rule), ("ed-fcfs", fcfs)):
                if self.fits():
                    self.rule(name, assignment, rule)
        then()
        if self.fits():
            self.rule("greedy", balanced_assignment(instance), fcfs)
        if self.fits():
            self.rule("random", random_assignment(instance, np.random.default_rng(seed)), fcfs)


class _CpSatPart:
    """CP-SAT on the whole model in its child process (started before the bounds, so that its start-up overlaps
    them), solved from a thread while LNS searches in this process: solutions and the proof come back at the end,
    each improvement as it is found (``on_value``)."""

    def __init__(self, run: SolverRun, workers: int, on_value: Callable[[float, float], None]):
        self.run, self.workers, self.on_value = run, workers, on_value
        self.worker = CpWorker()
        self.deadline = 0.0
        _renice([self.worker.proc.pid], BACKGROUND_NICE)  # before CP-SAT starts its threads: they inherit it
        self.outcome: CpOutcome | None = None
        self.thread: threading.Thread | None = None
        self.stopped = False

    def start(self, hint: Hint | None, lower_ms: float) -> None:
        """Solve from ``hint`` with the known bound ``lower_ms`` until the run's end (the answer's re-timings kept)."""
        run = self.run
        end = run.started + (1 - CPSAT_SLACK) * run.time_limit - 2 * run.reserve()
        self.deadline = end + 2 * CPSAT_SLACK * run.time_limit  # then stopped (as ``cpsat``'s worker)
        kwargs = dict(
            hint=hint,
            time_limit=max(0.05, end - time.perf_counter()),
            deadline=self.deadline,
            workers=self.workers,
            seed=run.seed,
            lower_ms=lower_ms,
            t0=run.started,
            progress=self.on_value,
        )
        # the thread pickles its own shallow copy: this process may fill the instance's cached properties meanwhile
        kwargs["instance"] = copy.copy(run.instance)
        self.thread = threading.Thread(target=self._solve, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _solve(self, instance: Instance, **kwargs: Any) -> None:
        try:
            self.outcome = self.worker.solve(instance, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the other parts' answer stands
            self.outcome = CpOutcome("unknown", message=f"CP-SAT part failed: {type(exc).__name__}: {exc}")

    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def proved(self) -> bool:
        """Whether CP-SAT has ended with a proved optimum."""
        out = self.outcome if self.done() else None
        return out is not None and out.status == "optimal" and out.assignment is not None

    def foreground(self) -> None:
        """LNS has ended: CP-SAT's threads back to the normal priority (where the system allows it)."""
        pid = self.worker.proc.pid
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            tids = [pid]
        _renice(tids, 0)

    def stop(self) -> None:
        """Another part met the bound: CP-SAT has nothing left to find (its answer is dropped)."""
        if self.thread is not None and self.thread.is_alive():
            self.stopped = True
            self.worker.proc.kill()

    def result(self) -> Start | None:
        """CP-SAT's schedule, once the thread has ended (it ends by CP-SAT's limit or its watchdog)."""
        if self.thread is not None:  # waits as long as ``cpsat`` alone would: up to the watchdog's deadline
            self.thread.join(timeout=max(0.0, self.deadline - time.perf_counter()) + JOIN_GRACE_S)
        out = self.outcome if self.done() and not self.stopped else None
        if out is None or out.assignment is None or out.orders is None:
            return None
        _, completion = earliest_schedule(self.run.instance, out.assignment, out.orders)
        return Start(out.assignment, out.orders, float(completion.max()), "cpsat")

    def close(self) -> None:
        self.worker.close()


def _renice(ids: list[int], nice: int) -> None:
    """Best effort: the scheduling priority of some processes or threads (nothing where not permitted)."""
    for i in ids:
        try:
            os.setpriority(os.PRIO_PROCESS, i, nice)
        except (OSError, AttributeError):
            pass


@register_run("auto", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_auto(run: SolverRun, options: dict) -> SolveResult:
    """Best schedule of the portfolio described in the module docstring."""
    instance, limit, seed = run.instance, run.time_limit, run.seed
    workers = int(options.get("workers", DEFAULT_WORKERS))
    run.options = {"seed": seed, "workers": workers, **options}
    n = count_intervals(instance)
    lock = threading.Lock()
    best: list[Start] = []
    dual: list[float] = []

    def met() -> bool:
        """Whether the incumbent meets the best bound (nothing left to find)."""
        return bool(best) and best[0].makespan <= max(dual) * (1 + OPTIMAL_REL_TOL)

    def consider(start: Start | None) -> None:
        with lock:
            if start is not None and (not best or start.makespan < best[0].makespan):
                best[:] = [start]
                run.record(start.makespan, max(dual))

    def cp_value(_elapsed: float, makespan: float, bound: float) -> None:
        with lock:  # CP-SAT's improvements (in its thread) join the trajectory when they beat the incumbent
            if best and makespan < best[0].makespan:
                run.record(makespan, max([*dual, min(bound, makespan)]))

    cp_found: Start | None = None
    cp = _CpSatPart(run, workers, cp_value) if n <= MAX_INTERVALS and limit >= MIN_CPSAT_LIMIT else None
    try:
        bounds, refused = run.preflight()  # once, shared with every part through the cache
        if refused is not None:
            return refused
        # the parts are steered by the settled bound (a time-limited model's varies from run to run); the answer
        # reports the best one
        dual.append(bounds.settled)
        heuristics = _Heuristics(run, run.started + HEURISTIC_SHARE * limit - 2 * run.reserve(), consider)

        def start_cp() -> None:  # from the constructive starts and EquiD's assignment (as ``cpsat`` would)
            if cp is not None and not met() and run.search_left() - run.reserve() > MIN_SEARCH_S:
                cp.start((best[0].assignment, best[0].orders) if best else None, bounds.settled)

        heuristics.run_all(ip_time=max(0.2, min(10.0, 0.1 * limit)), then=start_cp)
        stats = _lns(run, best, consider, lambda: max(dual), cp, heuristics)
        if cp is not None:
            cp.foreground()
            if met():
                cp.stop()
            found = cp_found = cp.result()
            heuristics.ran["cpsat"] = None if found is None else found.makespan
            consider(found)
            if cp.outcome is not None and cp.outcome.bound is not None and not cp.stopped:
                dual.append(min(cp.outcome.bound, found.makespan) if found else cp.outcome.bound)
            if (
                found is not None
                and cp.proved()
                and found.makespan <= best[0].makespan * (1 + OPTIMAL_REL_TOL)
            ):
                best[:] = [found]  # ties go to the proved schedule: a one-worker run then reproduces itself
    finally:
        if cp is not None:
            cp.close()
    if not best:
        return run.no_schedule("no solver found a schedule")
    # CP-SAT's proof covers any schedule as short as its own (its bound is within its time resolution of it)
    proved = (
        cp is not None
        and cp.proved()
        and cp_found is not None
        and best[0].makespan <= cp_found.makespan * (1 + OPTIMAL_REL_TOL)
    )
    if not proved and not met():
        run.resume_bounds()  # time the parts left over (they stalled) goes to the bound
    chosen = best[0]
    tasks, completion = earliest_schedule(instance, chosen.assignment, chosen.orders)
    makespan = float(completion.max())
    extra = {"chosen": chosen.name, "ran": heuristics.ran, "intervals": n, "lns": stats}
    return run.finish(
        chosen.assignment, tasks, completion, dual=min(max(dual), makespan), proved=proved, extra=extra
    )


def _lns(
    run: SolverRun,
    best: list[Start],
    consider: Callable[[Start | None], None],
    bound: Callable[[], float],
    cp: _CpSatPart | None,
    heuristics: _Heuristics,
) -> dict:
    """LNS from the incumbent until its own stop rules, the run's end, CP-SAT's proof or the bound met."""
    deadline = run.started + (1 - LNS_SLACK) * run.time_limit - 2 * run.reserve()
    if not best or deadline - time.perf_counter() <= MIN_SEARCH_S:
        return {}
    start = best[0]
    value = [start.makespan]

    def on_improve(makespan: float) -> None:
        value[0] = makespan
        if makespan < best[0].makespan:
            run.record(makespan, bound())

    def stop() -> bool:
        return value[0] <= bound() * (1 + OPTIMAL_REL_TOL) or (cp is not None and cp.proved())

    if stop():
        return {}
    assignment, orders, stats = improve(
        run.instance,
        start,
        seed=run.seed,
        deadline=deadline,
        options={"seed": run.seed, "stop": stop},
        on_improve=on_improve,
    )
    found = start_from_orders(run.instance, assignment, orders, "lns")
    heuristics.ran["lns"] = found.makespan
    consider(found)
    return stats
