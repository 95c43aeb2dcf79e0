"""``lns``: constructive start + local search + CP-SAT large-neighbourhood search, for large instances.

1. Start: the best of several assignments (chain-aware LPT, greedy load, balanced, EquiD's IP when small), each
   helper sequenced by the best of four priority rules (:mod:`pslsched.solvers.sequencing`). Since EquiD's rule is one of
   them, the start is never worse than EquiD on the same assignment.
2. Local search on the critical helper (the one finishing last): move one of its clients to another helper with
   room (least loaded first) or to local training, or swap it with a client of another helper. Helpers are
   independent once the assignment is fixed, so a move re-evaluates only the two helpers it touches. A move is
   taken when both touched helpers end before the current makespan (the sorted vector of helper finishes
   decreases, so the search terminates).
3. When no move helps, CP-SAT re-solves a neighbourhood: the critical helper and one other (assignment
   and sequencing of their clients), or, when that is too big, the critical helper's sequence alone; with a
   complete hint and a deterministic-time limit, in one worker process kept for the whole search.
4. It stops after ``max_stalls`` neighbourhoods in a row that did not improve, after ``max_iters`` steps, or at the
   time limit (default 30 s). Everything (the bounds, the start, the search, the re-timed answer) is inside the
   limit; a search that stopped early gives up to twice the bounds' first budget of the time left to a second,
   longer run of the integer bound (:meth:`pslsched.solvers.base.SolverRun.resume_bounds`).

Determinism: candidates are drawn from ``numpy.random.default_rng(seed)`` and CP-SAT runs single-threaded with a
deterministic-time limit (``cp_dtime``), so with the same seed the search takes the same steps. The wall-clock
limit only decides where it stops: a run that ends by the stall or iteration limit is reproducible bit for bit,
one cut by the time limit may stop earlier on a slower machine. Options: ``max_iters``, ``max_stalls``, ``cp``
(bool, default True), ``cp_dtime`` (default 0.1), ``cp_max_intervals`` (default 200), ``progress``; ``stop`` (a
callable, checked with the deadline: ``auto`` stops the search once another part has proved the optimum).
"""

from __future__ import annotations

import time

import numpy as np

from pslsched.core.instance import MATRICES, Instance
from pslsched.core.result import SolveResult
from pslsched.core.timing import HelperTask
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.cpsat_client import CpWorker
from pslsched.solvers.sequencing import RULE_NAMES, HelperData, best_rule, order_finish
from pslsched.solvers.start import Start, best_start

SUMMARY = "constructive start + local search + CP-SAT neighbourhoods; scales to 10,000 clients"
DEFAULT_TIME_LIMIT = 30.0
WORKER_STARTUP_S = 0.8  # the CP-SAT child process: spawn + ortools import
LIMIT_SLACK = 0.03  # the search stops this share of the limit early
WORKER_GRACE_S = 0.1  # a neighbourhood's CP-SAT still busy this long after the deadline is stopped
EPS = 1e-9


class _State:
    """Assignment, per-helper members, orders and finish times, with incremental updates."""

    def __init__(self, instance: Instance, start: Start):
        self.inst = instance
        self.assignment = start.assignment.copy()
        h = instance.num_helpers
        self.members = [np.flatnonzero(self.assignment == i).tolist() for i in range(h)]
        self.orders = [list(o) for o in start.orders]
        self._data: dict[int, HelperData] = {}
        self.finish = np.array([order_finish(self.data(i), self.orders[i]) for i in range(h)])
        used = np.zeros(h)
        np.add.at(used, self.assignment[self.assignment >= 0], instance.demand[self.assignment >= 0])
        self.free = instance.capacity - used
        nb = instance.batches
        self.local_time = (
            nb * np.nan_to_num(instance.local, nan=np.inf) if instance.local is not None else None
        )
        self.version = 0

    def data(self, i: int) -> HelperData:
        if i not in self._data:
            self._data[i] = HelperData(self.inst, i)
        return self._data[i]

    def local_max(self) -> float:
        if self.local_time is None or not (self.assignment < 0).any():
            return 0.0
        return float(self.local_time[self.assignment < 0].max())

    def makespan(self) -> float:
        return max(float(self.finish.max(initial=0.0)), self.local_max())

    def set_helper(self, i: int, members: list[int], order: list[HelperTask], value: float) -> None:
        for j in members:
            if self.assignment[j] != i:
                old = self.assignment[j]
                if old >= 0:
                    self.free[old] += self.inst.demand[j]
                self.free[i] -= self.inst.demand[j]
                self.assignment[j] = i
        self.members[i] = list(members)
        self.orders[i] = order
        self.finish[i] = value
        self.version += 1

    def set_local(self, j: int) -> None:
        old = self.assignment[j]
        self.free[old] += self.inst.demand[j]
        self.assignment[j] = -1
        self.version += 1


