"""``milp``: a big-M MILP of the continuous, non-preemptive model (problem.md §1) with PuLP, for small instances.

Variables: ``x[j,i]`` (client j on helper i), ``y[j]`` (j trains locally), start times ``Sf[j,b]``, ``Sb[j,b]`` per
client and batch (one helper per client, so a start needs no helper index), the makespan ``C``, and one order
binary ``z[u,v]`` per pair of tasks of different clients. For every helper i both clients fit on:
``S_u + p_u(i) <= S_v + M (1 - z) + M (2 - x[j,i] - x[k,i])`` and the mirror with ``z``. ``M`` is the makespan of
the heuristic start, or of a serial schedule without one (every start and end lies in [0, M] once ``C <= M``), which keeps the relaxation tight.

Back ends: ``backend="highs"`` (default, in-process through highspy) or ``"cbc"``. MIP start: PuLP's HiGHS
interface has no ``warmStart``, so the start is passed with ``Highs.setSolution`` just before ``run`` (a small
subclass); with CBC it is PuLP's ``warmStart=True``. Reported bound: HiGHS's ``mip_dual_bound``; CBC through PuLP
reports none, so with CBC the bound is the MILP's value only when it is proved optimal. The final schedule is
re-timed exactly from the MILP's per-helper orders. Instances with more than ``MAX_ORDER_ROWS`` disjunctive rows
(about 25 clients on 2 helpers, 20 on 3) are refused with status ``unknown``: use ``cpsat``.
"""

from __future__ import annotations

import math
import time
import warnings
from itertools import combinations

import numpy as np
import pulp

from pslsched.base.errors import InputError
from pslsched.core.backend_log import c_stdout_redirected, verbose
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.timing import earliest_schedule
from pslsched.solvers.assignment import HighsWithStart, highs_dual_bound, highs_status
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.cpsat_client import serial_upper_bound
from pslsched.solvers.start import best_of, best_start

MAX_ORDER_ROWS = 6_000
SUMMARY = "big-M MILP (PuLP + HiGHS or CBC) of the continuous model, small instances; proved bound"
DEFAULT_TIME_LIMIT = 30.0


def order_rows(instance: Instance) -> int:
    """Number of big-M ordering rows the model would have."""
    fits = instance.fits.astype(int)
    common = fits @ fits.T
    nb = instance.batches
    return int(np.triu(common, 1).sum()) * (2 * nb) ** 2 * 2


