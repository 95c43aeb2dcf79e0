"""The CP-SAT model of problem.md §1 (assignment + sequencing), shared by the ``cpsat`` solver and LNS.

This module imports OR-Tools and runs only inside the worker process started by :mod:`pslsched.solvers.cpsat_client`
(OR-Tools and highspy bundle incompatible copies of ``libhighs.so.1``; see that module).

Time resolution. CP-SAT needs integers: every time constant ``c`` becomes ``floor(c * scale)`` where ``scale`` is a
power of ten chosen so that the horizon (the hint's makespan, else a serial schedule's) is 10^7..10^8 units
(``scale <= 10^6``, i.e. at most 1 ns per unit). Because floor(a + b) >= floor(a) + floor(b), flooring every real
schedule gives a solution of the integer model with objective <= floor(scale * makespan): the integer model is a
relaxation, so ``best_objective_bound / scale`` is a valid lower bound in ms. The schedule itself is never read
from the integer times: the per-helper orders of CP-SAT's solution are re-timed exactly with
:func:`pslsched.core.timing.earliest_schedule`, so the validator passes with float times. The re-timed makespan exceeds
the integer optimum by at most one unit per time constant on a critical path, so an ``OPTIMAL`` answer is optimal
up to ``resolution_ms = 5 * K * B / scale`` (reported; typically < 1e-5 ms relative 1e-7).

Memory. Per helper, the constraint sum(demand * x) <= capacity is made integer exactly where it can be
(:func:`pslsched.solvers.cpsat_client.memory_row`): every float is a dyadic rational, so the demands are integers on the grid
of their greatest common divisor ``g``; the left side is then a multiple of ``g`` and the capacity can be floored onto
that grid without changing which client sets fit. A helper that holds all the clients it may host gets no
constraint. Where the exact integers would not fit CP-SAT's 64-bit arithmetic (demands of very different
magnitudes), the row is a relaxation (demands rounded down, capacity up): CP-SAT's bound and infeasibility proofs
stay valid, and each solution it reports is checked against the float memory constraint and skipped if it breaks it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from ortools.sat.python import cp_model

from pslsched.core.instance import Instance
from pslsched.core.timing import HelperTask, earliest_schedule
from pslsched.solvers.cpsat_client import CpOutcome, fits_memory, memory_row, serial_upper_bound

RESOLUTION_UNITS = 1e8
MAX_SCALE = 1e6


def time_scale(horizon_ms: float) -> float:
    """Power of ten mapping the horizon to 10^7..10^8 integer units (at most MAX_SCALE units per ms)."""
    horizon_ms = max(horizon_ms, 1e-6)
    return float(min(MAX_SCALE, 10.0 ** math.floor(math.log10(RESOLUTION_UNITS / horizon_ms))))


class _Recorder(cp_model.CpSolverSolutionCallback):
    """Re-times each solution exactly, keeps the best and reports improvements."""

    def __init__(self, model: _Model, t0: float, progress: Callable | None):
        super().__init__()
        self.model, self.t0, self.progress = model, t0, progress
        self.best: tuple[float, np.ndarray, list[list[HelperTask]]] | None = None
        self.trajectory: list[tuple[float, float | None, float]] = []

    def on_solution_callback(self) -> None:
        assignment, orders = self.model.read(self)
        if not self.model.memory_exact and not fits_memory(self.model.instance, assignment):
            return  # allowed by a relaxed memory row only
        _, completion = earliest_schedule(self.model.instance, assignment, orders)
        makespan = float(completion.max())
        if self.best is None or makespan < self.best[0]:
            self.best = (makespan, assignment, orders)
            bound = self.model.bound_ms(self.best_objective_bound)
            elapsed = time.perf_counter() - self.t0
            self.trajectory.append((elapsed, makespan, bound))
            if self.progress is not None:
                self.progress(elapsed, makespan, bound)


class _Model:
    """Builds the CP-SAT model; ``allowed[j]`` lists the helpers client j may use (-1 = local)."""

    def __init__(self, instance: Instance, allowed: list[list[int]], horizon_ms: float):
        self.instance = instance
        k, nb = instance.num_clients, instance.batches
        s = self.scale = time_scale(horizon_ms)
        self.memory_exact = True
        m = self.cp = cp_model.CpModel()
        horizon = int(math.ceil(horizon_ms * s * (1 + 1e-9))) + 5 * k * nb + 1
        self.horizon = horizon

        def f(v: float) -> int:
            return int(math.floor(v * s))

        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        self.local: dict[int, cp_model.IntVar] = {}
        self.sf = [[m.new_int_var(0, horizon, f"sf{j}_{b}") for b in range(nb)] for j in range(k)]
        self.sb = [[m.new_int_var(0, horizon, f"sb{j}_{b}") for b in range(nb)] for j in range(k)]
        self.cmax = m.new_int_var(0, horizon, "cmax")
        self.const: dict[tuple[int, int], tuple[int, int, int, int, int, int]] = {}
        self.local_c: dict[int, int] = {}
        self.used: dict[int, cp_model.IntVar] = {}
        self.load_c: dict[int, tuple[int, dict[int, int]]] = {}
        self.lower = 0
        per_helper: dict[int, list] = {}
        load_terms: dict[int, list] = {}
        for j in range(k):
            lits = []
            for i in allowed[j]:
                if i < 0:
                    lit = self.local[j] = m.new_bool_var(f"local{j}")
                    self.local_c[j] = f(nb * float(instance.local[j]))
                    m.add(self.cmax >= self.local_c[j]).only_enforce_if(lit)
                    lits.append(lit)
                    continue
                lit = self.x[j, i] = m.new_bool_var(f"x{j}_{i}")
                lits.append(lit)
                r, p, d = instance.release[j, i], instance.fwd[j, i], instance.delay[j, i]
                pb, t = instance.bwd[j, i], instance.tail[j, i]
                self.const[j, i] = (f(r), f(p), f(p + d), f(pb), f(pb + t + r), f(pb + t))
                for b in range(nb):
                    fi = m.new_optional_fixed_size_interval_var(self.sf[j][b], f(p), lit, f"F{j}_{i}_{b}")
                    bi = m.new_optional_fixed_size_interval_var(self.sb[j][b], f(pb), lit, f"B{j}_{i}_{b}")
                    per_helper.setdefault(i, []).extend([fi, bi])
                    if b == 0:
                        m.add(self.sf[j][0] >= f(r)).only_enforce_if(lit)
                    else:
                        m.add(self.sf[j][b] >= self.sb[j][b - 1] + f(pb + t + r)).only_enforce_if(lit)
                    m.add(self.sb[j][b] >= self.sf[j][b] + f(p + d)).only_enforce_if(lit)
                m.add(self.cmax >= self.sb[j][nb - 1] + f(pb + t)).only_enforce_if(lit)
                load_terms.setdefault(i, []).append((j, lit))
            m.add_exactly_one(lits)
        for i, intervals in per_helper.items():
            m.add_no_overlap(intervals)
            members = load_terms[i]
            rows = [j for j, _ in members]
            used = self.used[i] = m.new_bool_var(f"used{i}")
            for _, lit in members:
                m.add_implication(lit, used)
            head = f(float(instance.release[rows, i].min())) + f(float(instance.tail[rows, i].min()))
            loads = {j: f(nb * float(instance.load[j, i])) for j in rows}
            self.load_c[i] = (head, loads)
            m.add(self.cmax >= head * used + sum(loads[j] * lit for j, lit in members))
            row = memory_row([float(instance.demand[j]) for j in rows], float(instance.capacity[i]))
            if row is not None:
                coefs, cap, exact = row
                self.memory_exact &= exact
                m.add(sum(c * lit for c, (_, lit) in zip(coefs, members)) <= cap)
        m.minimize(self.cmax)
        self.resolution_ms = 5 * k * nb / s

    def bound_ms(self, bound_units: float) -> float:
        """A CP-SAT objective bound in ms, rounded down."""
        return max(0.0, math.floor(bound_units) / self.scale * (1 - 1e-12))

    def hint(self, assignment: np.ndarray, orders: Sequence[Sequence[HelperTask]]) -> None:
        """A complete hint from a feasible assignment and orders: the earliest schedule computed in the integer
        model's own units (so it satisfies every constraint exactly, whatever the float rounding)."""
        inst, nb = self.instance, self.instance.batches
        sf = [[0] * nb for _ in range(inst.num_clients)]
        sb = [[0] * nb for _ in range(inst.num_clients)]
        cmax = self.lower
        for i, order in enumerate(orders):
            free = 0
            for j, phase, b in order:
                r, p, pd, pb, nxt, end = self.const[j, i]
                if phase == "fwd":
                    ready = r if b == 0 else sb[j][b - 1] + nxt
                    sf[j][b] = max(ready, free)
                    free = sf[j][b] + p
                else:
                    sb[j][b] = max(sf[j][b] + pd, free)
                    free = sb[j][b] + pb
                    if b == nb - 1:
                        cmax = max(cmax, sb[j][b] + end)
        for (j, i), var in self.x.items():
            self.cp.add_hint(var, int(assignment[j] == i))
        for j, var in self.local.items():
            self.cp.add_hint(var, int(assignment[j] < 0))
            if assignment[j] < 0:
                cmax = max(cmax, self.local_c[j])
        for i, var in self.used.items():
            members = np.flatnonzero(assignment == i)
            self.cp.add_hint(var, int(len(members) > 0))
            if len(members):
                head, loads = self.load_c[i]
                cmax = max(cmax, head + sum(loads[int(j)] for j in members))
        for j in range(inst.num_clients):
            for b in range(nb):
                self.cp.add_hint(self.sf[j][b], sf[j][b])
                self.cp.add_hint(self.sb[j][b], sb[j][b])
        self.cp.add_hint(self.cmax, min(self.horizon, cmax))

    def read(self, sol: cp_model.CpSolverSolutionCallback | cp_model.CpSolver) -> tuple[np.ndarray, list]:
        """Assignment and per-helper orders of a solution (orders by integer start)."""
        inst = self.instance
        assignment = np.full(inst.num_clients, -1, dtype=int)
        for (j, i), var in self.x.items():
            if sol.boolean_value(var):
                assignment[j] = i
        keyed: list[list[tuple]] = [[] for _ in range(inst.num_helpers)]
        for j in range(inst.num_clients):
            i = assignment[j]
            if i < 0:
                continue
            for b in range(inst.batches):
                keyed[i].append((sol.value(self.sf[j][b]), 0, b, j, "fwd"))
                keyed[i].append((sol.value(self.sb[j][b]), 1, b, j, "bwd"))
        orders = []
        for rows in keyed:
            rows.sort(key=lambda r: (r[0], r[2], r[1], r[3]))
            orders.append([(j, ph, b) for _, _, b, j, ph in rows])
        return assignment, orders


