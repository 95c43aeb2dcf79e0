"""Per-client cut choice solved exactly: one CP-SAT model whose options are (cut, helper) pairs per client.

problem.md §1 ("the cut as a decision"): given the instances of the candidate cuts (same clients, helpers and
links; row j of instance c is client j at cut c), each client takes one cut and one helper. The model of
:mod:`pslsched.solvers.cpsat_model` with ``sources`` has an optional interval pair per (client, cut, helper); the
memory rows add each option's own demand. It runs on the instances the solvers see (exchange folded, shared body
reduced), so its bound, plus the averaging and the least downloads over the cuts, bounds the round of every mix.
"""

from __future__ import annotations

import time

import numpy as np

from pslsched.core.cut_options import compose, envelope
from pslsched.core.exchange import round_bound
from pslsched.core.instance import Instance
from pslsched.core.reduction import answer_for, assignment_and_orders, solver_view
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule
from pslsched.core.timing import earliest_schedule
from pslsched.solvers.base import assignment_names
from pslsched.solvers.cpsat_client import MAX_INTERVALS, run_cpsat

MIN_MIX_S = 0.6  # with less time, no mixed model: CP-SAT's worker process alone takes ~0.3-0.5 s to start
LIMIT_SLACK = 0.02  # CP-SAT is asked to end this share of the limit early; stopped this share after it
RESOLUTION_REL = 1e-5  # CP-SAT's integer times: an OPTIMAL this close to its bound is the optimum


def mix_intervals(instances: list[Instance]) -> int:
    """Optional interval variables of the mixed model."""
    return sum(int(x.fits.sum()) * 2 * x.batches for x in instances)


def solve_mix(
    instances: list[Instance],
    start: np.ndarray,
    start_result: SolveResult,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
) -> tuple[np.ndarray, SolveResult, float] | None:
    """The best mix CP-SAT finds from the mix ``start`` (cut indices) and its answer ``start_result`` (on
    ``compose(instances, start)``): the cut indices, the answer on their composition (a bound valid for that
    mix), and a bound on the round of every mix. None when the model is too large or finds nothing."""
    t0 = time.perf_counter()
    if time_limit < MIN_MIX_S:
        return None  # CP-SAT's process would not even start in time
    views = [solver_view(x) for x in instances]
    if mix_intervals(views) > MAX_INTERVALS or start_result.schedule is None:
        return None
    hint_view = compose(views, start)
    assign, orders = assignment_and_orders(hint_view, start_result.schedule)
    downs, averaging = None, 0.0
    if instances[0].exchange is not None:  # the objective is then the round less the averaging, exactly
        k = instances[0].num_clients
        downs = []
        for x in instances:
            ex = x.exchange
            local = np.zeros(k) if ex.local_down is None else np.nan_to_num(ex.local_down)
            downs.append(np.column_stack([np.nan_to_num(ex.down), local]))
        averaging = instances[0].exchange.aggregate_ms
    out = run_cpsat(
        views[0],
        sources=views,
        downs=downs,
        hint=(assign, orders, start),
        time_limit=max(0.05, t0 + (1 - LIMIT_SLACK) * time_limit - time.perf_counter()),
        deadline=t0 + (1 + LIMIT_SLACK) * time_limit,
        t0=t0,
        workers=workers,
        seed=seed,
    )
    if out.bound is None:
        return None
    every_mix = out.bound + averaging if downs is not None else round_bound(envelope(instances), out.bound)
    if out.assignment is None or out.cuts is None:
        return start, start_result, every_mix
    cuts = np.asarray(out.cuts, dtype=int)
    view, original = compose(views, cuts), compose(instances, cuts)
    tasks, completion = earliest_schedule(view, out.assignment, out.orders)
    makespan = float(np.max(completion))
    proved = out.status == "optimal"
    status = "optimal" if proved else "feasible"
    bound = (
        0.0 if downs is not None else min(out.bound, makespan)
    )  # (with downs: a bound on the round, below)
    schedule = Schedule(
        instance=original.name,
        solver="cpsat",
        status=status,
        makespan=makespan,
        lower_bound=bound,
        runtime_s=time.perf_counter() - t0,
        assignment=assignment_names(view, out.assignment),
        tasks=sorted(tasks, key=lambda t: (t.helper, t.start)),
    )
    result = SolveResult(
        solver="cpsat",
        status=status,
        schedule=schedule,
        makespan=makespan,
        lower_bound=bound,
        runtime_s=schedule.runtime_s,
        message=out.message,
    )
    answer = answer_for(original, view, result)
    if downs is not None and answer.round_time is not None:
        if proved and answer.round_time - every_mix <= RESOLUTION_REL * answer.round_time:
            every_mix = answer.round_time  # optimal up to the model's integer time resolution (cpsat_model)
        answer.lower_bound = min(every_mix, answer.round_time)
        answer.status = "optimal" if proved else "feasible"
        answer.schedule.lower_bound, answer.schedule.status = answer.lower_bound, answer.status
    return cuts, answer, every_mix
