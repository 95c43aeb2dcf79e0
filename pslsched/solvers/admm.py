"""``admm``: the ADMM decomposition of Tirana et al. (INFOCOM 2024, algorithms.md A3) on the slotted model.

Two copies of the assignment are kept apart and driven to agree: ``u`` (the scheduling step's, no memory limits,
each client's forward job whole on one helper) and ``y`` (the assignment step's, memory-feasible), coupled by
``u = y`` with duals ``lam`` and an L1 penalty ``rho`` (350 as in their code; here costs are in ms). Columns are
the helpers plus, where clients have it, local training. Starting from ``y`` = each client on the helper with its
shortest chain, every iteration does

1. *scheduling step* (``y``, ``lam`` fixed): a sweep over the clients in index order; client j leaves its helper in
   ``u`` and joins the column minimising ``cost[j][c] + lam[j][c] + rho * (1 - 2 y[j][c])``, where ``cost[j][c]``
   is the slotted makespan of helper c with j added. Each helper's schedule is solved exactly stage by stage:
   forwards by Jackson's preemptive rule (largest ``delay + bwd + tail`` first, preempting at slot boundaries),
   then backwards in the free slots by the same rule (largest ``tail`` first) - :func:`pslsched.solvers.slotted.plan_helper`;
2. *assignment step* (``u``, ``lam`` fixed): the memory-constrained MILP
   ``min sum -lam[j][c] y[j][c] + rho |u[j][c] - y[j][c]|`` (linear for binaries), PuLP + HiGHS or CBC, with a
   tie-break below ``rho`` towards cheap columns;
3. *dual step*: ``lam += rho (u - y)``.

It stops when ``y`` repeats and ``u = y`` (consensus), after ``max_iter`` iterations, or at the time limit. Each
``y`` is scheduled per helper as above and converted to a continuous, non-preemptive schedule (each helper's order
of slotted completions, re-timed exactly); the best one by continuous makespan is returned. The slotted makespan of
that assignment is reported in ``extra`` and bounds nothing in the continuous model.
"""

from __future__ import annotations

import numpy as np

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.slotted import (
    Slotted,
    check_backend,
    check_slottable,
    default_slot_ms,
    gap_assignment,
    plan_all,
    plan_helper,
    shortest_chain,
    slotted_makespan,
    to_continuous,
    to_slots,
)

NAME = "admm"
SUMMARY = "ADMM decomposition on the slotted model (Tirana et al. 2024), Jackson per helper, PuLP assignment"
DEFAULT_TIME_LIMIT = 60.0
DEFAULT_RHO = 350.0
DEFAULT_MAX_ITER = 20


