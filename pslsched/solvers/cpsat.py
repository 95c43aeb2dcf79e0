"""``cpsat``: OR-Tools CP-SAT on the continuous, non-preemptive model (problem.md §1), with a proved bound.

Optional interval variables per (client, helper, batch) for the forward and backward tasks share one start
variable per client and batch; ``add_no_overlap`` per helper; memory as a linear constraint per helper; a Boolean
"local" literal per client with a local option; chains of ``B`` batches; objective: the makespan. The model and its
time resolution are described in :mod:`pslsched.solvers.cpsat_model`. The solver is warm-started with a complete hint (the
best constructive start of :mod:`pslsched.solvers.start`), reports an anytime trajectory and ``best_objective_bound``, and the
final schedule is re-timed exactly from CP-SAT's per-helper orders.

Options: ``workers`` (CP-SAT threads, default 8, the full portfolio; tests use 1), ``progress`` (callable(elapsed_s, makespan_ms,
bound_ms) on each improvement), ``hint`` (an (assignment, orders) pair to start from instead). Unknown options are
ignored. Default time limit: 30 s. Models with more than ``MAX_INTERVALS`` optional intervals are refused (status
``unknown``): use ``lns`` or ``auto``. The limit covers everything: the bounds, the hint, the worker's start, the
model's building (CP-SAT searches for what is left) and the answer's re-timing; a worker that overruns is stopped.
"""

from __future__ import annotations

import time

from pslsched.core.result import SolveResult
from pslsched.core.timing import earliest_schedule
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.cpsat_client import (
    DEFAULT_WORKERS,
    MAX_INTERVALS,
    CpOutcome,
    count_intervals,
    run_cpsat,
)
from pslsched.solvers.start import Hint, best_of, best_start

SUMMARY = "CP-SAT on the continuous model: optional intervals, no-overlap, memory; proved bound"
DEFAULT_TIME_LIMIT = 30.0
LIMIT_SLACK = 0.02  # CP-SAT is asked to end this share of the limit early (it may overrun a little)


@register_run("cpsat", SUMMARY, default_limit=DEFAULT_TIME_LIMIT)
def solve_cpsat(run: SolverRun, options: dict) -> SolveResult:
    """CP-SAT with a heuristic hint; optimal (up to the documented time resolution) when it finishes."""
    instance, limit = run.instance, run.time_limit
    workers = int(options.get("workers", DEFAULT_WORKERS))
    run.options = {"seed": run.seed, "workers": workers, **{k: v for k, v in options.items() if k != "hint"}}
    n = count_intervals(instance)
    too_large = f"too large for cpsat ({n} interval variables > {MAX_INTERVALS}); use lns or auto"
    bounds, refused = run.preflight(too_large if n > MAX_INTERVALS else None)
    if refused is not None:
        return refused
    hint = options.get("hint")
    if hint is None:
        start = best_start(instance, ip_time=min(2.0, limit / 10), deadline=run.started + limit / 4)
        hint = None if start is None else (start.assignment, start.orders)
    # CP-SAT's limit covers its process start, the model's building and the hint; the answer is then re-timed
    # and packaged (two re-timings kept). A worker that overruns by more than 4% of the limit is stopped.
    end = run.started + (1 - LIMIT_SLACK) * limit - 2 * run.reserve()
    out = run_cpsat(
        instance,
        hint=hint,
        time_limit=max(0.05, end - time.perf_counter()),
        deadline=end + 2 * LIMIT_SLACK * limit,
        workers=workers,
        seed=run.seed,
        progress=run.progress if callable(run.progress) else None,
        lower_ms=bounds.best,
        t0=run.started,
    )
    return package(run, out, hint)


def package(run: SolverRun, out: CpOutcome, hint: Hint | None) -> SolveResult:
    """Turn a CP-SAT outcome (plus the hint it started from) into the run's answer: the shorter of the two."""
    candidates = []
    if out.assignment is not None:
        candidates.append((out.makespan, out.assignment, out.orders))
    if hint is not None:
        _, completion = earliest_schedule(run.instance, hint[0], hint[1])
        candidates.append((float(completion.max()), hint[0], hint[1]))
    if not candidates:
        result = run.no_schedule(out.message)
        if out.status == "infeasible":
            result.status, result.message = "infeasible", out.message
        return result
    makespan, assignment, orders = best_of(candidates)
    run.trajectory = out.trajectory
    extra = {"message": out.message, "resolution_ms": out.resolution_ms}
    proved = out.status == "optimal" and out.bound is not None and makespan <= out.bound + out.resolution_ms
    return run.finish_orders(assignment, orders, dual=out.bound, proved=proved, extra=extra)