class _Search:
    def __init__(self, instance: Instance, state: _State, rng, deadline: float, options: dict):
        self.inst, self.s, self.rng, self.deadline = instance, state, rng, deadline
        self.rules = RULE_NAMES
        self.n_clients = int(options.get("move_clients", 12))
        self.n_targets = int(options.get("move_targets", 6))
        self.cp = bool(options.get("cp", True))
        self.cp_dtime = float(options.get("cp_dtime", 0.1))
        self.cp_max = int(options.get("cp_max_intervals", 200))
        self.seed = int(options.get("seed", 0))
        self.stop = options.get("stop")  # a callable: True when another part has made the search pointless
        self.worker: CpWorker | None = None
        nb = instance.batches
        self.chain = np.where(instance.fits, nb * np.nan_to_num(instance.chain), np.inf)
        self.load = np.where(instance.fits, nb * np.nan_to_num(instance.load), np.inf)

    def out_of_time(self) -> bool:
        return time.perf_counter() >= self.deadline or (callable(self.stop) and bool(self.stop()))

    def targets(self, c: int) -> list[int]:
        order = np.argsort(self.s.finish, kind="stable")
        return [int(t) for t in order if t != c]

    def try_moves(self, c: int) -> bool:
        s, inst = self.s, self.inst
        limit = s.finish[c] * (1 - EPS)
        members = s.members[c]
        cands = [members[k] for k in self.rng.permutation(len(members))[: self.n_clients]]
        targets = self.targets(c)
        for j in cands:
            rest = [m for m in members if m != j]
            val_c, ord_c, _ = best_rule(s.data(c), rest, self.rules)
            if val_c >= limit:
                continue
            if s.local_time is not None and s.local_time[j] < limit:
                s.set_helper(c, rest, ord_c, val_c)
                s.set_local(j)
                return True
            tried = 0
            for t in targets:
                if not inst.fits[j, t] or inst.demand[j] > s.free[t] + 1e-9 or self.chain[j, t] >= limit:
                    continue
                if s.finish[t] >= limit:
                    break
                val_t, ord_t, _ = best_rule(s.data(t), s.members[t] + [j], self.rules)
                if val_t < limit:
                    s.set_helper(c, rest, ord_c, val_c)
                    s.set_helper(t, s.members[t] + [j], ord_t, val_t)
                    return True
                tried += 1
                if tried >= self.n_targets:
                    break
        return False

    def swap_partners(self, j: int, c: int, t: int, others: list[int], slack: float) -> list[int]:
        """Up to 3 clients of helper t worth swapping with j of the critical helper c: those whose exchange
        lowers c's load and raises t's by less than the slack, best balanced first; then 2 random ones."""
        if not others:
            return []
        arr = np.asarray(others)
        gain_c = self.load[j, c] - self.load[arr, c]
        rise_t = self.load[j, t] - self.load[arr, t]
        score = np.minimum(gain_c, slack - rise_t)
        score = np.where(np.isfinite(score), score, -np.inf)
        good = [int(arr[k]) for k in np.argsort(-score, kind="stable")[:3] if score[k] > 0]
        rand = [int(arr[k]) for k in self.rng.permutation(len(arr))[:2]]
        return good + [m for m in rand if m not in good]

    def try_swaps(self, c: int) -> bool:
        s, inst = self.s, self.inst
        limit = s.finish[c] * (1 - EPS)
        members = s.members[c]
        cands = [members[k] for k in self.rng.permutation(len(members))[: max(1, self.n_clients // 2)]]
        targets = self.targets(c)[: self.n_targets]
        for j in cands:
            for t in targets:
                if not inst.fits[j, t] or s.finish[t] >= limit:
                    continue
                others = s.members[t]
                picks = self.swap_partners(j, c, t, others, float(s.finish[c] - s.finish[t]))
                for m in picks:
                    if not inst.fits[m, c]:
                        continue
                    if inst.demand[j] - inst.demand[m] > s.free[t] + 1e-9:
                        continue
                    if inst.demand[m] - inst.demand[j] > s.free[c] + 1e-9:
                        continue
                    new_c = [x for x in members if x != j] + [m]
                    val_c, ord_c, _ = best_rule(s.data(c), new_c, self.rules)
                    if val_c >= limit:
                        continue
                    new_t = [x for x in others if x != m] + [j]
                    val_t, ord_t, _ = best_rule(s.data(t), new_t, self.rules)
                    if val_t < limit:
                        s.free[c] += inst.demand[j] - inst.demand[m]
                        s.free[t] += inst.demand[m] - inst.demand[j]
                        s.assignment[j], s.assignment[m] = t, c
                        s.set_helper(c, new_c, ord_c, val_c)
                        s.set_helper(t, new_t, ord_t, val_t)
                        return True
        return False

    def try_cp(self, c: int, step: int) -> bool:
        """Re-solve the critical helper with up to two others by CP-SAT (or its sequence alone)."""
        if not self.cp:
            return False
        s, inst = self.s, self.inst
        nb = inst.batches
        pool = [t for t in self.targets(c) if s.finish[t] < s.finish[c]]
        pool = pool[: max(2, len(pool) // 2)]
        extra = [pool[k] for k in self.rng.permutation(len(pool))[:1]] if pool else []
        for helpers in ([c, *extra], [c]):
            clients = sorted(j for i in helpers for j in s.members[i])
            sub_fits = inst.fits[np.ix_(clients, helpers)]
            fixed = len(helpers) == 1
            size = 2 * nb * (len(clients) if fixed else int(sub_fits.sum()))
            if size <= self.cp_max and clients:
                return self._solve_sub(c, helpers, clients, fixed, step)
        return False

    def _solve_sub(self, c: int, helpers: list[int], clients: list[int], fixed: bool, step: int) -> bool:
        s, inst = self.s, self.inst
        sub = sub_instance(inst, clients, helpers)
        pos = {j: k for k, j in enumerate(clients)}
        hpos = {i: k for k, i in enumerate(helpers)}
        assign = np.array([hpos[s.assignment[j]] for j in clients], dtype=int)
        orders = [[(pos[j], ph, b) for j, ph, b in s.orders[i]] for i in helpers]
        remaining = self.deadline - time.perf_counter()
        # the CP-SAT child process takes most of a second to start: not worth it near the deadline
        if remaining <= (0.2 if self.worker is not None else WORKER_STARTUP_S):
            return False
        if self.worker is None:
            self.worker = CpWorker()
        out = self.worker.solve(
            sub,
            hint=(assign, orders),
            fixed=assign if fixed else None,
            time_limit=min(remaining, 10.0),
            workers=1,
            seed=self.seed + step,
            deterministic_limit=self.cp_dtime,
            deadline=self.deadline + WORKER_GRACE_S,
        )
        limit = s.finish[c] * (1 - EPS)
        if out.assignment is None or out.makespan is None or out.makespan >= limit:
            return False
        for k, i in enumerate(helpers):
            members = [clients[q] for q in np.flatnonzero(out.assignment == k)]
            order = [(clients[q], ph, b) for q, ph, b in out.orders[k]]
            s.set_helper(i, members, order, order_finish(s.data(i), order))
        return True

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def sub_instance(inst: Instance, clients: list[int], helpers: list[int]) -> Instance:
    """The instance restricted to some clients and helpers (no local option: those clients stay on helpers)."""
    grid = np.ix_(clients, helpers)
    return Instance(
        name=f"{inst.name}-sub",
        clients=tuple(inst.clients[j] for j in clients),
        helpers=tuple(inst.helpers[i] for i in helpers),
        demand=inst.demand[clients],
        capacity=inst.capacity[helpers],
        batches=inst.batches,
        **{m: getattr(inst, m)[grid] for m in MATRICES},
    )


def improve(
    instance: Instance,
    start: Start,
    *,
    seed: int,
    deadline: float,
    options: dict,
    on_improve=None,
) -> tuple[np.ndarray, list[list[HelperTask]], dict]:
    """Run the local search and LNS from ``start`` until a stop rule; returns (assignment, orders, stats)."""
    state = _State(instance, start)
    search = _Search(instance, state, np.random.default_rng(seed), deadline, {**options, "seed": seed})
    max_iters = int(options.get("max_iters", 100_000))
    max_stalls = int(options.get("max_stalls", max(10, 2 * instance.num_helpers)))
    stats = {"iters": 0, "moves": 0, "swaps": 0, "cp": 0, "cp_tries": 0, "stop": "stalls"}
    best = state.makespan()
    stalls, tried_version = 0, -1
    try:
        while True:
            if stats["iters"] >= max_iters:
                stats["stop"] = "iterations"
                break
            if search.out_of_time():
                stats["stop"] = "time"
                break
            stats["iters"] += 1
            c = int(np.argmax(state.finish)) if instance.num_helpers else -1
            if c < 0 or state.finish[c] <= state.local_max():
                stats["stop"] = "local-bound"
                break
            improved = False
            exhausted = tried_version == state.version and len(state.members[c]) <= search.n_clients
            if not exhausted:
                if search.try_moves(c):
                    stats["moves"] += 1
                    improved = True
                elif search.try_swaps(c):
                    stats["swaps"] += 1
                    improved = True
                else:
                    tried_version = state.version
            if not improved:
                stats["cp_tries"] += 1
                if search.try_cp(c, stats["iters"]):
                    stats["cp"] += 1
                    improved = True
            if improved:
                stalls = 0
                value = state.makespan()
                if value < best and on_improve is not None:
                    on_improve(value)
                best = min(best, value)
            else:
                stalls += 1
                if stalls >= max_stalls:
                    break
    finally:
        search.close()
    return state.assignment, state.orders, stats


@register_run("lns", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_lns(run: SolverRun, options: dict) -> SolveResult:
    """Large-neighbourhood search (see the module docstring for the stop rules and determinism)."""
    instance, limit = run.instance, run.time_limit
    run.options = {"seed": run.seed, **options}
    bounds, refused = run.preflight()
    if refused is not None:
        return refused
    # the start, the search and the answer's re-timing all inside the limit (the search ends a little early: a
    # step in progress, the CP-SAT worker's exit)
    deadline = run.started + (1 - LIMIT_SLACK) * limit - run.reserve()
    start = options.get("start") or best_start(
        instance, ip_time=min(2.0, limit / 10), deadline=run.started + limit / 3
    )
    if start is None:
        return run.no_schedule("no constructive start found room")
    run.record(start.makespan, bounds.best)
    assignment, orders, stats = improve(
        instance,
        start,
        seed=run.seed,
        deadline=deadline,
        options=run.options,
        on_improve=lambda value: run.record(value, bounds.best),
    )
    run.options.pop("start", None)
    if stats["stop"] != "time":  # the search ended early: the rest of the time goes to the bound
        run.resume_bounds()
    extra = {"start": start.name, "start_makespan": start.makespan, **stats}
    return run.finish_orders(assignment, orders, extra=extra)