@register_run(NAME, SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_admm(run: SolverRun, options: dict) -> SolveResult:
    """Options: ``rho`` (L1 penalty in ms, default 350), ``max_iter`` (default 20), ``slot_ms`` (default as for
    milp-slotted: a simple start ends within 200 slots), ``backend`` ("highs" or "cbc")."""
    instance = run.instance
    backend = check_backend(options.get("backend", "highs"))
    rho = float(options.get("rho", DEFAULT_RHO))
    max_iter = int(options.get("max_iter", DEFAULT_MAX_ITER))
    if not rho > 0:
        raise InputError("rho", f"must be a positive number, got {rho!r}")
    if max_iter < 1:
        raise InputError("max_iter", f"must be an integer >= 1, got {max_iter!r}")
    run.options = {"seed": run.seed, **options, "backend": backend, "rho": rho, "max_iter": max_iter}
    bounds, refused = run.preflight(check_slottable(instance))
    if refused is not None:
        return refused
    slot_ms = run.options["slot_ms"] = float(options.get("slot_ms") or default_slot_ms(instance))
    sl = to_slots(instance, slot_ms)
    allowed = _allowed(instance)
    cols = allowed.shape[1]
    y = _onehot(shortest_chain(instance), cols)
    lam = np.zeros((instance.num_clients, cols))
    best = None  # (makespan, slotted, assignment, tasks, completion)
    history = []
    converged, iterations, stop = False, 0, "max_iter"
    step_s = 0.0  # the longest iteration so far: one more is started only if it would end within the limit
    for it in range(1, max_iter + 1):
        if best is not None and run.search_left() < step_s:
            stop = "time limit"
            break
        began = run.elapsed()
        u = _scheduling_step(instance, sl, allowed, y, lam, rho)
        y_new, status = _assignment_step(
            instance, allowed, u, lam, rho, sl, run.search_left() - step_s / 2, backend
        )
        if y_new is None:
            stop = f"assignment step: {status}"
            break
        iterations = it
        lam += rho * (u - y_new)
        assignment = _to_assignment(y_new)
        plans = plan_all(sl, assignment, instance.num_helpers)
        tasks, completion = to_continuous(instance, assignment, plans)
        makespan = float(completion.max())
        slotted = slotted_makespan(sl, assignment, plans)
        history.append(
            {
                "iteration": it,
                "makespan_ms": makespan,
                "slotted_ms": round(slotted * slot_ms, 9),
                "disagreement": int(np.abs(u - y_new).sum() // 2),
            }
        )
        if best is None or (makespan, slotted) < (best[0], best[1]):
            best = (makespan, slotted, assignment, tasks, completion)
            run.record(makespan, bounds.best, notify=False)
        if np.array_equal(y_new, y) and np.array_equal(u, y_new):
            converged, stop = True, "converged"
            y = y_new
            break
        y = y_new
        step_s = max(step_s, run.elapsed() - began)
    if best is None:
        return run.no_schedule(f"ADMM found no assignment ({stop})")
    _, slotted, assignment, tasks, completion = best
    extra = {
        "slot_ms": slot_ms,
        "slotted_makespan_ms": round(slotted * slot_ms, 9),
        "iterations": iterations,
        "converged": converged,
        "stop": stop,
        "history": history,
    }
    return run.finish(assignment, tasks, completion, extra=extra)


def _allowed(instance: Instance) -> np.ndarray:
    """K x (H + 1) bool: helper columns where the client fits alone, last column = local training."""
    return np.column_stack([instance.fits, instance.can_local])


def _onehot(assignment: np.ndarray, cols: int) -> np.ndarray:
    out = np.zeros((len(assignment), cols))
    out[np.arange(len(assignment)), np.where(assignment < 0, cols - 1, assignment)] = 1
    return out


def _to_assignment(y: np.ndarray) -> np.ndarray:
    col = y.argmax(axis=1)
    return np.where(col == y.shape[1] - 1, -1, col)


def _scheduling_step(
    instance: Instance, sl: Slotted, allowed: np.ndarray, y: np.ndarray, lam: np.ndarray, rho: float
) -> np.ndarray:
    """One Gauss-Seidel sweep of best responses on the scheduling copy ``u`` (starting at ``y``)."""
    h = instance.num_helpers
    u_assign = _to_assignment(y)
    members = [set(np.flatnonzero(u_assign == i).tolist()) for i in range(h)]
    for j in range(instance.num_clients):
        if u_assign[j] >= 0:
            members[u_assign[j]].discard(j)
        scores = np.full(allowed.shape[1], np.inf)
        for c in np.flatnonzero(allowed[j]):
            if c < h:
                cost = plan_helper(sl, int(c), sorted(members[c] | {j})).value
            else:
                cost = int(sl.local[j])
            scores[c] = cost * sl.slot_ms + lam[j, c] + rho * (1 - 2 * y[j, c])
        c = int(np.argmin(scores))  # ties: lowest column
        u_assign[j] = -1 if c == h else c
        if c < h:
            members[c].add(j)
    return _onehot(u_assign, allowed.shape[1])


def _assignment_step(instance, allowed, u, lam, rho, sl, time_left, backend) -> tuple[np.ndarray | None, str]:
    """The memory-constrained assignment MILP of the augmented Lagrangian (constant terms dropped)."""
    chain = np.column_stack([np.where(sl.fits, sl.chain, 0), np.maximum(sl.local, 0)]).astype(float)
    scale = chain[allowed].max() if allowed.any() else 1.0
    tie = rho / (2 * instance.num_clients + 2) * chain / max(scale, 1.0)  # sums to < rho: breaks ties only
    cost = np.where(allowed, -lam + rho * (1 - 2 * u) + tie, np.inf)
    assignment, status = gap_assignment(instance, cost, time_limit=max(0.1, time_left), backend=backend)
    if assignment is None:
        return None, status
    return _onehot(assignment, allowed.shape[1]), status
