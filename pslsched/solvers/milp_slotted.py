"""``milp-slotted``: the time-indexed ILP of Tirana et al. (problem.md §5, algorithms.md A4) with PuLP.

Binaries ``y[j,i]`` (assignment), ``l[j]`` (local training), ``x[i,j,t]`` / ``z[i,j,t]`` (forward / backward of j on
helper i in slot t); the makespan ``M`` in slots. Rows: one helper (or local) per client; ``sum_t x = f y`` and
``sum_t z = b y``; one task per helper and slot; memory; the backward of j may use slot t only once all of its
forward slots and ``d`` delay slots lie before t (``f z[t] <= X[t - d - 1]``, with ``X`` the running count of
forward slots, so the model stays linear in T); ``M >= (t + 1 + q) z[t]`` per client and slot; and two valid cuts
(``M`` is at least each client's slotted chain and each helper's first release + load + smallest tail).

The horizon ``T`` is the slotted makespan of the best start (shortest chain, balanced-greedy, a min-sum-chain
assignment), each helper scheduled by :func:`pslsched.solvers.slotted.plan_helper`; that start is handed to HiGHS as a MIP
start (CBC: PuLP's ``warmStart``). Instances with ``H * K * T`` above ``max_hkt`` are refused with status
``unknown``. The slotted answer becomes a continuous, non-preemptive schedule by keeping each helper's order of task
completions; its status is ``feasible`` unless it meets the continuous lower bound. The slotted makespan (and
the ILP's slotted bound) go to ``extra``: they bound nothing in the continuous model.
"""

from __future__ import annotations

import numpy as np
import pulp

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.slotted import (
    HelperPlan,
    Slotted,
    check_backend,
    check_slottable,
    column_costs,
    default_slot_ms,
    gap_assignment,
    highs_bound,
    plan_all,
    plan_from_slots,
    run_model,
    slotted_makespan,
    start_assignments,
    to_continuous,
    to_slots,
)

NAME = "milp-slotted"
SUMMARY = "time-indexed ILP of the slotted model (Tirana et al. 2024), PuLP + HiGHS/CBC; small instances"
DEFAULT_TIME_LIMIT = 30.0
DEFAULT_MAX_HKT = 40_000


