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
from pslsched.solvers.cpsat_client import (
    CpOutcome,
    fits_memory,
    memory_row,
    mixed_serial_upper_bound,
    serial_upper_bound,
)

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
        self.best: tuple[float, np.ndarray, list[list[HelperTask]], np.ndarray] | None = None
        self.trajectory: list[tuple[float, float | None, float]] = []

    def on_solution_callback(self) -> None:
        assignment, orders, cuts = self.model.read(self)
        instance = self.model.instance_for(cuts)
        if not self.model.memory_exact and not fits_memory(instance, assignment):
            return  # allowed by a relaxed memory row only
        _, completion = earliest_schedule(instance, assignment, orders)
        makespan = float(completion.max()) + self.model.download_ms(assignment, cuts)
        if self.best is None or makespan < self.best[0]:
            self.best = (makespan, assignment, orders, cuts)
            bound = self.model.bound_ms(self.best_objective_bound)
            elapsed = time.perf_counter() - self.t0
            self.trajectory.append((elapsed, makespan, bound))
            if self.progress is not None:
                self.progress(elapsed, makespan, bound)


class _Model:
    """Builds the CP-SAT model; ``allowed[j]`` lists client j's options ``(helper, cut)`` (helper -1 = local):
    ``cut`` indexes ``sources``, the instances of the candidate cuts (problem.md §1, "the cut as a decision";
    one source, the instance itself, without a cut choice)."""

    def __init__(
        self,
        instance: Instance,
        allowed: list[list[tuple[int, int]]],
        horizon_ms: float,
        sources: Sequence[Instance] | None = None,
        downs: Sequence[np.ndarray] | None = None,
    ):
        self.instance = instance
        self.sources = list(sources) if sources is not None else [instance]
        # with ``downs`` (per source: K x (H + 1) round-end download times, the last column for local training)
        # the objective is the makespan plus the longest download of the options chosen (problem.md §1, the round)
        self.downs = list(downs) if downs is not None else None
        k, nb = instance.num_clients, instance.batches
        s = self.scale = time_scale(horizon_ms)
        self.memory_exact = True
        m = self.cp = cp_model.CpModel()
        horizon = int(math.ceil(horizon_ms * s * (1 + 1e-9))) + 5 * k * nb + 1
        self.horizon = horizon

        def f(v: float) -> int:
            return int(math.floor(v * s))

        self.x: dict[tuple[int, int, int], cp_model.IntVar] = {}
        self.local: dict[tuple[int, int], cp_model.IntVar] = {}
        self.sf = [[m.new_int_var(0, horizon, f"sf{j}_{b}") for b in range(nb)] for j in range(k)]
        self.sb = [[m.new_int_var(0, horizon, f"sb{j}_{b}") for b in range(nb)] for j in range(k)]
        self.cmax = m.new_int_var(0, horizon, "cmax")
        self.const: dict[tuple[int, int, int], tuple[int, int, int, int, int, int]] = {}
        self.local_c: dict[tuple[int, int], int] = {}
        self.used: dict[int, cp_model.IntVar] = {}
        self.load_c: dict[int, tuple[int, dict[tuple[int, int], int]]] = {}
        self.lower = 0
        per_helper: dict[int, list] = {}
        load_terms: dict[int, list] = {}
        for j in range(k):
            lits = []
            for i, c in allowed[j]:
                src = self.sources[c]
                if i < 0:
                    lit = self.local[j, c] = m.new_bool_var(f"local{j}_{c}")
                    self.local_c[j, c] = f(nb * float(src.local[j]))
                    m.add(self.cmax >= self.local_c[j, c]).only_enforce_if(lit)
                    lits.append(lit)
                    continue
                lit = self.x[j, i, c] = m.new_bool_var(f"x{j}_{i}_{c}")
                lits.append(lit)
                r, p, d = src.release[j, i], src.fwd[j, i], src.delay[j, i]
                pb, t = src.bwd[j, i], src.tail[j, i]
                self.const[j, i, c] = (f(r), f(p), f(p + d), f(pb), f(pb + t + r), f(pb + t))
                for b in range(nb):
                    fi = m.new_optional_fixed_size_interval_var(self.sf[j][b], f(p), lit, f"F{j}_{i}_{c}_{b}")
                    bi = m.new_optional_fixed_size_interval_var(
                        self.sb[j][b], f(pb), lit, f"B{j}_{i}_{c}_{b}"
                    )
                    per_helper.setdefault(i, []).extend([fi, bi])
                    if b == 0:
                        m.add(self.sf[j][0] >= f(r)).only_enforce_if(lit)
                    else:
                        m.add(self.sf[j][b] >= self.sb[j][b - 1] + f(pb + t + r)).only_enforce_if(lit)
                    m.add(self.sb[j][b] >= self.sf[j][b] + f(p + d)).only_enforce_if(lit)
                m.add(self.cmax >= self.sb[j][nb - 1] + f(pb + t)).only_enforce_if(lit)
                load_terms.setdefault(i, []).append((j, c, lit))
            m.add_exactly_one(lits)
        for i, intervals in per_helper.items():
            m.add_no_overlap(intervals)
            members = load_terms[i]
            used = self.used[i] = m.new_bool_var(f"used{i}")
            for *_, lit in members:
                m.add_implication(lit, used)
            rmin = min(float(self.sources[c].release[j, i]) for j, c, _ in members)
            tmin = min(float(self.sources[c].tail[j, i]) for j, c, _ in members)
            head = f(rmin) + f(tmin)
            loads = {(j, c): f(nb * float(self.sources[c].load[j, i])) for j, c, _ in members}
            self.load_c[i] = (head, loads)
            m.add(self.cmax >= head * used + sum(loads[j, c] * lit for j, c, lit in members))
            demands = [float(self.sources[c].demand[j]) for j, c, _ in members]
            row = memory_row(demands, float(instance.capacity[i]))
            if row is not None:
                coefs, cap, exact = row
                self.memory_exact &= exact
                m.add(sum(w * lit for w, (*_, lit) in zip(coefs, members)) <= cap)
        self.down = None
        if self.downs is not None:
            top = max(f(float(np.nanmax(d))) for d in self.downs) + 1
            self.down = m.new_int_var(0, max(top, 1), "down")
            for (j, i, c), lit in self.x.items():
                m.add(self.down >= f(float(self.downs[c][j, i]))).only_enforce_if(lit)
            for (j, c), lit in self.local.items():
                m.add(self.down >= f(float(self.downs[c][j, -1]))).only_enforce_if(lit)
            m.minimize(self.cmax + self.down)
        else:
            m.minimize(self.cmax)
        self.resolution_ms = 5 * k * nb / s + (1 / s if self.downs is not None else 0.0)

    def download_ms(self, assignment: np.ndarray, cuts: np.ndarray) -> float:
        """The longest round-end download of a choice (0 without ``downs``)."""
        if self.downs is None:
            return 0.0
        return float(max(self.downs[int(c)][j, int(i)] for j, (i, c) in enumerate(zip(assignment, cuts))))

    def instance_for(self, cuts: np.ndarray) -> Instance:
        """The instance of a cut choice (each client's row from its cut's source)."""
        if len(self.sources) == 1:
            return self.instance
        return _compose(self.sources, cuts)

    def bound_ms(self, bound_units: float) -> float:
        """A CP-SAT objective bound in ms, rounded down."""
        return max(0.0, math.floor(bound_units) / self.scale * (1 - 1e-12))

    def hint(
        self, assignment: np.ndarray, orders: Sequence[Sequence[HelperTask]], cuts: np.ndarray | None = None
    ) -> None:
        """A complete hint from a feasible assignment, orders (and cut choice): the earliest schedule computed in
        the integer model's own units (so it satisfies every constraint exactly, whatever the float rounding)."""
        inst, nb = self.instance, self.instance.batches
        cuts = np.zeros(inst.num_clients, dtype=int) if cuts is None else np.asarray(cuts, dtype=int)
        sf = [[0] * nb for _ in range(inst.num_clients)]
        sb = [[0] * nb for _ in range(inst.num_clients)]
        cmax = self.lower
        for i, order in enumerate(orders):
            free = 0
            for j, phase, b in order:
                r, p, pd, pb, nxt, end = self.const[j, i, int(cuts[j])]
                if phase == "fwd":
                    ready = r if b == 0 else sb[j][b - 1] + nxt
                    sf[j][b] = max(ready, free)
                    free = sf[j][b] + p
                else:
                    sb[j][b] = max(sf[j][b] + pd, free)
                    free = sb[j][b] + pb
                    if b == nb - 1:
                        cmax = max(cmax, sb[j][b] + end)
        for (j, i, c), var in self.x.items():
            self.cp.add_hint(var, int(assignment[j] == i and cuts[j] == c))
        for (j, c), var in self.local.items():
            self.cp.add_hint(var, int(assignment[j] < 0 and cuts[j] == c))
            if assignment[j] < 0 and cuts[j] == c:
                cmax = max(cmax, self.local_c[j, c])
        for i, var in self.used.items():
            members = np.flatnonzero(assignment == i)
            self.cp.add_hint(var, int(len(members) > 0))
            if len(members):
                head, loads = self.load_c[i]
                cmax = max(cmax, head + sum(loads[int(j), int(cuts[j])] for j in members))
        for j in range(inst.num_clients):
            for b in range(nb):
                self.cp.add_hint(self.sf[j][b], sf[j][b])
                self.cp.add_hint(self.sb[j][b], sb[j][b])
        self.cp.add_hint(self.cmax, min(self.horizon, cmax))
        if self.down is not None:
            d = max(
                int(math.floor(float(self.downs[int(c)][j, int(i)]) * self.scale))
                for j, (i, c) in enumerate(zip(assignment, cuts))
            )
            self.cp.add_hint(self.down, d)

    def read(
        self, sol: cp_model.CpSolverSolutionCallback | cp_model.CpSolver
    ) -> tuple[np.ndarray, list, np.ndarray]:
        """Assignment, per-helper orders (by integer start) and cut choice of a solution."""
        inst = self.instance
        assignment = np.full(inst.num_clients, -1, dtype=int)
        cuts = np.zeros(inst.num_clients, dtype=int)
        for (j, i, c), var in self.x.items():
            if sol.boolean_value(var):
                assignment[j], cuts[j] = i, c
        for (j, c), var in self.local.items():
            if sol.boolean_value(var):
                cuts[j] = c
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
        return assignment, orders, cuts