def allowed_helpers(instance: Instance, fixed: np.ndarray | None = None) -> list[list[int]]:
    """Each client's options: helpers it fits (plus -1 where it may train locally), or its fixed helper."""
    if fixed is not None:
        return [[int(i)] for i in fixed]
    out = []
    for j in range(instance.num_clients):
        opts = [int(i) for i in np.flatnonzero(instance.fits[j])]
        if instance.can_local[j]:
            opts.append(-1)
        out.append(opts)
    return out


def run_cpsat(
    instance: Instance,
    *,
    hint: tuple[np.ndarray, Sequence[Sequence[HelperTask]]] | None = None,
    fixed: np.ndarray | None = None,
    time_limit: float = 10.0,
    workers: int = 1,
    seed: int = 0,
    deterministic_limit: float | None = None,
    progress: Callable | None = None,
    lower_ms: float = 0.0,
    t0: float | None = None,
    log: bool = False,
) -> CpOutcome:
    """Solve the CP-SAT model. ``fixed`` pins the assignment (sequencing only); ``lower_ms`` is a known valid
    lower bound on the makespan (added as ``cmax >= floor(lower_ms * scale)``). The hint must be feasible.
    ``log``: CP-SAT's search log to stderr (never stdout: in the worker it carries the answers)."""
    t0 = time.perf_counter() if t0 is None else t0
    allowed = allowed_helpers(instance, fixed)
    if any(not a for a in allowed):
        return CpOutcome("infeasible", message="a client fits no helper and cannot train locally")
    horizon = serial_upper_bound(instance)
    if hint is not None:
        _, completion = earliest_schedule(instance, hint[0], hint[1])
        horizon = min(horizon, float(completion.max()))
    model = _Model(instance, allowed, horizon)
    if lower_ms > 0:
        model.lower = min(model.horizon, int(math.floor(lower_ms * model.scale)))
        model.cp.add(model.cmax >= model.lower)
    if hint is not None:
        model.hint(*hint)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.01, float(time_limit))
    params.num_workers = max(1, int(workers))
    params.random_seed = int(seed)
    if deterministic_limit is not None:
        params.max_deterministic_time = float(deterministic_limit)
    if log:
        params.log_search_progress = True
        params.log_to_stdout = False
        solver.log_callback = _log_to_stderr
    recorder = _Recorder(model, t0, progress)
    code = solver.solve(model.cp, recorder)
    out = CpOutcome("unknown", resolution_ms=model.resolution_ms, trajectory=recorder.trajectory)
    if code == cp_model.INFEASIBLE:  # the memory rows are exact or relaxations: a proof either way
        out.status = "infeasible" if fixed is None else "unknown"
        out.message = (
            "CP-SAT proved no memory-feasible assignment" if fixed is None else "CP-SAT found no solution"
        )
        return out
    if math.isfinite(solver.best_objective_bound):
        out.bound = model.bound_ms(solver.best_objective_bound)
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE) and recorder.best is not None:
        out.makespan, out.assignment, out.orders = recorder.best
        proved = code == cp_model.OPTIMAL and out.bound is not None
        out.status = "optimal" if proved and out.makespan <= out.bound + model.resolution_ms else "feasible"
        out.message = f"CP-SAT {solver.status_name(code)}, resolution {model.resolution_ms:.3g} ms"
        return out
    out.message = f"CP-SAT {solver.status_name(code)}: no solution in {time_limit:.3g} s"
    return out