@register_run(NAME, SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_milp_slotted(run: SolverRun, options: dict) -> SolveResult:
    """Options: ``slot_ms`` (default: the horizon of a simple start fits in 200 slots), ``backend`` ("highs" or
    "cbc"), ``max_hkt`` (refuse above this many helper x client x slot triples, default 40,000)."""
    instance, limit = run.instance, run.time_limit
    backend = check_backend(options.get("backend", "highs"))
    max_hkt = int(options.get("max_hkt", DEFAULT_MAX_HKT))
    run.options = {"seed": run.seed, **options, "backend": backend}
    _, refused = run.preflight(check_slottable(instance))
    if refused is not None:
        return refused
    slot_ms = run.options["slot_ms"] = float(options.get("slot_ms") or default_slot_ms(instance))
    sl = to_slots(instance, slot_ms)
    start = _best_start(instance, sl, backend, min(1.0, limit / 10))
    if start is None:
        return run.no_schedule("no memory-feasible start assignment found")
    start_assignment, start_plans, horizon = start
    hkt = instance.num_helpers * instance.num_clients * horizon
    if hkt > max_hkt:
        return run.no_schedule(
            f"too large for the time-indexed ILP: H*K*T = {instance.num_helpers}*{instance.num_clients}*"
            f"{horizon} = {hkt} > max_hkt {max_hkt}; pass a larger slot_ms or use cpsat/lns"
        )
    prob, read, size = _build(instance, sl, horizon, start_assignment, start_plans)
    # PuLP reads the solution back after HiGHS stops (~0.1 s on 30 clients, more on a loaded machine): keep a
    # tenth of the limit for it and the answer's packaging
    status = run_model(prob, backend, max(0.05, run.search_left() - 0.1 * (limit or 0.0)), warm=True)
    extra = {"slot_ms": slot_ms, "horizon_slots": horizon, "hkt": hkt, "binaries": size, "ilp_status": status}
    if status in ("optimal", "feasible"):
        assignment, plans = read()
        message = ""
    else:
        assignment, plans = start_assignment, start_plans
        message = f"the ILP found no solution in time ({status}); schedule from the slotted start"
    slotted = slotted_makespan(sl, assignment, plans)
    extra["slotted_makespan_ms"] = round(slotted * slot_ms, 9)
    dual = highs_bound(prob) if backend == "highs" else (slotted if status == "optimal" else None)
    extra["slotted_bound_ms"] = None if dual is None else round(float(np.ceil(dual - 1e-6)) * slot_ms, 9)
    tasks, completion = to_continuous(instance, assignment, plans)
    return run.finish(assignment, tasks, completion, extra=extra, message=message)


def _best_start(
    instance: Instance, sl: Slotted, backend: str, gap_time: float
) -> tuple[np.ndarray, list[HelperPlan], int] | None:
    """The start with the smallest slotted makespan: (assignment, plans, slotted makespan)."""
    candidates = start_assignments(instance)
    cost = column_costs(instance, sl.chain.astype(float), sl.local.astype(float))
    gap, _ = gap_assignment(instance, cost, time_limit=gap_time, backend=backend)
    if gap is not None:
        candidates.append(gap)
    best = None
    for assignment in candidates:
        plans = plan_all(sl, assignment, instance.num_helpers)
        value = slotted_makespan(sl, assignment, plans)
        if best is None or value < best[2]:
            best = (assignment, plans, value)
    return best


def _build(instance: Instance, sl: Slotted, horizon: int, start: np.ndarray, plans: list[HelperPlan]):
    """The PuLP model (with the start as initial values), a reader of (assignment, plans), the binary count."""
    k, h, big_t = instance.num_clients, instance.num_helpers, horizon
    prob = pulp.LpProblem("milp_slotted", pulp.LpMinimize)
    m = pulp.LpVariable("M", lowBound=0, upBound=big_t)
    prob += m
    y, x, z, cum = {}, {}, {}, {}
    for j in range(k):
        for i in range(h):
            if not sl.fits[j, i]:
                continue
            r, f, d, b, q = (int(a[j, i]) for a in (sl.release, sl.fwd, sl.delay, sl.bwd, sl.tail))
            if r + f + d + b + q > big_t:
                continue
            y[j, i] = pulp.LpVariable(f"y_{j}_{i}", cat=pulp.LpBinary)
            x[j, i] = {
                t: pulp.LpVariable(f"x_{i}_{j}_{t}", cat=pulp.LpBinary) for t in range(r, big_t - d - b - q)
            }
            z[j, i] = {
                t: pulp.LpVariable(f"z_{i}_{j}_{t}", cat=pulp.LpBinary) for t in range(r + f + d, big_t - q)
            }
            cum[j, i] = {t: pulp.LpVariable(f"X_{i}_{j}_{t}", lowBound=0, upBound=f) for t in x[j, i]}
    loc = {j: pulp.LpVariable(f"l_{j}", cat=pulp.LpBinary) for j in range(k) if 0 <= sl.local[j] <= big_t}
    for j in range(k):
        options = [y[j, i] for i in range(h) if (j, i) in y] + ([loc[j]] if j in loc else [])
        prob += pulp.lpSum(options) == 1
        chain = [(int(sl.chain[j, i]), y[j, i]) for i in range(h) if (j, i) in y]
        prob += m >= pulp.lpSum(c * v for c, v in chain) + (int(sl.local[j]) * loc[j] if j in loc else 0)
    per_slot: dict[tuple[int, int], list] = {}
    finish_rows: dict[tuple[int, int], list] = {}
    for (j, i), yv in y.items():
        f, d, b, q = (int(a[j, i]) for a in (sl.fwd, sl.delay, sl.bwd, sl.tail))
        prob += pulp.lpSum(x[j, i].values()) == f * yv
        prob += pulp.lpSum(z[j, i].values()) == b * yv
        prev = None
        for t, xv in x[j, i].items():
            prob += cum[j, i][t] == (prev if prev is not None else 0) + xv
            prev = cum[j, i][t]
            per_slot.setdefault((i, t), []).append(xv)
        first_x = min(x[j, i]) if x[j, i] else 0
        last_x = max(x[j, i]) if x[j, i] else -1
        for t, zv in z[j, i].items():
            before = min(t - d - 1, last_x)
            prob += f * zv <= (cum[j, i][before] if before >= first_x else 0)
            per_slot.setdefault((i, t), []).append(zv)
            finish_rows.setdefault((j, t), []).append((t + 1 + q) * zv)
    for vars_ in per_slot.values():
        if len(vars_) > 1:
            prob += pulp.lpSum(vars_) <= 1
    for terms in finish_rows.values():
        prob += m >= pulp.lpSum(terms)
    for i in range(h):
        members = [j for j in range(k) if (j, i) in y]
        if not members:
            continue
        prob += pulp.lpSum(float(instance.demand[j]) * y[j, i] for j in members) <= float(
            instance.capacity[i]
        )
        rmin = min(int(sl.release[j, i]) for j in members)
        qmin = min(int(sl.tail[j, i]) for j in members)
        load = pulp.lpSum(int(sl.fwd[j, i] + sl.bwd[j, i]) * y[j, i] for j in members)
        share = (rmin + qmin) / len(members)  # (rmin + qmin) counted only when the helper is used
        prob += m >= load + pulp.lpSum(share * y[j, i] for j in members)
    _set_start(sl, start, plans, m, y, x, z, cum, loc)
    size = len(y) + len(loc) + sum(len(v) for v in x.values()) + sum(len(v) for v in z.values())

    def read() -> tuple[np.ndarray, list[HelperPlan]]:
        assignment = np.full(k, -1, dtype=int)
        for (j, i), yv in y.items():
            if (yv.varValue or 0) > 0.5:
                assignment[j] = i
        plans_out = []
        for i in range(h):
            fwd = {
                j: [t for t, v in x[j, i].items() if (v.varValue or 0) > 0.5]
                for j in range(k)
                if assignment[j] == i
            }
            bwd = {
                j: [t for t, v in z[j, i].items() if (v.varValue or 0) > 0.5]
                for j in range(k)
                if assignment[j] == i
            }
            plans_out.append(plan_from_slots(sl, i, fwd, bwd))
        return assignment, plans_out

    return prob, read, size


def _set_start(sl, start, plans, m, y, x, z, cum, loc) -> None:
    """Initial values of every variable from the start's slotted plans (a MIP start)."""
    for var in [m, *y.values(), *loc.values()]:
        var.setInitialValue(0)
    for d in (*x.values(), *z.values(), *cum.values()):
        for var in d.values():
            var.setInitialValue(0)
    m.setInitialValue(slotted_makespan(sl, start, plans))
    for j, i in enumerate(start):
        if i < 0:
            loc[j].setInitialValue(1)
            continue
        y[j, i].setInitialValue(1)
        for phase, table in (("fwd", x), ("bwd", z)):
            segs = getattr(plans[i], phase)[j]
            for s, e in segs:
                for t in range(s, e):
                    table[j, i][t].setInitialValue(1)
        count = 0
        for t in sorted(x[j, i]):
            count += int(x[j, i][t].varValue)
            cum[j, i][t].setInitialValue(count)