@register_run("milp", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_milp(run: SolverRun, options: dict) -> SolveResult:
    """Exact MILP for small instances. Options: ``backend`` ("highs" or "cbc"), ``warm_start`` (default True)."""
    instance, limit, seed = run.instance, run.time_limit, run.seed
    backend = str(options.get("backend", "highs")).lower()
    if backend not in ("highs", "cbc"):
        raise InputError("backend", f"must be 'highs' or 'cbc', got {backend!r}")
    warm = bool(options.get("warm_start", True))
    run.options = {"seed": seed, "backend": backend, "warm_start": warm, **options}
    rows = order_rows(instance)
    too_large = f"too large for the big-M MILP ({rows} ordering rows > {MAX_ORDER_ROWS}); use cpsat"
    _, refused = run.preflight(too_large if rows > MAX_ORDER_ROWS else None)
    if refused is not None:
        return refused
    start = best_start(instance, ip_time=min(1.0, limit / 10))
    prob, read = _build(instance, start, warm)
    remaining = max(0.1, run.left())
    if backend == "highs":
        deadline = time.perf_counter() + remaining - run.reserve()  # PuLP's work counts (see HighsWithStart)
        solver = HighsWithStart(
            msg=False, timeLimit=remaining, threads=1, gapRel=0.0, random_seed=seed, deadline=deadline
        )
        prob.solve(solver)
        status = highs_status(prob)
        dual = highs_dual_bound(prob)
    else:
        # PuLP 3 deprecates its bundled CBC (the one installed here); CBC's log (only when verbose) to stderr
        with warnings.catch_warnings(), c_stdout_redirected():
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(
                msg=verbose(), timeLimit=remaining, threads=1, warmStart=warm, gapRel=0.0
            )
            prob.solve(solver)
        status = (
            "optimal"
            if prob.status == pulp.LpStatusOptimal and prob.sol_status == pulp.LpSolutionOptimal
            else ("feasible" if prob.sol_status in (1, 2) else "none")
        )
        dual = float(pulp.value(prob.objective)) if status == "optimal" else None
    candidates = [] if start is None else [(start.makespan, start.assignment, start.orders)]
    if status in ("optimal", "feasible"):
        assignment, orders = read()
        _, completion = earliest_schedule(instance, assignment, orders)
        candidates.insert(0, (float(completion.max()), assignment, orders))
    if not candidates:
        return run.no_schedule(f"HiGHS/CBC status {status}")
    makespan, assignment, orders = best_of(candidates)
    bound = None if dual is None else dual - 1e-7 * max(1.0, abs(dual))
    proved = status == "optimal" and dual is not None and makespan <= dual + 1e-6 * max(1.0, abs(dual))
    extra = {"milp_status": status, "order_rows": rows, "start": None if start is None else start.name}
    return run.finish_orders(assignment, orders, dual=bound, proved=proved, extra=extra)


def _build(instance: Instance, start, warm: bool):
    """The PuLP model and a function reading (assignment, orders) from its solution."""
    k, h, nb = instance.num_clients, instance.num_helpers, instance.batches
    big_m = float(start.makespan) if start is not None else serial_upper_bound(instance)
    prob = pulp.LpProblem("psl_makespan", pulp.LpMinimize)
    cmax = pulp.LpVariable("C", 0, big_m)
    x = {
        (j, i): pulp.LpVariable(f"x_{j}_{i}", cat=pulp.LpBinary)
        for j in range(k)
        for i in range(h)
        if instance.fits[j, i]
    }
    y = {j: pulp.LpVariable(f"y_{j}", cat=pulp.LpBinary) for j in range(k) if instance.can_local[j]}
    sf = {(j, b): pulp.LpVariable(f"sf_{j}_{b}", 0, big_m) for j in range(k) for b in range(nb)}
    sb = {(j, b): pulp.LpVariable(f"sb_{j}_{b}", 0, big_m) for j in range(k) for b in range(nb)}
    prob += cmax

    def on(j: int, values) -> pulp.LpAffineExpression:
        return pulp.lpSum(float(values[j, i]) * x[j, i] for i in range(h) if (j, i) in x)

    for j in range(k):
        prob += pulp.lpSum([x[j, i] for i in range(h) if (j, i) in x] + ([y[j]] if j in y else [])) == 1
        if j in y:
            prob += cmax >= nb * float(instance.local[j]) * y[j]
        prob += sf[j, 0] >= on(j, instance.release)
        for b in range(nb):
            prob += sb[j, b] >= sf[j, b] + on(j, instance.fwd + instance.delay)
            if b + 1 < nb:
                prob += sf[j, b + 1] >= sb[j, b] + on(j, instance.bwd + instance.tail + instance.release)
        prob += cmax >= sb[j, nb - 1] + on(j, instance.bwd + instance.tail)
    for i in range(h):
        members = [j for j in range(k) if (j, i) in x]
        if members:
            prob += pulp.lpSum(float(instance.demand[j]) * x[j, i] for j in members) <= float(
                instance.capacity[i]
            )
    tasks = [(j, ph, b) for j in range(k) for b in range(nb) for ph in (0, 1)]
    start_var = {(j, 0, b): sf[j, b] for j in range(k) for b in range(nb)}
    start_var.update({(j, 1, b): sb[j, b] for j in range(k) for b in range(nb)})
    length = (instance.fwd, instance.bwd)
    z = {}
    for u, v in combinations(tasks, 2):
        if u[0] == v[0]:
            continue
        common = [i for i in range(h) if (u[0], i) in x and (v[0], i) in x]
        if not common:
            continue
        zv = z[u, v] = pulp.LpVariable(f"z_{u[0]}_{u[1]}_{u[2]}_{v[0]}_{v[1]}_{v[2]}", cat=pulp.LpBinary)
        su, sv = start_var[u], start_var[v]
        for i in common:
            both = 2 - x[u[0], i] - x[v[0], i]
            prob += su + float(length[u[1]][u[0], i]) <= sv + big_m * (1 - zv) + big_m * both
            prob += sv + float(length[v[1]][v[0], i]) <= su + big_m * zv + big_m * both
    if warm and start is not None:
        _set_start(instance, start, x, y, sf, sb, cmax, z)

    def read():
        assignment = np.full(k, -1, dtype=int)
        for (j, i), var in x.items():
            if (var.varValue or 0.0) > 0.5:
                assignment[j] = i
        keyed = [[] for _ in range(h)]
        for j in range(k):
            if assignment[j] >= 0:
                for b in range(nb):
                    keyed[assignment[j]].append((sf[j, b].varValue or 0.0, b, 0, j))
                    keyed[assignment[j]].append((sb[j, b].varValue or 0.0, b, 1, j))
        orders = []
        for rows in keyed:
            rows.sort()
            orders.append([(j, "fwd" if ph == 0 else "bwd", b) for _, b, ph, j in rows])
        return assignment, orders

    return prob, read


def _set_start(instance: Instance, start, x, y, sf, sb, cmax, z) -> None:
    """Initial values of every variable from the heuristic schedule (a feasible MIP start)."""
    tasks, completion = earliest_schedule(instance, start.assignment, start.orders)
    times = {
        (instance.client_index[t.client], 0 if t.phase == "fwd" else 1, t.batch): (t.start, t.end)
        for t in tasks
    }
    for (j, i), var in x.items():
        var.setInitialValue(int(start.assignment[j] == i))
    for j, var in y.items():
        var.setInitialValue(int(start.assignment[j] < 0))
    for (j, b), var in sf.items():
        var.setInitialValue(times.get((j, 0, b), (0.0, 0.0))[0])
    for (j, b), var in sb.items():
        var.setInitialValue(times.get((j, 1, b), (0.0, 0.0))[0])
    cmax.setInitialValue(min(float(completion.max()), cmax.upBound))
    for (u, v), var in z.items():
        var.setInitialValue(int(times.get(u, (0.0, 0.0)) <= times.get(v, (0.0, 0.0))))
    if not math.isfinite(float(completion.max())):
        raise ValueError("the start schedule has no finite makespan")