def _log_to_stderr(line: str) -> None:
    import sys

    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def serve() -> None:
    """Worker loop: read pickled requests ``(instance, kwargs)`` from stdin, answer with pickled messages
    ``("progress", elapsed, makespan, bound)`` during the search and ``("done", CpOutcome)`` at the end.
    The answers go to a private copy of the stdout pipe; fd 1 itself is pointed at stderr, so that nothing
    OR-Tools might print can corrupt them (or reach the parent's stdout)."""
    import os
    import pickle
    import sys

    sys.stdout.flush()
    inp, out = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def send(msg) -> None:
        pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    while True:
        try:
            instance, kwargs = pickle.load(inp)
        except EOFError:
            return
        transit = max(0.0, time.time() - float(kwargs.pop("sent_at", time.time())))
        elapsed0 = float(kwargs.pop("elapsed0", 0.0)) + transit
        t0 = time.perf_counter() - elapsed0
        if "time_limit" in kwargs:
            kwargs["time_limit"] = max(0.05, float(kwargs["time_limit"]) - transit)
        wants_progress = bool(kwargs.pop("progress", False))

        def report(elapsed: float, makespan: float, bound: float) -> None:
            send(("progress", elapsed, makespan, bound))

        try:
            result = run_cpsat(instance, progress=report if wants_progress else None, t0=t0, **kwargs)
            send(("done", result))
        except Exception as exc:  # report, keep serving
            send(("error", f"{type(exc).__name__}: {exc}"))
