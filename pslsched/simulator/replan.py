"""The ``replan`` policy: re-solve at a round boundary from the durations observed so far."""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.simulator.config import SimConfig
from pslsched.simulator.orders import orders_from_schedule
from pslsched.simulator.plan_instance import round_instance


def observed_instance(instance, assign: np.ndarray, results, base=None) -> object:
    """``base`` (default: the instance) with each client's side (T1, T3, T5) and each helper's tasks (T2, T4)
    scaled by the mean slow-down observed in the rounds so far (unobserved clients/helpers keep factor 1).

    The planned durations a round's observations are compared with are the profile's scaled by the samples each
    step really processed (the round's plan), as the engine ran them."""
    base = instance if base is None else base
    k, h = instance.num_clients, instance.num_helpers
    client_f, helper_f = np.ones(k), np.ones(h)
    c_obs, c_plan = np.zeros(k), np.zeros(k)
    h_obs, h_plan = np.zeros(h), np.zeros(h)
    for res in results:
        plan = getattr(res, "plan", None)
        inside = np.zeros(k)
        for _, b, j, i, phase, ready, start, end in res.tasks:
            scale = 1.0 if plan is None else float(plan.samples[b, j]) / plan.unit
            inside[j] += end - ready
            h_obs[i] += end - start
            h_plan[i] += scale * (instance.fwd[j, i] if phase == "fwd" else instance.bwd[j, i])
        ran = res.assign if getattr(res, "assign", None) is not None else assign
        for j in range(k):
            i = ran[j]
            if i < 0 or np.isnan(res.completion[j]):
                continue
            steps = instance.batches if plan is None else float(plan.samples[:, j].sum()) / plan.unit
            c_obs[j] += res.completion[j] - res.start - inside[j]
            c_plan[j] += steps * (instance.release[j, i] + instance.delay[j, i] + instance.tail[j, i])
    ok = c_plan > 0
    client_f[ok] = c_obs[ok] / c_plan[ok]
    ok = h_plan > 0
    helper_f[ok] = h_obs[ok] / h_plan[ok]
    scale_c, scale_h = client_f[:, None], helper_f[None, :]
    return dataclasses.replace(
        base,
        release=base.release * scale_c,
        delay=base.delay * scale_c,
        tail=base.tail * scale_c,
        fwd=base.fwd * scale_h,
        bwd=base.bwd * scale_h,
    )


def replan(instance, assign: np.ndarray, orders, results, config: SimConfig, plan=None, workload=None):
    """New assignment and helper orders from a registered solver run on the observed instance; the current ones
    when the solver finds no schedule or none shorter than the current plan's on the observed durations.

    With a round plan (training) the solver gets the round the clock will run (``round_instance``: the plan's
    steps as batches), as the first schedule did. CP-SAT runs with one worker here: a round boundary is no place
    for a thread pool, and one worker repeats."""
    from pslsched.core.timing import earliest_schedule
    from pslsched.solvers import solve

    base = None if plan is None else round_instance(instance, plan, workload)
    observed = observed_instance(instance, assign, results, base)
    res = solve(
        observed, config.replan_solver, time_limit=config.replan_time_limit, seed=config.seed, workers=1
    )
    if res.schedule is None:
        return assign, orders
    try:
        _, completion = earliest_schedule(observed, assign, orders)
        current = float(np.nanmax(completion))
    except ValueError:  # the current orders do not fit the observed instance's batches: take the new plan
        current = float("inf")
    if not res.makespan < current:
        return assign, orders
    return orders_from_schedule(observed, res.schedule)