def allowed_helpers(
    instance: Instance, fixed: np.ndarray | None = None, sources: Sequence[Instance] | None = None
) -> list[list[tuple[int, int]]]:
    """Each client's options ``(helper, cut)``: the helpers it fits at each source's cut (plus -1 where it may
    train locally), or its fixed helper (cut 0)."""
    if fixed is not None:
        return [[(int(i), 0)] for i in fixed]
    out = []
    for j in range(instance.num_clients):
        opts = []
        for c, src in enumerate(sources or [instance]):
            opts += [(int(i), c) for i in np.flatnonzero(src.fits[j])]
            if src.can_local[j]:
                opts.append((-1, c))
        out.append(opts)
    return out


def run_cpsat(
    instance: Instance,
    *,
    hint: tuple | None = None,
    fixed: np.ndarray | None = None,
    time_limit: float = 10.0,
    workers: int = 1,
    seed: int = 0,
    deterministic_limit: float | None = None,
    progress: Callable | None = None,
    lower_ms: float = 0.0,
    t0: float | None = None,
    log: bool = False,
    sources: Sequence[Instance] | None = None,
    downs: Sequence[np.ndarray] | None = None,
) -> CpOutcome:
    """Solve the CP-SAT model. ``fixed`` pins the assignment (sequencing only); ``lower_ms`` is a known valid
    lower bound on the makespan (added as ``cmax >= floor(lower_ms * scale)``). The hint (assignment, orders[,
    cuts]) must be feasible. ``sources``: the instances of candidate cuts, one chosen per client (``instance`` is
    then any of them; the outcome's ``cuts`` says which); ``downs`` adds each choice's longest download to the
    objective (the outcome's makespan and bound then include it). ``log``: CP-SAT's search log to stderr (never stdout: in
    the worker it carries the answers). ``time_limit`` covers building the model and the hint too."""
    begun = time.perf_counter()
    t0 = begun if t0 is None else t0
    allowed = allowed_helpers(instance, fixed, sources)
    if any(not a for a in allowed):
        return CpOutcome("infeasible", message="a client fits no helper and cannot train locally")
    # a serial schedule bounds every choice: with candidate cuts, each client's longest option over the cuts
    horizon = mixed_serial_upper_bound(sources) if sources else serial_upper_bound(instance)
    model_sources = list(sources) if sources else None
    if hint is not None:
        cuts = hint[2] if len(hint) > 2 else None
        inst = instance if model_sources is None else _compose(model_sources, cuts)
        _, completion = earliest_schedule(inst, hint[0], hint[1])
        horizon = min(horizon, float(completion.max()))
    if downs is not None:
        horizon += max(float(np.nanmax(d)) for d in downs)  # the objective adds a download
    model = _Model(instance, allowed, horizon, model_sources, downs)
    if lower_ms > 0:
        model.lower = min(model.horizon, int(math.floor(lower_ms * model.scale)))
        model.cp.add(model.cmax >= model.lower)
    if hint is not None:
        model.hint(*hint)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.01, float(time_limit) - (time.perf_counter() - begun))
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
        out.makespan, out.assignment, out.orders, cuts = recorder.best
        out.cuts = cuts if model_sources is not None else None
        proved = code == cp_model.OPTIMAL and out.bound is not None
        out.status = "optimal" if proved and out.makespan <= out.bound + model.resolution_ms else "feasible"
        out.message = f"CP-SAT {solver.status_name(code)}, resolution {model.resolution_ms:.3g} ms"
        return out
    out.message = f"CP-SAT {solver.status_name(code)}: no solution in {time_limit:.3g} s"
    return out


def _compose(sources: Sequence[Instance], cuts) -> Instance:
    from pslsched.core.cut_options import compose

    return compose(list(sources), np.zeros(sources[0].num_clients, dtype=int) if cuts is None else cuts)


def _log_to_stderr(line: str) -> None:
    import sys

    sys.stderr.write(line + "\n")
    sys.stderr.flush()
